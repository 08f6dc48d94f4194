"""The answering-machine gate in front of a session, on a virtual clock, fed the labelled clips."""
import pathlib
import sys

import gevent
import gevent.event
import pytest

from pipeline.amd import HUMAN, MACHINE, UNKNOWN
from pipeline.clock import VirtualClock
from pipeline.frames import EndCall, TTSAudio
from pipeline.interfaces import ProviderError, STTFailed, Transcript
from pipeline.machine_detection import MachineDetectionGate, MachinePolicy

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "data" / "amd"))
import clips as amd_set  # noqa: E402

from tests.fakes.providers import TimedWordsSTT  # noqa: E402

RATE = 8000


class FakeSession:
    def __init__(self, answered_by):
        self.answered_by, self.started, self.audio, self.digits, self.ended = answered_by, False, [], [], False

    def start(self):
        self.started = True

    def push_audio(self, pcm):
        self.audio.append(pcm)

    def push_dtmf(self, digit):
        self.digits.append(digit)

    def stop(self, reason=""):
        self.ended = True


class AdoptingSession(FakeSession):
    """A session that takes over the detection's STT stream, as pipeline.session.Session does."""

    def __init__(self, answered_by):
        super().__init__(answered_by)
        self.adopted, self.results = None, []

    def adopt_stt(self, stream, offset_ms, heard=""):
        self.adopted = (stream, offset_ms, heard)
        return self.results.append


class Call:
    """A gate with everything it does recorded."""

    def __init__(self, policy: MachinePolicy, stt=None, session=FakeSession):
        self.clock = VirtualClock()
        self.sent, self.decisions, self.sessions, self.session_type = [], [], [], session
        self.gate = MachineDetectionGate(policy, RATE, self._start, self.sent.append, self.decisions.append,
                                         synthesize=lambda text, rate: [bytes(rate * 2)], clock=self.clock, stt=stt)
        self.gate.start()

    def _start(self, answered_by):
        self.sessions.append(self.session_type(answered_by))
        return self.sessions[-1]

    def play(self, audio: bytes) -> None:
        for frame in amd_set.frames(audio, RATE):
            self.gate.push_audio(frame)
            self.clock.advance(0.02)


def clip(label: str, beep: bool | None = None):
    return next(c for c in amd_set.clips("tune") if c.label == label and (beep is None or bool(c.beep_hz) == beep))


def test_a_person_gets_the_session_with_no_word_spoken_before_the_decision():
    call = Call(MachinePolicy("hangup"))
    call.play(amd_set.pcm(clip(HUMAN), RATE))
    assert [d.answered_by for d in call.decisions] == [HUMAN]
    assert call.sessions[0].answered_by == HUMAN and call.sessions[0].started
    assert call.sent == []  # the gate itself never speaks to a person
    assert call.sessions[0].audio, "audio after the decision goes to the session"


def test_hangup_ends_a_machine_call_without_speaking():
    call = Call(MachinePolicy("hangup"))
    call.play(amd_set.pcm(clip(MACHINE), RATE))
    assert [d.answered_by for d in call.decisions] == [MACHINE]
    assert call.sessions == [] and call.sent == [EndCall("answering machine")] and call.gate.ended


def test_leave_message_speaks_after_the_beep_then_ends():
    call = Call(MachinePolicy("leave_message", message="Hi Ada, this is Acme about your appointment."))
    machine = clip(MACHINE, beep=True)
    audio = amd_set.pcm(machine, RATE)
    call.play(audio)  # ends 1 s after the beep: too soon for the quiet rule (1.5 s), so the beep started it
    assert [d.answered_by for d in call.decisions] == [MACHINE]
    assert isinstance(call.sent[0], TTSAudio) and call.sent[0].text.startswith("Hi Ada")
    call.clock.advance(3)
    assert call.sent[-1] == EndCall("voicemail message left") and call.sessions == []


def test_leave_message_without_a_beep_waits_for_the_greeting_to_go_quiet():
    call = Call(MachinePolicy("leave_message", message="Please call us back."))
    call.play(amd_set.pcm(clip(MACHINE, beep=False), RATE))
    assert call.sent == []  # the clip ends with 1 s of quiet: not yet 1.5 s
    call.clock.advance(1.0)  # no frames at all (silence suppressed): wall time counts as quiet
    call.clock.advance(2.0)
    assert isinstance(call.sent[0], TTSAudio) and call.sent[-1] == EndCall("voicemail message left")


def test_continue_starts_the_session_told_it_reached_a_machine_once_the_greeting_is_over():
    call = Call(MachinePolicy("continue"))
    call.play(amd_set.pcm(clip(MACHINE, beep=True), RATE))
    assert [s.answered_by for s in call.sessions] == [MACHINE] and call.sessions[0].started


def test_no_decision_in_time_is_unknown_and_the_caller_gets_the_session():
    call = Call(MachinePolicy("hangup", timeout_ms=3000))
    call.clock.advance(3.5)  # a silent line: no frames at all
    assert [d.answered_by for d in call.decisions] == [UNKNOWN]
    assert call.sessions[0].answered_by == UNKNOWN


def test_a_key_press_during_detection_is_a_person():
    call = Call(MachinePolicy("hangup"))
    call.gate.push_dtmf("1")
    assert [d.answered_by for d in call.decisions] == [HUMAN] and call.sessions[0].started
    call.gate.push_dtmf("2")
    assert call.sessions[0].digits == ["2"]


def test_stop_stops_the_session_and_the_timers():
    call = Call(MachinePolicy("hangup"))
    call.gate.push_dtmf("1")
    call.gate.stop("hung up")
    assert call.sessions[0].ended and call.gate.ended


@pytest.mark.parametrize("bad", [dict(mode="voicemail"), dict(mode="leave_message", message="  ")])
def test_a_bad_policy_is_refused(bad):
    with pytest.raises(ValueError):
        MachinePolicy(**bad)


# ----- words heard during detection (the call's STT; here a fake saying scripted words on the audio's timeline)
def closed(stream, gate) -> bool:
    if gate.listener.closer is not None:
        gate.listener.closer.join(timeout=5)
    return stream.closed


def test_a_greetings_words_decide_machine_before_its_cadence_would():
    audio = amd_set.pcm(clip(MACHINE, beep=False), RATE)
    by_cadence = Call(MachinePolicy("hangup"))
    by_cadence.play(audio)
    stt = TimedWordsSTT([(0.4, "hi you've", False), (0.8, "hi you've reached sam please leave", False)])
    call = Call(MachinePolicy("hangup"), stt=stt)
    call.play(audio)
    [decision] = call.decisions
    assert decision.answered_by == MACHINE and decision.reason == 'said "you\'ve reached"'
    assert decision.at_ms < by_cadence.decisions[0].at_ms  # audio time, the same frames: no race
    assert "speech without waiting" in by_cadence.decisions[0].reason
    assert call.sent == [EndCall("answering machine")]
    [stream] = stt.streams
    assert closed(stream, call.gate), "the recognizer is released once a machine is decided"


def test_a_person_saying_hello_who_is_this_stays_a_person_and_the_stream_goes_on_into_the_session():
    stt = TimedWordsSTT([(0.3, "hello", False), (0.6, "hello who is this", True)])
    call = Call(MachinePolicy("hangup"), stt=stt, session=AdoptingSession)
    call.play(amd_set.pcm(clip(HUMAN), RATE))
    assert [d.answered_by for d in call.decisions] == [HUMAN]
    [session] = call.sessions
    [stream] = stt.streams  # one recognizer for the whole call: the session opened none of its own
    adopted, offset_ms, heard = session.adopted
    assert adopted is stream and not stream.closed and heard == "hello who is this"
    assert offset_ms == -call.decisions[0].at_ms  # the session's time 0 is where detection ended
    later = Transcript("yes", True, True, 3.0, 3.2)
    stream.emit(later)
    assert session.results == [later]  # results from now on are the session's
    call.gate.stop("hung up")
    assert session.ended and not stream.closed  # the session closes the stream it adopted (Session.stop)


def test_a_session_that_cannot_adopt_gets_the_stream_closed():
    stt = TimedWordsSTT([(0.3, "hello", True)])
    call = Call(MachinePolicy("hangup"), stt=stt)
    call.play(amd_set.pcm(clip(HUMAN), RATE))
    assert [d.answered_by for d in call.decisions] == [HUMAN]
    assert closed(stt.streams[0], call.gate)


def test_the_call_ending_during_detection_closes_the_recognizer():
    stt = TimedWordsSTT([])
    call = Call(MachinePolicy("hangup"), stt=stt)
    call.play(bytes(RATE * 2 // 2))  # half a second of silence
    call.gate.stop("hung up")
    assert call.decisions == [] and closed(stt.streams[0], call.gate)


def test_a_recognizer_that_cannot_start_or_fails_leaves_cadence_to_decide():
    class Broken:
        def open(self, sample_rate, on_result=None):
            raise ProviderError("no decoder", provider="broken")

    call = Call(MachinePolicy("hangup"), stt=Broken())
    call.play(amd_set.pcm(clip(HUMAN), RATE))
    assert [d.answered_by for d in call.decisions] == [HUMAN]

    stt = TimedWordsSTT([])
    call = Call(MachinePolicy("hangup"), stt=stt)
    stt.streams[0].emit(STTFailed(ProviderError("dropped", provider="timed")))
    call.play(amd_set.pcm(clip(MACHINE, beep=False), RATE))
    assert [d.answered_by for d in call.decisions] == [MACHINE] and closed(stt.streams[0], call.gate)


def test_a_real_session_records_the_words_heard_during_detection_as_the_callers_first_turn():
    from pipeline.fakes import FakeLLM, FakeTTS, say
    from pipeline.frames import TurnRecord
    from pipeline.session import Session, SessionCallbacks, SessionConfig

    # "hello" is final during detection; "who is this" only turns final after the hand-over.
    stt = TimedWordsSTT([(0.3, "hello", True), (0.5, "who is", False), (1.6, "who is this", True)])
    turns = []
    clock_holder = []

    def start(answered_by):
        clock = clock_holder[0]
        return Session(SessionConfig(greeting="Hi, this is Acme.", reprompt_after=30.0), stt,
                       FakeLLM(clock, [say("OK.")]), FakeTTS(clock), lambda frame: None,
                       SessionCallbacks(on_turn=turns.append), sample_rate=RATE, clock=clock)

    call = Call.__new__(Call)
    call.clock = VirtualClock()
    clock_holder.append(call.clock)
    call.decisions = []
    call.gate = MachineDetectionGate(MachinePolicy("hangup"), RATE, start, lambda frame: None, call.decisions.append,
                                     clock=call.clock, stt=stt)
    call.gate.start()
    call.play(amd_set.pcm(clip(HUMAN), RATE))
    call.play(bytes(RATE * 2 * 3))  # 3 s of quiet: the greeting plays out
    assert [d.answered_by for d in call.decisions] == [HUMAN] and len(stt.streams) == 1
    said = [(t.speaker, t.text) for t in turns]
    assert said[:3] == [("caller", "hello"), ("caller", "who is this"), ("agent", "Hi, this is Acme.")]
    assert isinstance(turns[0], TurnRecord)
    call.gate.stop("hung up")
    gevent.sleep(0)
    assert stt.streams[0].closed  # Session.stop closes the stream it adopted


def test_a_call_ending_while_the_recognizer_starts_does_not_leave_it_running():
    release = gevent.event.Event()

    class SlowToStart(TimedWordsSTT):
        def open(self, sample_rate, on_result=None):
            release.wait()  # a decoder process still loading its model
            return super().open(sample_rate, on_result)

    stt = SlowToStart([])
    gate = MachineDetectionGate(MachinePolicy("hangup"), RATE, FakeSession, lambda frame: None, lambda d: None,
                                clock=VirtualClock(), stt=stt)
    starting = gevent.spawn(gate.start)
    gevent.sleep(0)
    gate.stop("hung up")  # the caller hangs up during start-up
    release.set()
    starting.join(timeout=5)
    assert len(stt.streams) == 1 and closed(stt.streams[0], gate)



def test_frames_arriving_while_the_decision_is_recorded_do_not_decide_again():
    # Recording the decision writes to the database and yields; the socket's next frame (or the ticker's
    # silence) reaches the detector meanwhile, which repeats its decision. One decision, one session.
    clock, sessions, decisions = VirtualClock(), [], []
    frames = iter(amd_set.frames(amd_set.pcm(clip(HUMAN), RATE), RATE))

    def record(decision):
        decisions.append(decision)
        gate.push_audio(next(frames))  # the next frame, pushed while this write "yields"

    def start(answered_by):
        sessions.append(FakeSession(answered_by))
        return sessions[-1]

    gate = MachineDetectionGate(MachinePolicy("hangup"), RATE, start, lambda frame: None, record, clock=clock)
    gate.start()
    for frame in frames:
        gate.push_audio(frame)
        clock.advance(0.02)
    assert [d.answered_by for d in decisions] == [HUMAN] and [s.answered_by for s in sessions] == [HUMAN]
    assert sessions[0].audio  # the frames after the decision went to the one session


def test_frames_queued_while_the_process_stalled_are_not_heard_as_a_pause():
    # A CPU stall mid-word: 500 ms of frames queue in the socket; the ticker wakes first, late. Silence put in
    # front of the backlog would be a pause never said (and it retunes webrtcvad: a line's hum then counts as
    # voice). The decision, in audio time, is the one the call without the stall gets.
    def decide(stall_at: int | None):
        clock, decisions = VirtualClock(), []
        gate = MachineDetectionGate(MachinePolicy("hangup"), RATE, FakeSession, lambda frame: None,
                                    decisions.append, clock=clock)
        gate.start()
        frames = amd_set.frames(amd_set.pcm(clip(HUMAN), RATE), RATE)
        backlog: list[bytes] = []
        for i, frame in enumerate(frames):
            if stall_at is not None and stall_at <= i < stall_at + 25:
                backlog.append(frame)
                clock._now += 0.02  # time passes and nothing runs: the process is stalled
                continue
            if backlog:
                clock.advance(0)  # the ticker runs first, late
                gate.push_audio(b"".join(backlog))  # then the socket hands over what queued
                backlog = []
            gate.push_audio(frame)
            clock.advance(0.02)
        return decisions[0]

    steady, stalled = decide(None), decide(30)
    assert steady.answered_by == HUMAN and (stalled.answered_by, stalled.at_ms) == (HUMAN, steady.at_ms), \
        (steady, stalled)


def test_a_quiet_wire_is_still_silence_when_the_ticker_is_on_time():
    # mod_audio_fork sends nothing while the far end suppresses silence: after a short answer, no frames at all.
    call = Call(MachinePolicy("hangup"))
    speech = amd_set.pcm(clip(HUMAN), RATE)
    call.play(speech[:int(1.0 * RATE) * 2])  # the answer, then the far end stops sending
    call.clock.advance(1.5)
    assert [d.answered_by for d in call.decisions] == [HUMAN]
