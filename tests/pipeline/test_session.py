"""Scripted-timeline session tests on a virtual clock: order and timing of what the caller hears."""
import pytest

from pipeline.clock import VirtualClock
from pipeline.fakes import CallScript, EnergyVAD, FakeLLM, FakeSTT, FakeTTS, Timeline, say
from pipeline.frames import EndCall, Interrupt, SpeechStopped, Transfer, TTSAudio
from pipeline.interfaces import ProviderError, ToolCall
from pipeline.session import Session, SessionCallbacks, SessionConfig

GREETING = "Hello, this is Acme."  # 4 words: 1.2 s of fake TTS audio


class Harness:
    """production=True wraps the fakes the way calls/media.py wraps every call's providers."""

    def __init__(self, replies, script=None, transfer_ok=True, stt_latency=0.05, production=False, vad=None,
                 stt_options=None, tts_fail_on=None, ms_per_word=300, rtp="continuous", held_until=0.0, **overrides):
        options = dict(greeting=GREETING, reprompt_after=30.0, end_silence_ms=600)
        options.update(overrides)
        self.clock = VirtualClock()
        self.stt = FakeSTT(self.clock, latency=stt_latency, **(stt_options or {}))
        self.llm = FakeLLM(self.clock, replies, latency=0.1)
        self.tts = FakeTTS(self.clock, latency=0.05, ms_per_word=ms_per_word, fail_on=tts_fail_on)
        llm, tts = self.llm, self.tts
        if production:
            from calls.media import resilient_providers

            llm, tts = resilient_providers(self.llm, self.tts, FakeTTS(self.clock, latency=0.05))
        self.turns, self.breaks, self.ended, self.transfers, self.events = [], [], [], [], []
        self.turns_at_hangup = []
        callbacks = SessionCallbacks(
            on_turn=self.turns.append,
            break_playback=lambda: self.breaks.append(self.clock.now() * 1000),
            end_call=lambda reason: self.ended.append(reason) or self.turns_at_hangup.append(list(self.turns)),
            transfer_call=lambda dest, reason: self.transfers.append((dest, reason)) or transfer_ok,
            on_event=lambda frame: self.events.append((self.clock.now() * 1000, frame)),
        )
        self.timeline = Timeline(self.clock, script or CallScript(), self.stt, rtp=rtp, held_until=held_until)
        self.session = Session(SessionConfig(**options), self.stt, llm, tts, self.timeline.sink,
                               callbacks, clock=self.clock, vad=vad or EnergyVAD())
        self.timeline.session = self.session
        self.session.start()

    def run(self, until):
        self.timeline.run(until)

    def said(self):
        return [(t.speaker, t.text) for t in self.turns]

    def audio_texts(self):
        return [s.frame.text for s in self.timeline.audio()]


def test_greeting_then_caller_turn_then_streamed_reply():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure. For how many people?")], script)
    h.run(6.0)
    assert h.said() == [("agent", GREETING), ("caller", "I would like a table"),
                        ("agent", "Sure. For how many people?")]
    greeting, caller, reply = h.turns
    assert (greeting.start_ms, greeting.end_ms) == (50, 1250)
    assert (caller.start_ms, caller.end_ms) == (2000, 3000)
    # Reply is spoken sentence by sentence: two playAudio frames, the first as soon as its sentence is ready.
    assert h.audio_texts() == [GREETING, "Sure.", "For how many people?"]
    first_reply = h.timeline.audio()[1].t_ms
    # end-of-turn silence 600 + STT 50 + LLM 100 + TTS 50, and no pipeline delay on a virtual clock.
    assert first_reply - caller.end_ms == pytest.approx(800, abs=20)
    assert h.llm.calls[0][-1].text == "I would like a table"
    assert not any(t.interrupted for t in h.turns)


def test_barge_in_cuts_playback_within_200ms_and_truncates_the_agent_turn():
    script = CallScript().say(2.0, "I would like a table", 1.0).say(4.7, "two people", 0.8)
    h = Harness([say("Sure. For how many people tonight?"), say("Great, a table for two.")], script)
    h.run(8.0)
    interrupt = next(s for s in h.timeline.sent if isinstance(s.frame, Interrupt))
    assert 4700 <= interrupt.t_ms <= 4700 + 200
    assert h.breaks == [interrupt.t_ms]
    reply = h.turns[2]
    assert reply.interrupted and reply.end_ms == int(interrupt.t_ms)
    # "Sure." played fully (0.3 s) and 2 of the 5 words of the second sentence by the interruption.
    assert reply.text == "Sure. For how"
    assert h.said()[3:] == [("caller", "two people"), ("agent", "Great, a table for two.")]
    # The agent continues from the caller's words, knowing only what the caller actually heard.
    assert [(t.speaker, t.text) for t in h.llm.calls[1][-2:]] == [("agent", "Sure. For how"),
                                                                  ("caller", "two people")]
    # No audio of the cut reply is sent after the interruption.
    assert all(s.frame.text != "Sure. For how many people tonight?" for s in h.timeline.audio())


def test_barge_in_off_ignores_caller_speech_during_playback():
    script = CallScript().say(0.5, "hello hello", 0.6)  # during the 1.2 s greeting
    h = Harness([say("unused")], script, barge_in=False)
    h.run(4.0)
    assert not any(isinstance(s.frame, Interrupt) for s in h.timeline.sent)
    assert h.said() == [("agent", GREETING)] and h.llm.calls == [] and not h.turns[0].interrupted


def test_silence_reprompts_then_hangs_up_politely():
    h = Harness([], reprompt_after=3.0, max_reprompts=1)
    h.run(13.0)
    assert h.said() == [("agent", GREETING), ("agent", "Are you still there?"),
                        ("agent", "I haven't heard anything, so I'll end the call now. Goodbye.")]
    assert 1250 + 3000 <= h.turns[1].start_ms <= 1250 + 3000 + 200
    assert h.ended == ["caller silent"] and h.session.ended
    end = next(s for s in h.timeline.sent if isinstance(s.frame, EndCall))
    # The goodbye is heard before hanging up, with the grace a real switch's late start needs.
    assert end.t_ms >= h.turns[-1].end_ms + h.session.config.hangup_grace_ms


def test_dtmf_reaches_the_agent_as_input_text():
    script = CallScript().press(2.0, "12#")
    h = Harness([say("You pressed one two.")], script)
    h.run(4.0)
    assert h.said()[1:] == [("caller", "12"), ("agent", "You pressed one two.")]
    assert h.turns[1].source == "dtmf" and h.llm.calls[0][-1].text == "12"


def test_end_call_tool_hangs_up_after_the_goodbye_plays():
    script = CallScript().say(2.0, "no thanks bye", 0.8)
    h = Harness([say("Goodbye then.", ToolCall("end_call", {"reason": "caller declined"}))], script)
    h.run(8.0)
    assert h.ended == ["caller declined"]
    goodbye = h.turns[-1]
    assert goodbye.text == "Goodbye then." and not goodbye.interrupted
    end = next(s for s in h.timeline.sent if isinstance(s.frame, EndCall))
    assert end.t_ms >= goodbye.end_ms and h.timeline.kinds()[-1] == "EndCall"


def test_transfer_tool_calls_the_controller_and_notifies_the_socket():
    script = CallScript().say(2.0, "a human please", 0.8)
    h = Harness([say("Transferring you now.", ToolCall("transfer_call", {"destination": "+15551234",
                                                                          "reason": "asked"}))], script)
    h.run(8.0)
    assert h.transfers == [("+15551234", "asked")] and h.session.ended
    transfer = next(s.frame for s in h.timeline.sent if isinstance(s.frame, Transfer))
    assert transfer == Transfer("+15551234", "asked")


def test_refused_or_malformed_transfer_is_apologised_for():
    script = CallScript().say(2.0, "a human please", 0.8).say(6.0, "ok", 0.5)
    h = Harness([say("One moment.", ToolCall("transfer_call", {"destination": "1000 & uuid_kill"})),
                 say("Anything else?")], script, transfer_ok=True)
    h.run(6.0)
    assert h.transfers == [] and "Sorry, I couldn't transfer you right now." in h.audio_texts()
    assert not h.session.ended


def test_provider_error_apologises_and_retries_once():
    script = CallScript().say(2.0, "hello", 0.6)
    h = Harness([ProviderError("boom"), say("Hi, how can I help?")], script)
    h.run(6.0)
    assert h.audio_texts()[1:] == ["Sorry, I had a problem there. Let me try again.", "Hi, how can I help?"]
    assert h.ended == [] and len(h.llm.calls) == 2


def test_second_provider_failure_ends_the_call_cleanly():
    script = CallScript().say(2.0, "hello", 0.6)
    h = Harness([ProviderError("boom"), ProviderError("boom again")], script)
    h.run(10.0)
    assert h.audio_texts()[-1] == "Sorry, I'm having technical difficulties. Please call back later. Goodbye."
    assert h.ended == ["provider failed"] and h.timeline.kinds()[-1] == "EndCall"


def test_silent_provider_times_out_instead_of_dead_air():
    script = CallScript().say(2.0, "hello", 0.6)
    h = Harness(["hang", say("Here I am.")], script, provider_timeout=2.0)
    h.run(9.0)
    apology = next(s for s in h.timeline.audio() if s.frame.text.startswith("Sorry, I had a problem"))
    caller_end = h.turns[1].end_ms
    assert apology.t_ms - caller_end <= 600 + 50 + 2000 + 200  # never more dead air than the limit
    assert "Here I am." in h.audio_texts()


def test_max_call_duration_says_goodbye_and_ends():
    h = Harness([], max_duration=3.0)
    h.run(8.0)
    assert h.said()[-1] == ("agent", "We have reached the time limit for this call. Thank you, goodbye.")
    assert h.ended == ["max duration reached"]


def test_tts_audio_is_at_the_configured_rate():
    h = Harness([], tts_sample_rate=8000)
    h.run(0.5)
    (first,) = h.timeline.audio()
    assert isinstance(first.frame, TTSAudio) and first.frame.sample_rate == 8000
    assert len(first.frame.pcm) == 8000 * 2 * 12 // 10


def _end_of_turn_ms(h):
    """When the pipeline decided the caller's (first) turn was over: dead air starts there."""
    return next(t for t, frame in h.events if isinstance(frame, SpeechStopped) and frame.end_of_turn)


def _audio_after(h, t_ms):
    return [s for s in h.timeline.audio() if s.t_ms >= t_ms]


def test_an_llm_that_never_answers_gets_the_apology_within_the_limit_through_the_production_wrappers():
    script = CallScript().say(2.0, "hello", 0.6)
    h = Harness(["hang", say("Here I am.")], script, production=True, provider_timeout=2.0)
    h.run(9.0)
    end_of_turn = _end_of_turn_ms(h)
    first = _audio_after(h, end_of_turn)[0]
    assert first.frame.text == "Sorry, I had a problem there. Let me try again."
    assert end_of_turn + 1900 <= first.t_ms <= end_of_turn + 2000 + 1e-6  # the limit, not twice it
    assert [s.frame.text for s in _audio_after(h, end_of_turn)] == [first.frame.text, "Here I am."]
    assert len(h.llm.calls) == 2 and h.ended == []  # ResilientLLM did not wait a second time on its own


def test_a_second_silent_llm_turn_ends_the_call_with_the_failure_line_within_the_limit_again():
    script = CallScript().say(2.0, "hello", 0.6)
    h = Harness(["hang", "hang"], script, production=True, provider_timeout=2.0)
    h.run(15.0)
    apology, failure = _audio_after(h, _end_of_turn_ms(h))
    assert failure.frame.text == "Sorry, I'm having technical difficulties. Please call back later. Goodbye."
    apology_end = apology.t_ms + apology.frame.duration_ms
    assert apology_end + 1900 <= failure.t_ms <= apology_end + 2000 + 1e-6
    assert h.ended == ["provider timed out"] and h.timeline.kinds()[-1] == "EndCall"
    end = next(s for s in h.timeline.sent if isinstance(s.frame, EndCall))
    assert end.t_ms >= failure.t_ms + failure.frame.duration_ms  # the caller hears the whole line


def _espeak_speech(text):
    """Real synthetic speech (espeak-ng) at 16 kHz, leading silence cut so speech starts at sample 0."""
    import numpy as np

    from pipeline.providers import build_tts

    pcm = b"".join(build_tts({"provider": "espeak"}).synthesize(text, 16000))
    samples = np.frombuffer(pcm, dtype="<i2")
    first = int(np.argmax(np.abs(samples) > 1000))
    return samples[first:].tobytes()


def test_barge_in_with_webrtcvad_on_real_speech_sends_kill_audio_within_200ms_of_onset():
    from pipeline.vad import WebRtcVad

    speech = _espeak_speech("wait a moment please")
    script = CallScript().say(2.0, "I would like a table", 1.0).say(4.7, "wait a moment please", pcm=speech)
    h = Harness([say("Sure. For how many people tonight and at what time?"), say("Of course.")], script,
                vad=WebRtcVad(2))
    h.run(9.0)
    interrupt = next(s for s in h.timeline.sent if isinstance(s.frame, Interrupt))
    assert 4700 < interrupt.t_ms <= 4700 + 200
    # killAudio is the first thing sent once the caller talks, and nothing of the cut reply follows it.
    after = [s for s in h.timeline.sent if s.t_ms >= 4700]
    assert isinstance(after[0].frame, Interrupt)
    assert [s.frame.text for s in after if isinstance(s.frame, TTSAudio)] == ["Of course."]
    assert h.breaks == [interrupt.t_ms] and h.turns[2].interrupted


def test_keys_pressed_while_barge_in_is_off_are_delivered_after_the_line_has_played():
    script = CallScript().press(0.5, "7#")  # during the 1.2 s greeting, which cannot be interrupted
    h = Harness([say("You chose seven.")], script, barge_in=False)
    h.run(4.0)
    assert h.said() == [("agent", GREETING), ("caller", "7"), ("agent", "You chose seven.")]
    greeting, keys = h.turns[0], h.turns[1]
    assert not greeting.interrupted and keys.source == "dtmf" and keys.start_ms >= greeting.end_ms
    assert not any(isinstance(s.frame, Interrupt) for s in h.timeline.sent)


def test_after_an_stt_reconnect_turns_end_without_waiting_for_the_final_timeout():
    # Finals without speech_final: the turn ends when the final covers the caller's last words, which
    # needs the new stream's times (from 0 at the reconnect) put back on the call's audio clock.
    script = CallScript().say(3.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure.")], script, stt_options={"speech_final": False})
    h.stt.fail_at = 1.0  # the first stream drops one second into the call
    h.run(7.0)
    assert len(h.stt.streams) == 2 and h.stt.streams[1].offset_s == pytest.approx(1.0)
    assert h.said()[1:] == [("caller", "I would like a table"), ("agent", "Sure.")]
    caller = h.turns[1]
    assert caller.start_ms == pytest.approx(3000, abs=1) and caller.end_ms == pytest.approx(4000, abs=1)
    reply = next(s for s in h.timeline.audio() if s.frame.text == "Sure.")
    # end-of-turn silence 600 + STT 50 + LLM 100 + TTS 50: not the 1 s final timeout on top.
    assert reply.t_ms - caller.end_ms == pytest.approx(800, abs=20)


@pytest.mark.parametrize("how", ["drops again", "cannot reopen"])
def test_stt_that_fails_after_its_one_reconnect_ends_the_call_with_the_failure_line(how):
    h = Harness([say("unused")])
    h.stt.fail_at = 1.5
    if how == "cannot reopen":
        h.stt.fail_open = 1
    h.run(2.0)
    if how == "drops again":
        assert len(h.stt.streams) == 2 and not h.session.ended  # reconnected once, the call goes on
        h.stt.fail_at = 0.2
    h.run(8.0)
    assert h.audio_texts()[-1] == "Sorry, I'm having technical difficulties. Please call back later. Goodbye."
    assert h.ended == ["speech recognition failed"] and h.timeline.kinds()[-1] == "EndCall"
    end = next(s for s in h.timeline.sent if isinstance(s.frame, EndCall))
    failure = h.timeline.audio()[-1]
    assert end.t_ms >= failure.t_ms + failure.frame.duration_ms  # heard in full before the hang-up


def test_a_tts_failure_mid_reply_is_apologised_for_and_the_agent_tries_again():
    script = CallScript().say(2.0, "I would like a table", 1.0)
    h = Harness([say("Sure. For how many people tonight?"), say("How many people?")], script,
                tts_fail_on="tonight")
    h.run(8.0)
    assert h.audio_texts() == [GREETING, "Sure.", "Sorry, I had a problem there. Let me try again.",
                               "How many people?"]
    assert h.ended == [] and len(h.llm.calls) == 2 and not h.session.ended


@pytest.mark.parametrize("signal", ["speech_final", "UtteranceEnd"])
def test_the_stt_providers_end_of_utterance_ends_the_turn_before_the_vad_silence(signal):
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    options = {"endpointing": 0.3, "utterance_end": signal == "UtteranceEnd"}
    h = Harness([say("Sure.")], script, stt_options=options, end_silence_ms=2500)
    h.run(8.0)
    stopped = next(frame for _, frame in h.events if isinstance(frame, SpeechStopped))
    assert stopped.by_stt and stopped.end_of_turn
    assert h.said()[1:] == [("caller", "I would like a table"), ("agent", "Sure.")]
    reply = next(s for s in h.timeline.audio() if s.frame.text == "Sure.")
    # The provider's 300 ms endpointing + 50 ms latency, LLM 100, TTS 50 - long before 2.5 s of silence.
    assert reply.t_ms - h.turns[1].end_ms == pytest.approx(500, abs=40)


def test_max_duration_hard_stop_records_the_cut_off_goodbye_before_hanging_up():
    # The goodbye takes 36 s to say: the hard stop (limit + dead-air limit + 30 s) cuts it.
    h = Harness([], max_duration=3.0, provider_timeout=2.0, ms_per_word=3000, greeting="Hi.")
    h.run(45.0)
    assert h.ended == ["max duration reached"]
    end = next(s for s in h.timeline.sent if isinstance(s.frame, EndCall))
    assert 3000 + 2000 + 30000 <= end.t_ms <= 3000 + 2000 + 30000 + 120
    goodbye = h.turns[-1]
    assert goodbye.interrupted and goodbye.text.startswith("We have reached")
    assert h.turns_at_hangup == [h.turns]  # on the call before the hang-up was asked for
