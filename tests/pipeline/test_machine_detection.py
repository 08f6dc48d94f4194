"""The answering-machine gate in front of a session, on a virtual clock, fed the labelled clips."""
import pathlib
import sys

import pytest

from pipeline.amd import HUMAN, MACHINE, UNKNOWN
from pipeline.clock import VirtualClock
from pipeline.frames import EndCall, TTSAudio
from pipeline.machine_detection import MachineDetectionGate, MachinePolicy

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "data" / "amd"))
import clips as amd_set  # noqa: E402

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


class Call:
    """A gate with everything it does recorded."""

    def __init__(self, policy: MachinePolicy):
        self.clock = VirtualClock()
        self.sent, self.decisions, self.sessions = [], [], []
        self.gate = MachineDetectionGate(policy, RATE, self._start, self.sent.append, self.decisions.append,
                                         synthesize=lambda text, rate: [bytes(rate * 2)], clock=self.clock)
        self.gate.start()

    def _start(self, answered_by):
        self.sessions.append(FakeSession(answered_by))
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
