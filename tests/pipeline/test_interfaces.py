"""The provider engineer's classes satisfy the session's Protocols, and the scripted agent drives a session."""
from pipeline.clock import VirtualClock
from pipeline.fakes import CallScript, EnergyVAD, FakeSTT, FakeTTS, Timeline
from pipeline.interfaces import LLM, STT, TTS
from pipeline.providers.espeak_tts import EspeakTTS
from pipeline.providers.pocketsphinx_stt import PocketsphinxSTT
from pipeline.providers.scripted import ScriptedAgent
from pipeline.session import Session, SessionCallbacks, SessionConfig


def test_offline_providers_match_the_protocols():
    assert isinstance(PocketsphinxSTT(), STT)
    assert isinstance(EspeakTTS(), TTS)
    assert isinstance(ScriptedAgent(greeting="Hi."), LLM)


def test_scripted_agent_greets_asks_and_ends_the_call():
    agent = ScriptedAgent.from_settings({"greeting": "Hello from Acme.", "closing": "Thanks, goodbye.",
                                         "questions": [{"key": "confirmed", "text": "Can you confirm?",
                                                        "type": "boolean"}]})
    clock = VirtualClock()
    stt = FakeSTT(clock, latency=0.05)
    turns, ended = [], []
    timeline = Timeline(clock, CallScript().say(4.0, "yes I confirm", 0.8), stt)
    session = Session(SessionConfig(greeting=None, reprompt_after=30), stt, agent, FakeTTS(clock), timeline.sink,
                      SessionCallbacks(on_turn=turns.append, end_call=ended.append), clock=clock, vad=EnergyVAD())
    timeline.session = session
    session.start()
    timeline.run(15.0)
    assert [t.speaker for t in turns][:3] == ["agent", "caller", "agent"]
    assert turns[1].text == "yes I confirm" and "goodbye" in turns[-1].text.lower()
    assert ended and session.ended
