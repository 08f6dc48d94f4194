"""Each agent turn's latency breakdown equals the latencies the scripted providers were given (virtual clock)."""
import pytest

from pipeline.clock import VirtualClock
from pipeline.fakes import CallScript, EnergyVAD, FakeLLM, FakeSTT, FakeTTS, Timeline, say
from pipeline.latency import COMPONENTS, summarize
from pipeline.session import Session, SessionCallbacks, SessionConfig

STT_S, LLM_S, TTS_S, TAIL_S = 0.13, 0.27, 0.09, 0.04


class TwoChunkTTS(FakeTTS):
    """First audio after `latency`, the rest of the sentence TAIL_S later (what a streaming TTS does)."""

    def synthesize(self, text, sample_rate):
        self.clock.sleep(self.latency)
        self.spoken.append(text)
        yield bytes(sample_rate // 10 * 2)
        self.clock.sleep(TAIL_S)
        yield bytes(sample_rate // 10 * 2)


def run_call(bidirectional=False, script=None, replies=None, until=8.0):
    clock = VirtualClock()
    stt = FakeSTT(clock, latency=STT_S)
    llm = FakeLLM(clock, replies or [say("Sure. For how many people?")], latency=LLM_S)
    tts = TwoChunkTTS(clock, latency=TTS_S)
    turns = []
    timeline = Timeline(clock, script or CallScript().say(2.0, "I would like a table", duration=1.0), stt)
    config = SessionConfig(greeting="Hello.", reprompt_after=30.0, end_silence_ms=600, bidirectional=bidirectional)
    session = Session(config, stt, llm, tts, timeline.sink, SessionCallbacks(on_turn=turns.append), clock=clock,
                      vad=EnergyVAD())
    timeline.session = session
    session.start()
    timeline.run(until)
    return turns


def test_a_reply_records_the_scripted_latencies_in_play_audio_mode():
    turns = run_call()
    greeting, caller, reply = turns
    assert caller.speaker == "caller" and caller.end_ms == 3000 and caller.latency is None
    # End of turn: the 600 ms of silence; the final comes STT_S after the turn ended (finalize).
    assert reply.latency == {
        "eou_ms": 600.0, "stt_final_ms": pytest.approx(600 + STT_S * 1000), "llm_first_token_ms": LLM_S * 1000,
        "tts_first_audio_ms": TTS_S * 1000,
        "delivery_ms": pytest.approx(TAIL_S * 1000),  # a playAudio file waits for the sentence's last chunk
        "total_ms": pytest.approx((0.6 + STT_S + LLM_S + TTS_S + TAIL_S) * 1000)}
    # The greeting has no caller turn before it: only its own steps are measured.
    assert greeting.latency["eou_ms"] is None and greeting.latency["total_ms"] is None
    assert greeting.latency["tts_first_audio_ms"] == TTS_S * 1000


def test_streamed_audio_is_delivered_with_its_first_chunk():
    reply = run_call(bidirectional=True)[2]
    assert reply.latency["delivery_ms"] == 0.0
    assert reply.latency["total_ms"] == pytest.approx((0.6 + STT_S + LLM_S + TTS_S) * 1000)


def test_the_call_summary_is_p50_and_max_over_its_agent_turns():
    script = CallScript().say(2.0, "a table please", duration=1.0).say(6.0, "two people", duration=0.5)
    turns = run_call(script=script, replies=[say("Sure."), say("Great.")], until=10.0)
    entries = [{"speaker": t.speaker, "latency": t.latency} for t in turns]
    summary = summarize(entries)
    assert set(summary) == set(COMPONENTS)
    assert summary["llm_first_token_ms"] == {"p50": LLM_S * 1000, "max": LLM_S * 1000, "count": 2}
    assert summary["tts_first_audio_ms"]["count"] == 3  # the greeting is synthesised too
    assert summary["total_ms"]["count"] == 2  # but answers no caller turn
    assert summary["total_ms"]["p50"] == pytest.approx((0.6 + STT_S + LLM_S + TTS_S + TAIL_S) * 1000)


def test_summary_of_a_call_without_measured_turns_is_empty_not_an_error():
    summary = summarize([{"speaker": "caller", "text": "hi"}, {"speaker": "agent", "latency": "junk"}])
    assert summary["total_ms"] == {"p50": None, "max": None, "count": 0}
    assert summarize([{"latency": {"total_ms": 10}}, {"latency": {"total_ms": 30}}])["total_ms"] == {
        "p50": 20.0, "max": 30.0, "count": 2}
