import pytest

from pipeline.providers.errors import ProviderError
from pipeline.providers.fallback import APOLOGY, GOODBYE, FallbackTTS, ResilientLLM
from pipeline.providers.llm import TextDelta, ToolCall, Turn
from pipeline.providers.openai_llm import OpenAICompatibleLLM
from pipeline.providers.tts import TTS
from tests.fakes.faults import Fault
from tests.fakes.openai import ChatReply
from tests.fakes.providers import FixedLatencyTTS

TURNS = [Turn("caller", "hello")]


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_a_failed_turn_is_retried_once_when_nothing_was_said(fake_openai):
    fake_openai.faults = [Fault(status=500)]
    fake_openai.replies = [ChatReply("Second try works.")]
    llm = ResilientLLM(OpenAICompatibleLLM("sk-test", "m", fake_openai.base_url))
    assert text_of(llm.stream("", None, TURNS)) == "Second try works."
    assert len(fake_openai.requests) == 2 and llm.failed_turns == 0


def test_apology_then_goodbye_and_end_call_after_repeated_failures(fake_openai):
    fake_openai.faults = [Fault(status=503)] * 4
    llm = ResilientLLM(OpenAICompatibleLLM("sk-test", "m", fake_openai.base_url))
    assert text_of(llm.stream("", None, TURNS)) == APOLOGY
    events = list(llm.stream("", None, TURNS))
    assert text_of(events) == GOODBYE
    assert events[-1] == ToolCall("end_call", {"reason": "provider failure"}, "fallback-end")
    assert llm.last_error.status == 503


def test_a_drop_after_text_is_not_retried_but_apologised_for(fake_openai):
    fake_openai.replies = [ChatReply("one two three four")]
    fake_openai.faults = [Fault(drop_after=3)]
    llm = ResilientLLM(OpenAICompatibleLLM("sk-test", "m", fake_openai.base_url))
    assert text_of(llm.stream("", None, TURNS)) == "one two " + APOLOGY
    assert len(fake_openai.requests) == 1


def test_a_non_retryable_error_is_not_retried(fake_openai):
    llm = ResilientLLM(OpenAICompatibleLLM("sk-wrong", "m", fake_openai.base_url))
    assert text_of(llm.stream("", None, TURNS)) == APOLOGY
    assert len(fake_openai.requests) == 1


class BrokenTTS(TTS):
    name = "broken"

    def __init__(self, chunks_before_failure: int):
        self.chunks_before_failure = chunks_before_failure

    def synthesize(self, text, sample_rate):
        for _ in range(self.chunks_before_failure):
            yield b"\1\0" * 160
        raise ProviderError("down", provider="broken")


def test_tts_falls_back_when_nothing_was_played_yet():
    backup = FixedLatencyTTS()
    audio = b"".join(FallbackTTS(BrokenTTS(0), backup).synthesize("Hello there.", 8000))
    assert backup.texts == ["Hello there."] and len(audio) > 0


def test_tts_failure_after_audio_is_raised_not_repeated():
    backup = FixedLatencyTTS()
    with pytest.raises(ProviderError):
        list(FallbackTTS(BrokenTTS(2), backup).synthesize("Hello there.", 8000))
    assert backup.texts == []


def test_every_fallback_that_happens_is_reported():
    """The call records what its reporter hears: the voice switch once per call, each failed LLM turn."""
    heard = []
    tts = FallbackTTS(BrokenTTS(0), FixedLatencyTTS(), on_fallback=heard.append)
    for sentence in ("One.", "Two."):
        assert b"".join(tts.synthesize(sentence, 8000))
    assert heard == ["broken failed (broken: down); speaking with fixed"]

    class DownLLM:
        name = "down"

        def stream(self, *_args, **_kwargs):
            raise ProviderError("unreachable", provider="down", retryable=False)
            yield  # a generator, like every LLM

    llm = ResilientLLM(DownLLM(), on_fallback=heard.append)
    assert text_of(llm.stream("", None, TURNS)) == APOLOGY
    assert text_of(llm.stream("", None, TURNS)) == GOODBYE
    assert heard[1:] == ["down turn failed (down: unreachable); apology spoken",
                         "down turn failed (down: unreachable); goodbye spoken"]
