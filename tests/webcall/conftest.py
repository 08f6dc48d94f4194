"""Web calls for real: the browsers' WebSocket server with the offline providers (pocketsphinx, the scripted
agent, espeak-ng), the API that creates the calls, and a caller that talks like a page does."""
import json
import subprocess
import time
import wave

import gevent
import pytest
from websockets.sync.client import connect

from api import create_app
from models import Agent

ORIGIN = "http://talk.test"
SECRET = "web-call-test-secret-0123456789"
FRAME = 640  # 20 ms of 16 kHz 16-bit mono
QUESTION = "Which day suits you best?"
CLOSING = "We will see you then. Goodbye!"
REPROMPT = "Are you still there?"  # SessionConfig.reprompt_text
ANSWER = "Yes, I can confirm the appointment for tomorrow morning."
ANSWER_WORDS = {"yes", "confirm", "tomorrow", "morning", "appointment"}  # pocketsphinx hears most of them


def wait_for(predicate, timeout=30.0, interval=0.05, state=None):
    """Poll until predicate() is truthy; on timeout the failure shows state() (what the page had seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        gevent.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s" + (f"; state: {state()}" if state else ""))


def speech(text: str) -> bytes:
    """espeak-ng's voice (the one pocketsphinx understands best), 16 kHz 16-bit mono."""
    from pipeline.providers.espeak_tts import EspeakTTS

    return b"".join(EspeakTTS(voice="en-us+f2", words_per_minute=150).synthesize(text, 16000))


def write_wav(path, pcm: bytes, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)


def espeak_available() -> bool:
    try:
        return subprocess.run(["espeak-ng", "--version"], capture_output=True, timeout=10).returncode == 0
    except OSError:
        return False


@pytest.fixture
def web_config():
    from cryptography.fernet import Fernet

    from config import load_config

    return load_config({}, webhook_allow_private=True, rate_limit_per_minute=100_000,
                       sip_secret_key=Fernet.generate_key().decode(), web_call_listen="127.0.0.1:0",
                       web_call_allowed_origins=(ORIGIN,))


@pytest.fixture
def web_calls(db, web_config):
    from webcall.bridge import WebCalls

    service = WebCalls(web_config, SECRET)
    service.start()
    yield service
    service.stop()


@pytest.fixture
def web_client(web_calls, web_config):
    return create_app(web_config, web_call_issuer=web_calls.issuer, web_call_control=web_calls.control).test_client()


@pytest.fixture
def talk_agent(org):
    return Agent.create(organization=org, name="Booking desk", direction="inbound", greeting="Hello.",
                        # A prompt re-prompt: on a loaded machine pocketsphinx can miss an answer (its final comes
                        # after the session stopped waiting), and the caller then answers the re-prompt.
                        settings={"questions": [{"key": "day", "text": QUESTION}], "closing": CLOSING,
                                  "silence_reprompt_s": 6, "max_reprompts": 3},
                        analysis_schema={"type": "object", "properties": {"day": {"type": "string"}}})


def start_web_call(client, auth, agent) -> dict:
    response = client.post(f"/v1/agents/{agent.id}/web-calls", headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


class PageCaller:
    """What the page does: a start message, then a 20 ms frame every 20 ms (silence unless it speaks), and
    everything the server sends kept in order (binary audio as its byte count)."""

    def __init__(self, url: str, origin: str = ORIGIN):
        self.ws = connect(url, origin=origin, open_timeout=10, close_timeout=5, legacy=True)
        self.messages: list[dict] = []
        self.audio_bytes = 0
        self.played_until = 0.0  # monotonic time the agent audio received so far has finished playing
        self.closed_code: int | None = None
        self._pending = bytearray()
        self._stop = False
        self.ws.send(json.dumps({"type": "start", "sampleRate": 16000}))
        self._reader = gevent.spawn(self._read)
        self._writer = gevent.spawn(self._write)

    def _read(self):
        from websockets.exceptions import ConnectionClosed

        try:
            for message in self.ws:
                if isinstance(message, bytes):
                    # Played back to back from when it arrives, as the page's player does.
                    self.played_until = max(time.monotonic(), self.played_until) + len(message) / 32000
                    self.audio_bytes += len(message)
                else:
                    self.messages.append(json.loads(message))
        except ConnectionClosed:
            pass
        rcvd = self.ws.protocol.close_rcvd
        self.closed_code = rcvd.code if rcvd is not None else 1006

    def _write(self):
        next_at = time.monotonic()
        while not self._stop and self.closed_code is None:
            frame = bytes(self._pending[:FRAME]).ljust(FRAME, b"\0")
            del self._pending[:FRAME]
            try:
                self.ws.send(frame)
            except Exception:
                return
            next_at += 0.02
            gevent.sleep(max(0.0, next_at - time.monotonic()))  # the microphone's pace, not a wait for a result

    def seen(self) -> str:
        return f"{self.messages}, {self.heard_s():.1f} s of agent audio, closed {self.closed_code}"

    def say(self, pcm: bytes) -> None:
        self._pending += b"\0" * 6400 + pcm  # a breath first

    def heard_s(self) -> float:
        return self.audio_bytes / 32000

    def of_type(self, kind: str, **match) -> list[dict]:
        return [m for m in self.messages if m.get("type") == kind and all(m.get(k) == v for k, v in match.items())]

    def agent_finished(self, text: str) -> bool:
        """The agent said `text` and all the audio it sent has had time to play."""
        said = any(text in m["text"] for m in self.of_type("agent"))
        return said and time.monotonic() > self.played_until

    def answer(self, question: str, pcm: bytes, attempts: int = 3) -> dict:
        """Answer once `question` has been heard; when the agent re-prompts instead of hearing the answer (a
        recogniser too slow to finish in time), answer the re-prompt, as a person would. Returns the caller's
        turn the agent recognised."""
        for _ in range(attempts):
            wait_for(lambda asked=question: self.agent_finished(asked), state=self.seen)
            lines = len(self.of_type("agent"))
            self.say(pcm)
            wait_for(lambda before=lines: self.of_type("turn", speaker="caller") or len(self.of_type("agent")) > before,
                     timeout=60, state=self.seen)
            turns = self.of_type("turn", speaker="caller")
            if turns:
                return turns[0]
            question = self.of_type("agent")[-1]["text"]  # the re-prompt
        raise AssertionError(f"the agent never recognised the answer; {self.seen()}")

    def close(self) -> None:
        self._stop = True
        self.ws.close()
        self._reader.join(5)
        self._writer.kill()


def closed_with(url: str, origin: str | None = ORIGIN) -> tuple[int, str]:
    """Open the socket and return the close code and reason the server answers with."""
    from websockets.exceptions import ConnectionClosed

    with connect(url, origin=origin, open_timeout=10, close_timeout=5) as ws:
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=10)
        return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason
