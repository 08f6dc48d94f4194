"""OpenAICompatibleLLM through the openai SDK against a local server streaming OpenAI's SSE chunks."""
import pytest

from pipeline.providers.errors import ProviderError, ProviderTimeout
from pipeline.providers.llm import TextDelta, ToolCall, Turn
from pipeline.providers.openai_llm import OpenAICompatibleLLM
from pipeline.providers.sentences import iter_sentences
from tests.fakes.faults import Fault
from tests.fakes.openai import ChatReply


def llm_for(server, **kwargs) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(api_key="sk-test", base_url=server.base_url, model="fake-gpt", **kwargs)


TURNS = [Turn("agent", "Hello, how can I help?"), Turn("caller", "I want a human"), Turn("dtmf", "")]


def test_streams_text_deltas_then_assembled_tool_calls(fake_openai):
    fake_openai.replies = [ChatReply("Sure. Let me transfer you.", [("transfer_call", {"destination": "1001"}),
                                                                   ("end_call", {"reason": "transferred"})],
                                     fragment=3)]
    events = list(llm_for(fake_openai).stream("You are Ada.", {"customer": "Bob", "order": 42}, TURNS))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Sure.", " Let", " me", " transfer", " you."]
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.name, c.arguments) for c in calls] == [("transfer_call", {"destination": "1001"}),
                                                      ("end_call", {"reason": "transferred"})]
    assert all(c.id.startswith("call_") for c in calls)
    assert isinstance(events[-1], ToolCall)  # tools come after the text


def test_request_carries_prompt_context_turns_tools_and_key(fake_openai):
    list(llm_for(fake_openai, temperature=0.1, max_tokens=50).stream("You are Ada.", {"customer": "Bob"}, TURNS))
    request = fake_openai.requests[0]
    body = request.json()
    assert request.headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "fake-gpt" and body["stream"] is True
    assert body["temperature"] == 0.1 and body["max_tokens"] == 50
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].startswith("You are Ada.") and '"customer": "Bob"' in \
        body["messages"][0]["content"]
    assert body["messages"][1:] == [{"role": "assistant", "content": "Hello, how can I help?"},
                                    {"role": "user", "content": "I want a human"}]
    assert [t["function"]["name"] for t in body["tools"]] == ["end_call", "transfer_call"]


def test_deltas_become_sentences_before_the_reply_ends(fake_openai):
    fake_openai.replies = [ChatReply("First sentence here. Second one follows! And a third")]
    assert list(iter_sentences(e.text for e in llm_for(fake_openai).stream("", None, TURNS))) == [
        "First sentence here.", "Second one follows!", "And a third"]


@pytest.mark.parametrize(("fault", "error", "status"), [
    (Fault(status=500), ProviderError, 500),
    (Fault(status=429), ProviderError, 429),
    (Fault(drop_after=3), ProviderError, None),
    (Fault(latency_s=3), ProviderTimeout, None),
    (Fault(stall_after=2, stall_s=3), ProviderTimeout, None),
])
def test_faults_raise_typed_errors(fake_openai, fault, error, status):
    fake_openai.faults = [fault]
    with pytest.raises(error) as raised:
        list(llm_for(fake_openai, timeout_s=0.5).stream("", None, TURNS))
    assert raised.value.status == status and raised.value.retryable
    # the next request works again: one failure does not poison the client
    assert list(llm_for(fake_openai).stream("", None, TURNS))


def test_text_already_streamed_is_kept_when_the_stream_drops(fake_openai):
    fake_openai.replies = [ChatReply("one two three four five")]
    fake_openai.faults = [Fault(drop_after=3)]
    received = []
    with pytest.raises(ProviderError):
        for event in llm_for(fake_openai).stream("", None, TURNS):
            received.append(event.text)
    assert received == ["one", " two"]  # the role chunk, then two words, then the drop


def test_bad_key_is_not_retryable_and_not_echoed(fake_openai):
    with pytest.raises(ProviderError) as raised:
        list(OpenAICompatibleLLM(api_key="sk-wrong", base_url=fake_openai.base_url, model="m").stream("", None, []))
    assert raised.value.status == 401 and not raised.value.retryable
    assert "sk-wrong" not in str(raised.value) and "sk-wrong" not in repr(llm_for(fake_openai))


def test_complete_json_asks_for_a_json_object(fake_openai):
    fake_openai.replies = [ChatReply('```json\n{"confirmed": true}\n```'), ChatReply("not json"), ChatReply("[1]")]
    llm = llm_for(fake_openai)
    assert llm.complete_json("schema...", "Caller: yes") == {"confirmed": True}
    body = fake_openai.requests[0].json()
    assert body["response_format"] == {"type": "json_object"} and not body.get("stream")
    with pytest.raises(ProviderError, match="did not answer with JSON"):
        llm.complete_json("s", "u")
    with pytest.raises(ProviderError, match="not an object"):
        llm.complete_json("s", "u")


def test_abandoning_the_stream_on_barge_in_releases_it_cleanly(fake_openai):
    fake_openai.replies = [ChatReply("one two three four five six")]
    llm = llm_for(fake_openai)
    stream = llm.stream("", None, TURNS)
    assert next(stream) == TextDelta("one")
    stream.close()  # the caller interrupted: stop reading, no exception
    assert [e.text for e in llm.stream("", None, TURNS)][:2] == ["You", " said:"]
