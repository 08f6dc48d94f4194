"""DeepgramSTT through deepgram-sdk against a local server speaking Deepgram's live WebSocket protocol."""
import gevent
import pytest

from pipeline.providers.deepgram_stt import DeepgramSTT
from pipeline.providers.errors import ProviderError, ProviderTimeout
from pipeline.providers.stt import STTFailed, Transcript, UtteranceEnd
from tests.fakes.deepgram import Reply, results, speech_started, utterance_end
from tests.fakes.faults import Fault

FRAME = b"\0" * 640  # 20 ms at 16 kHz


def stt_for(server, **kwargs) -> DeepgramSTT:
    return DeepgramSTT(api_key="dg-test-key", base_url=server.url, **kwargs)


def collect(stream, until, wait_s: float = 5.0) -> list:
    events = []
    while (event := stream.get(timeout=wait_s)) is not None:
        events.append(event)
        if until(event):
            break
    return events


def test_results_arrive_typed_and_in_order_with_the_requested_options(fake_deepgram):
    fake_deepgram.script = [
        Reply(0.1, speech_started(0.05)),
        Reply(0.2, results("hello", 0.0, 0.2, is_final=False)),
        Reply(0.4, results("Hello there.", 0.0, 0.4, is_final=True, speech_final=True)),
        Reply(0.6, utterance_end(0.38)),
    ]
    stream = stt_for(fake_deepgram, model="nova-2", language="en-GB", endpointing_ms=250,
                     utterance_end_ms=1200).open(16000)
    for _ in range(40):
        stream.send(FRAME)
    events = collect(stream, lambda e: isinstance(e, UtteranceEnd))
    assert events == [
        Transcript("hello", False, False, 0.0, 0.2, 0.98),
        Transcript("Hello there.", True, True, 0.0, 0.4, 0.98),
        UtteranceEnd(0.38),
    ]
    stream.close()
    session = fake_deepgram.sessions[0]
    assert session.authorization == "Token dg-test-key"
    assert {k: session.query[k] for k in ("model", "language", "encoding", "sample_rate", "interim_results",
                                          "endpointing", "utterance_end_ms", "channels")} == {
        "model": "nova-2", "language": "en-GB", "encoding": "linear16", "sample_rate": "16000",
        "interim_results": "true", "endpointing": "250", "utterance_end_ms": "1200", "channels": "1"}
    assert session.audio_bytes == 40 * 640
    assert session.controls == ["CloseStream"] and session.close_code == 1000
    assert stream.metadata["duration"] == pytest.approx(0.8)


def test_finalize_flushes_pending_results_and_close_is_clean(fake_deepgram):
    fake_deepgram.script = [Reply(60.0, results("call me back", 0.0, 1.0, is_final=True))]
    stream = stt_for(fake_deepgram).open(8000)
    stream.send(b"\0" * 320)
    stream.finalize()
    events = collect(stream, lambda e: isinstance(e, Transcript))
    assert events[-1].text == "call me back" and events[-1].is_final
    stream.close()
    stream.close()  # idempotent
    assert fake_deepgram.sessions[0].controls == ["Finalize", "CloseStream"]
    assert fake_deepgram.sessions[0].query["sample_rate"] == "8000"
    with pytest.raises(ProviderError):
        stream.send(FRAME)


def test_keepalive_holds_the_stream_open_while_no_audio_flows(fake_deepgram):
    stream = stt_for(fake_deepgram, keepalive_s=0.4).open(16000)
    gevent.sleep(3.0)  # longer than the fake's 2 s idle limit
    assert stream.get(timeout=0) is None  # no STTFailed: still open
    stream.send(FRAME)
    stream.close()
    assert "KeepAlive" in fake_deepgram.sessions[0].controls
    assert fake_deepgram.sessions[0].close_code == 1000


def test_without_keepalive_the_server_idle_close_is_reported(fake_deepgram):
    stream = stt_for(fake_deepgram, keepalive_s=60).open(16000)
    events = collect(stream, lambda e: isinstance(e, STTFailed), wait_s=5)
    assert isinstance(events[-1], STTFailed) and "1011" in str(events[-1].error)
    with pytest.raises(ProviderError):
        stream.send(FRAME)
    stream.close()


def test_dropped_connection_mid_stream_becomes_an_event(fake_deepgram):
    fake_deepgram.faults = [Fault(drop_after=1)]
    fake_deepgram.script = [Reply(0.02, results("one", 0.0, 0.02, is_final=False)),
                            Reply(0.04, results("one two", 0.0, 0.04, is_final=False))]
    stream = stt_for(fake_deepgram).open(16000)
    stream.send(FRAME)
    stream.send(FRAME)
    events = collect(stream, lambda e: isinstance(e, STTFailed))
    assert isinstance(events[0], Transcript) and events[0].text == "one"
    assert isinstance(events[-1], STTFailed) and events[-1].error.provider == "deepgram"
    stream.close()


def test_refused_handshakes_raise_typed_errors(fake_deepgram):
    fake_deepgram.faults = [Fault(status=500)]
    with pytest.raises(ProviderError) as refused:
        stt_for(fake_deepgram).open(16000)
    assert refused.value.status == 500 and refused.value.retryable
    with pytest.raises(ProviderError) as unauthorized:
        DeepgramSTT(api_key="wrong", base_url=fake_deepgram.url).open(16000)
    assert unauthorized.value.status == 401 and not unauthorized.value.retryable
    assert "wrong" not in str(unauthorized.value)


def test_connect_timeout_and_unreachable_server():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts TCP but never answers the WebSocket upgrade
    try:
        with pytest.raises(ProviderTimeout):
            DeepgramSTT(api_key="k", base_url=f"ws://127.0.0.1:{listener.getsockname()[1]}",
                        connect_timeout_s=0.5).open(16000)
    finally:
        listener.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(ProviderError):
        DeepgramSTT(api_key="k", base_url=f"ws://127.0.0.1:{port}").open(16000)


def test_repr_never_shows_the_key(fake_deepgram):
    assert "dg-test-key" not in repr(stt_for(fake_deepgram))
