"""The stream a real mod_audio_fork sends (../shared/freeswitch README, "Far-end speech through a real SIP/G.711
call"): one frame per RTP packet and nothing while the far end sends no RTP, finals that come late on a loaded
recogniser, and a callee who says "Hello?" as they pick up. Virtual clock, fake providers."""
import pytest

from pipeline.fakes import CallScript, say
from pipeline.frames import Interrupt, SpeechStopped
from pipeline.providers.scripted import ScriptedAgent
from tests.pipeline.test_session import GREETING, Harness


@pytest.mark.parametrize("rtp", ["suppress", "continuous"])
def test_a_turn_ends_when_frames_stop_coming(rtp):
    # Silence suppression: after the caller's last word no frame comes at all; the wall time is the silence.
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure.")], script, rtp=rtp)
    h.run(6.0)
    assert h.said() == [("agent", GREETING), ("caller", "I would like a table"), ("agent", "Sure.")]
    stopped = next(frame for _, frame in h.events if isinstance(frame, SpeechStopped))
    caller = h.turns[1]
    # Audio time kept up with wall time across the 2 s gap before the words: the turn is placed where it was said.
    assert caller.start_ms == pytest.approx(2000, abs=40) and caller.end_ms == pytest.approx(3000, abs=40)
    assert stopped.last_voiced_ms == pytest.approx(3000, abs=40)
    reply = next(s for s in h.timeline.audio() if s.frame.text == "Sure.")
    # 600 ms of end-of-turn silence (+ up to the 100 ms gap allowance and a 100 ms tick), STT, LLM, TTS.
    assert 800 <= reply.t_ms - caller.end_ms <= 1050


def test_audio_time_does_not_fall_behind_wall_time_across_a_gap():
    h = Harness([], rtp="suppress", reprompt_after=60.0)
    h.run(5.0)
    assert 5000 - 250 <= h.session._audio_ms <= 5000  # within the gap allowance + one tick
    assert h.stt.streams[0].audio_s == pytest.approx(h.session._audio_ms / 1000)  # the recogniser heard the silence too


def test_a_final_later_than_the_wait_is_still_committed_and_answered():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure.")], script, stt_latency=1.6, rtp="suppress", reprompt_after=2.0)
    h.run(8.0)
    assert h.said()[:3] == [("agent", GREETING), ("caller", "I would like a table"), ("agent", "Sure.")]
    # No re-prompt while the overdue final was awaited (re-prompt is 2 s; the final came 2.2 s after the words).
    assert h.audio_texts()[:2] == [GREETING, "Sure."]


def test_an_overdue_final_is_given_up_after_the_grace():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("unused")], script, stt_latency=30.0, stt_final_grace=2.0, reprompt_after=2.0)
    h.run(9.0)
    assert ("caller", "I would like a table") not in h.said()
    assert "Are you still there?" in h.audio_texts()  # the call goes on


def test_auto_greeting_waits_for_the_callees_hello_and_answers_it():
    script = CallScript().say(0.1, "hello", duration=0.6)
    h = Harness([say("unused")], script, greeting_start="auto", rtp="suppress")
    h.run(5.0)
    assert h.said() == [("caller", "hello"), ("agent", GREETING)]
    assert not any(isinstance(s.frame, Interrupt) for s in h.timeline.sent)
    assert h.llm.calls == []  # the greeting answered the "hello": it was not taken as a turn to reply to
    assert 700 + 600 <= h.turns[1].start_ms <= 700 + 600 + 400


def test_auto_greeting_after_a_short_silence_when_the_callee_waits():
    h = Harness([say("unused")], greeting_start="auto", rtp="suppress")
    h.run(4.0)
    assert h.said() == [("agent", GREETING)]
    assert 1200 <= h.turns[0].start_ms <= 1200 + 250


def test_after_caller_greeting_falls_back_to_greeting_after_the_reprompt_delay():
    h = Harness([say("unused")], greeting_start="after_caller", reprompt_after=3.0)
    h.run(6.0)
    assert h.said() == [("agent", GREETING)] and 3000 <= h.turns[0].start_ms <= 3250


def test_a_greeting_cut_before_it_was_heard_is_said_again_after_the_callees_turn():
    script = CallScript().say(0.0, "hello who is this", duration=1.2)  # talking as the greeting starts
    h = Harness([say("unused")], script, greeting_start="immediate")
    h.run(6.0)
    assert any(isinstance(s.frame, Interrupt) for s in h.timeline.sent)
    assert h.said() == [("caller", "hello who is this"), ("agent", GREETING)]
    assert h.llm.calls == [] and not h.turns[1].interrupted


def test_a_greeting_cut_after_it_was_heard_is_not_repeated():
    script = CallScript().say(0.9, "yes hi", duration=0.8)  # 0.85 s of the greeting played
    h = Harness([say("Great.")], script)
    h.run(6.0)
    assert h.said()[0][0] == "agent" and h.turns[0].interrupted
    assert h.said()[1:] == [("caller", "yes hi"), ("agent", "Great.")]


def test_the_scripted_agent_greets_a_callee_who_said_hello_first_and_asks_its_first_question():
    # An earlier live run: "hello?" at answer was taken as the answer to the first question and the callee only
    # heard "Thank you. Goodbye!".
    agent = ScriptedAgent.from_settings({"greeting": "Hi, this is Acme.", "closing": "Goodbye!", "questions": [
        {"key": "confirm", "text": "Can you confirm your appointment?", "type": "boolean"}]})
    script = CallScript().say(0.1, "hello", duration=0.6).say(6.0, "yes", duration=0.5)
    h = Harness(None, script, greeting=None, greeting_start="auto", rtp="suppress")
    h.session.llm = agent
    h.run(12.0)
    assert h.said()[:4] == [("caller", "hello"), ("agent", "Hi, this is Acme. Can you confirm your appointment?"),
                            ("caller", "yes"), ("agent", "Thank you. Goodbye!")]
    assert agent.answers(h.session.history) == {"confirm": True}


def test_an_auto_greetings_quiet_counts_from_when_the_stream_is_ready():
    # pocketsphinx takes a while to start its decoder; the callee's chance to say "Hello?" starts after that.
    from pipeline.clock import VirtualClock
    from pipeline.fakes import EnergyVAD, FakeLLM, FakeSTT, FakeTTS
    from pipeline.frames import TTSAudio
    from pipeline.session import Session, SessionConfig

    class SlowSTT(FakeSTT):
        def open(self, sample_rate, on_result=None):
            self.clock.advance(3.0)
            return super().open(sample_rate, on_result)

    clock, sent = VirtualClock(), []
    session = Session(SessionConfig(greeting=GREETING, greeting_start="auto"), SlowSTT(clock), FakeLLM(clock, []),
                      FakeTTS(clock), sent.append, clock=clock, vad=EnergyVAD())
    session.start()
    clock.advance(1.0)
    assert not any(isinstance(f, TTSAudio) for f in sent)  # 4 s since the session began, 1 s since it was ready
    clock.advance(0.6)
    assert [f.text for f in sent if isinstance(f, TTSAudio)] == [GREETING]
    session.stop()


def test_a_hello_flushed_in_one_burst_is_a_turn_that_ends_after_it_starts():
    # The switch sends what it buffered before the socket was up all at once: the callee's "hello" arrives as a
    # burst 1 s into the call. Its turn is still one caller turn, in order (a live call recorded 789 -> 539 ms).
    script = CallScript().say(0.1, "hello", duration=0.6)
    h = Harness([say("unused")], script, greeting_start="auto", rtp="suppress", held_until=1.0)
    h.run(5.0)
    assert h.said()[:2] == [("caller", "hello"), ("agent", GREETING)]
    hello = h.turns[0]
    assert hello.end_ms >= hello.start_ms, (hello.start_ms, hello.end_ms)
