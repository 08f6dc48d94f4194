"""The in-process fixed-latency providers used by pipeline tests and benches honour the interfaces."""
from pipeline.providers.llm import TextDelta, ToolCall
from pipeline.providers.sentences import iter_sentences
from pipeline.providers.stt import Transcript
from tests.fakes.providers import FixedLatencyLLM, FixedLatencySTT, FixedLatencyTTS


def test_fixed_stt_answers_each_finalize_with_the_next_utterance():
    stt = FixedLatencySTT(["yes please", "bye"], latency_s=0.01)
    stream = stt.open(8000)
    stream.send(b"\0" * 16000)  # 1 s
    stream.finalize()
    assert stream.get(timeout=2) == Transcript("yes please", True, True, 0.0, 1.0, 1.0)
    stream.send(b"\0" * 8000)
    stream.finalize()
    assert stream.get(timeout=2) == Transcript("bye", True, True, 1.0, 1.5, 1.0)
    stream.close()


def test_fixed_llm_and_tts():
    end = ToolCall("end_call", {})
    llm = FixedLatencyLLM(["Hi. How are you?", ("Bye now.", [end])], first_token_s=0.01)
    assert list(iter_sentences(e.text for e in llm.stream("p", {"a": 1}, []))) == ["Hi.", "How are you?"]
    events = list(llm.stream("p", None, []))
    assert events[-1] == end and isinstance(events[0], TextDelta)
    assert llm.requests[0]["context"] == {"a": 1}
    tts = FixedLatencyTTS(first_chunk_s=0.01)
    chunks = list(tts.synthesize("Hello.", 16000))
    assert all(len(c) == 3200 for c in chunks[:-1]) and tts.texts == ["Hello."]
