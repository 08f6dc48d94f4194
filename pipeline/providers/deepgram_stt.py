"""Deepgram live transcription through deepgram-sdk's *sync* WebSocket client.

Why sync: the SDK's sync listen client is built on websockets.sync, i.e. plain sockets and a reader thread,
which gevent's monkey patching turns into cooperative sockets and a greenlet. The asyncio client would need an
event loop inside the gevent hub. The base URL (wss://...) is configurable so tests point the SDK at a local fake.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any

import gevent
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from pipeline.providers import gevent_websockets
from pipeline.providers.errors import ProviderError, ProviderTimeout
from pipeline.providers.stt import STT, ResultCallback, STTFailed, STTStream, Transcript, UtteranceEnd

log = logging.getLogger(__name__)
gevent_websockets.install()  # the SDK's websockets.sync client must close in gevent's order
DEFAULT_WS_URL = "wss://api.deepgram.com"


def _http_base(ws_url: str) -> str:
    return ws_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


class DeepgramSTT(STT):
    name = "deepgram"

    def __init__(self, api_key: str, base_url: str = "", model: str = "nova-3", language: str = "en-US",
                 interim_results: bool = True, endpointing_ms: int | bool = 300, utterance_end_ms: int | None = 1000,
                 smart_format: bool = True, connect_timeout_s: float = 5.0, keepalive_s: float = 5.0):
        self._api_key = api_key
        ws_url = (base_url or DEFAULT_WS_URL).rstrip("/")
        if ws_url.startswith("http"):
            ws_url = "ws" + ws_url[4:]
        self.ws_url = ws_url
        self.options: dict[str, Any] = {
            "model": model, "language": language, "interim_results": _flag(interim_results),
            "endpointing": "false" if endpointing_ms is False else int(endpointing_ms),
            "smart_format": _flag(smart_format), "punctuate": "true", "encoding": "linear16", "channels": 1,
        }
        # utterance_end_ms needs interim results on Deepgram's side; leave it out otherwise.
        if utterance_end_ms and interim_results:
            self.options["utterance_end_ms"] = int(utterance_end_ms)
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s

    def __repr__(self) -> str:  # never show the key
        return f"DeepgramSTT(ws_url={self.ws_url!r}, model={self.options['model']!r})"

    def client(self) -> DeepgramClient:
        environment = DeepgramClientEnvironment(base=_http_base(self.ws_url), production=self.ws_url,
                                                agent=self.ws_url, agent_rest=_http_base(self.ws_url))
        return DeepgramClient(api_key=self._api_key, environment=environment)

    def open(self, sample_rate: int, on_result: ResultCallback | None = None) -> STTStream:
        return DeepgramStream(self, sample_rate, on_result)


def _flag(value: bool) -> str:
    return "true" if value else "false"


class DeepgramStream(STTStream):
    def __init__(self, options: DeepgramSTT, sample_rate: int, on_result: ResultCallback | None):
        super().__init__(on_result)
        self.sample_rate = sample_rate
        self._keepalive_s = options.keepalive_s
        self._exit = contextlib.ExitStack()
        self._failed: ProviderError | None = None
        self.metadata: dict | None = None
        try:
            with gevent.Timeout(options.connect_timeout_s, ProviderTimeout(
                    f"no WebSocket within {options.connect_timeout_s}s", provider="deepgram")):
                self._socket = self._exit.enter_context(
                    options.client().listen.v1.connect(**options.options, sample_rate=sample_rate))
        except ProviderError:
            self._exit.close()
            raise
        except ApiError as exc:
            self._exit.close()
            raise ProviderError("WebSocket refused", provider="deepgram", status=exc.status_code,
                                retryable=exc.status_code not in (400, 401, 403)) from exc
        except InvalidStatus as exc:  # websockets >= 14 raises this; the SDK only maps the legacy exception
            self._exit.close()
            status = exc.response.status_code
            raise ProviderError("WebSocket refused", provider="deepgram", status=status,
                                retryable=status not in (400, 401, 403)) from exc
        except (OSError, WebSocketException) as exc:
            self._exit.close()
            raise ProviderError(f"cannot connect: {type(exc).__name__}", provider="deepgram") from exc
        self._last_sent = gevent.get_hub().loop.now()
        self._reader = gevent.spawn(self._read)
        self._keeper = gevent.spawn(self._keepalive)

    def send(self, pcm: bytes) -> None:
        if self._failed:
            raise self._failed
        if self.closed:
            raise ProviderError("stream is closed", provider="deepgram", retryable=False)
        try:
            self._socket.send_media(pcm)
        except (ConnectionClosed, OSError) as exc:
            raise self._fail(ProviderError(f"connection lost while sending: {exc}", provider="deepgram")) from exc
        self._last_sent = gevent.get_hub().loop.now()

    def finalize(self) -> None:
        if not (self.closed or self._failed):
            self._control(self._socket.send_finalize)

    def close(self, timeout: float = 3.0) -> None:
        """CloseStream, then wait (bounded) for the last results and Metadata before hanging up."""
        if self.closed:
            return
        self.closed = True
        self._keeper.kill(block=False)
        if not self._failed:
            self._control(self._socket.send_close_stream)
        self._reader.join(timeout=timeout)
        self._reader.kill(block=False)
        try:
            self._exit.close()
        except Exception as exc:  # closing a dead socket must not break the call's teardown
            log.debug("deepgram close: %s", exc)

    def _control(self, send) -> None:
        try:
            send()
        except (ConnectionClosed, OSError) as exc:
            self._fail(ProviderError(f"connection lost: {exc}", provider="deepgram"))

    def _keepalive(self) -> None:
        # Deepgram closes a stream that gets no audio for 10 s (NET-0001): keep it open while the agent talks.
        while not self.closed and not self._failed:
            gevent.sleep(self._keepalive_s / 2)
            if gevent.get_hub().loop.now() - self._last_sent >= self._keepalive_s:
                self._control(self._socket.send_keep_alive)
                self._last_sent = gevent.get_hub().loop.now()

    def _read(self) -> None:
        try:
            for message in self._socket:
                self._dispatch(message)
        except ConnectionClosed as exc:
            if not self.closed:
                self._fail(ProviderError(f"stream closed by server: {exc}", provider="deepgram"))
            return
        except Exception as exc:  # anything else ends this stream only, reported as an event
            self._fail(ProviderError(f"stream failed: {exc}", provider="deepgram"))
            return
        code = getattr(self._socket._websocket, "close_code", None)
        if not self.closed and code not in (None, 1000):
            reason = getattr(self._socket._websocket, "close_reason", "")
            self._fail(ProviderError(f"stream closed by server ({code}): {reason}", provider="deepgram"))
        elif not self.closed:
            self._fail(ProviderError("stream ended by server", provider="deepgram"))

    def _dispatch(self, message: Any) -> None:
        kind = getattr(message, "type", None)
        if kind == "Results":
            alternatives = message.channel.alternatives
            alt = alternatives[0] if alternatives else None
            self.emit(Transcript(
                text=alt.transcript if alt else "", is_final=bool(message.is_final),
                speech_final=bool(message.speech_final), start=float(message.start),
                end=float(message.start) + float(message.duration), confidence=alt.confidence if alt else None))
        elif kind == "UtteranceEnd":
            self.emit(UtteranceEnd(last_word_end=float(message.last_word_end)))
        elif kind == "Metadata":
            self.metadata = message.dict() if hasattr(message, "dict") else None
        elif kind == "Error":
            self._fail(ProviderError(f"{message.variant}: {message.description}", provider="deepgram"))

    def _fail(self, error: ProviderError) -> ProviderError:
        if self._failed is None:
            self._failed = error
            log.warning("deepgram stream failed: %s", error)
            self.emit(STTFailed(error))
        return self._failed
