"""The demo: one whole call on a fresh machine, with no keys and no FreeSWITCH.

The FreeSWITCH simulator dials; the called party is a scripted caller whose lines espeak-ng
speaks into the call's audio stream; the pipeline transcribes them with pocketsphinx; the
scripted agent answers through espeak-ng. The live transcript is printed as it happens, then the
call.ended and call.analyzed webhook bodies as a receiver got them.

    python app.py demo
"""
from __future__ import annotations

import array
import json
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from gevent.pywsgi import WSGIServer

from calls.controller import build_telephony
from calls.dispatcher import Dispatcher
from config import load_config
from fssim import Rule, Rules, Simulator
from models import Agent, Call, Organization, WebhookDelivery, database, migrate, open_database, utcnow
from pipeline.audio import resample
from pipeline.providers.audio import wav_to_pcm
from webhooks.delivery import DeliveryWorker
from webhooks.signing import SIGNATURE_HEADER, verify

CALLER_NUMBER = "+14155550123"
# The called party answers each question the agent finishes asking: (a word in the question, the answer).
CALLER_LINES = [("confirm", "Yes, I will be there."), ("call you back", "Tomorrow morning, please.")]
AGENT = {
    "name": "Appointment reminder", "direction": "outbound",
    "greeting": "Hello, this is the VoxBridge demo assistant calling about your appointment.",
    "settings": {"questions": [
        {"key": "confirmed", "text": "Can you confirm your appointment tomorrow at ten?"},
        {"key": "callback_time", "text": "When is the best time to call you back?"},
        # A tool step: the scripted agent calls the clinic's next_slot tool (the demo's endpoint) and says its answer.
        {"key": "next_visit", "tool": "next_slot", "arguments": {"kind": "cleaning"},
         "say": "By the way, your next cleaning could be {slot}."}],
        "closing": "We will call you then. Goodbye!", "silence_reprompt_s": 8,
        # The scripted far end (ScriptedCaller) hears the agent's playAudio files, so the demo keeps that route.
        "audio_return": "playaudio"},
    "analysis_schema": {"type": "object", "properties": {"confirmed": {"type": "boolean"},
                                                         "callback_time": {"type": "string"}}},
}


DEMO_SLOT = "Tuesday at three"


def demo_tool(url: str) -> dict[str, Any]:
    """The clinic's tool: an HTTP endpoint (the demo's Receiver) the agent calls, signed like a webhook."""
    return {"name": "next_slot", "description": "The next free appointment slot for a kind of visit.", "url": url,
            "parameters": {"type": "object", "properties": {"kind": {"type": "string"}}}, "timeout_s": 3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def speak(text: str) -> tuple[bytes, int]:
    """espeak-ng's voice for the caller; text goes in as one argv element, never through a shell."""
    wav = subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "150", "--stdout", text], capture_output=True,
                         check=True, timeout=60).stdout
    return wav_to_pcm(wav)


ORDINALS = ("first", "second", "third", "fourth", "fifth")
HUMAN_PAUSE_S = 0.5  # the caller's pause between hearing the question end and answering
SILENCE_PEAK = 300  # 16-bit sample peak below which a stretch of the agent's audio is silence


@dataclass
class Playback:
    """One file of the agent's voice the far end was given (a mod_audio_fork::play_audio)."""

    text: str
    file: Path
    rate: int
    started: float | None = None
    whole: bool | None = None  # None while it plays or before; then whether all its voice was played

    def voice_after(self, seconds: float) -> bool:
        """Whether the file holds voice (not silence) after `seconds` of it."""
        try:
            pcm = self.file.read_bytes()[int(seconds * self.rate) * 2:]
        except OSError:
            return True  # cannot tell: not heard
        samples = array.array("h", pcm[:len(pcm) // 2 * 2])
        return any(abs(v) > SILENCE_PEAK for v in samples)


@dataclass
class Answer:
    cue: str
    line: str
    pcm: bytes
    said: bool = False


class ScriptedCaller:
    """The far end, driven by the switch's events: when a file of the agent's voice that asks a
    question has played to its end, it speaks the answer for that question into the call. The
    recognizer's timing never matters here: the caller waits for the question, not for a clock.

    interrupt: (seconds after the agent starts speaking, a line) the caller says regardless (barge-in).
    """

    def __init__(self, sim: Simulator, call_id: str, lines: list[tuple[str, str]],
                 interrupt: tuple[float, str] | None = None):
        self.sim, self.call_id = sim, call_id
        self.answers = [Answer(cue, line, speak_16k(line)) for cue, line in lines]
        self.interrupt = (interrupt[0], speak_16k(interrupt[1])) if interrupt else None
        self.playbacks: dict[str, Playback] = {}  # by file, in the order given
        sim.on_event(self.on_event)

    def on_event(self, ev) -> None:
        if ev.unique_id != self.call_id:
            return
        if ev.subclass == "mod_audio_fork::play_audio":
            self._given(ev.body or "")
        elif ev.name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE") and ev.get("Application") == "playback":
            playback = self.playbacks.get(ev.get("Application-Data") or "")
            if playback is None:
                return
            if ev.name == "CHANNEL_EXECUTE":
                self._started(playback)
            else:
                self._ended(playback)

    def _given(self, body: str) -> None:
        try:
            info = json.loads(body)
            playback = Playback(info.get("textContent", ""), Path(info["file"]), int(info["sampleRate"]))
        except (ValueError, KeyError, TypeError):
            return
        self.playbacks[info["file"]] = playback

    def _started(self, playback: Playback) -> None:
        if self.interrupt and not any(p.started for p in self.playbacks.values()):
            gevent.spawn_later(self.interrupt[0], self.sim.say, self.call_id, self.interrupt[1])
        playback.started = time.monotonic()

    def _ended(self, playback: Playback) -> None:
        # A file cut (killAudio, uuid_break, hang-up) ends early, and load only makes playing slower: what
        # was not played is the file after the time it ran. Cut in its trailing silence, it was all heard.
        ran = time.monotonic() - (playback.started or time.monotonic())
        playback.whole = not playback.voice_after(ran)
        if not playback.whole or "?" not in playback.text:
            return
        answer = next((a for a in self.answers if not a.said and a.cue in playback.text.lower()), None)
        if answer is not None:
            answer.said = True
            gevent.spawn_later(HUMAN_PAUSE_S, self.sim.say, self.call_id, answer.pcm)

    def heard_whole(self) -> list[str]:
        """The texts of the agent's voice the caller heard to the end, in order."""
        return [p.text for p in self.playbacks.values() if p.whole]


def conversation_problems(result: dict[str, Any]) -> list[str]:
    """What of the scripted conversation did not happen, in words; [] when all of it did.

    Each scripted answer spoken after its question was heard by the caller and is a caller turn after
    that question in the transcript; each question's answer was captured; every agent turn that was
    not cut off reached the caller whole; the call completed and both webhooks arrived.
    """
    call, heard = result["call"], result["caller_heard"]
    lines, questions = CALLER_LINES, AGENT["settings"]["questions"]
    transcript = call.transcript or []
    problems = []
    for n, (cue, _line) in enumerate(lines):
        nth = ORDINALS[n] if n < len(ORDINALS) else f"#{n + 1}"
        asked = next((i for i, t in enumerate(transcript) if t.get("speaker") == "agent"
                      and cue in t.get("text", "").lower()), None)
        if not any(cue in text.lower() and "?" in text for text in heard):
            problems.append(f"the agent's {nth} question ('{cue}') was never heard by the caller")
        elif asked is None or not any(t.get("speaker") == "caller" for t in transcript[asked + 1:]):
            problems.append(f"the caller's {nth} answer was never heard")
    answers = call.answers or {}
    for question in questions:
        if "tool" not in question and answers.get(question["key"]) in (None, ""):
            problems.append(f"the answer '{question['key']}' was not captured")
    for turn in transcript:
        if turn.get("speaker") == "agent" and not turn.get("interrupted") and not _covered(turn.get("text", ""), heard):
            problems.append(f"the agent's reply '{turn.get('text', '')}' was never heard whole by the caller")
    if call.status != "completed":
        problems.append(f"the call ended {call.status} ({call.hangup_cause}), not completed")
    for kind in ("call.ended", "call.analyzed"):
        if not any(e["type"] == kind for e in result["events"]):
            problems.append(f"no {kind} webhook arrived")
    return problems


def _covered(text: str, heard: list[str]) -> bool:
    """Whether the files heard whole, each a piece of `text`, add up to all of it."""
    rest = text
    for piece in heard:
        if piece.strip() and piece.strip() in rest:
            rest = rest.replace(piece.strip(), "", 1)
    return not rest.strip()


def speak_16k(text: str) -> bytes:
    pcm, rate = speak(text)
    return resample(pcm, rate, 16000)


@dataclass
class Receiver:
    """The customer's webhook endpoint and tool: checks each signature and keeps the bodies."""

    secret: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        verify(self.secret, environ.get("HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"), ""), body)
        if environ.get("PATH_INFO", "").startswith("/tools/"):
            self.tool_calls.append(json.loads(body))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"slot": DEMO_SLOT}).encode()]
        self.events.append(json.loads(body))
        start_response("204 No Content", [])
        return [b""]

    def get(self, event_type: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["type"] == event_type), None)


def print_turns(call: Call, shown: int, out) -> int:
    for turn in (call.transcript or [])[shown:]:
        who = {"agent": "agent ", "tool": "tool  "}.get(turn.get("speaker"), "caller")
        cut = " [interrupted]" if turn.get("interrupted") else ""
        print(f"  {turn.get('start_ms', 0) / 1000:6.1f}s  {who}: {turn.get('text', '')}{cut}", file=out, flush=True)
    return len(call.transcript or [])


def run(workdir: Path, out=None, timeout_s: float = 120.0, caller_lines: list[tuple[str, str]] | None = None,
        interrupt: tuple[float, str] | None = None) -> dict[str, Any]:
    """Run the demo call in `workdir`; returns the call and the webhook bodies received.

    caller_lines: the caller's answers, by a word of the question; interrupt: (seconds after the
    agent starts speaking, a line) the caller says regardless, e.g. over the agent's greeting (barge-in).
    """
    out = out or sys.stdout
    sim = Simulator("127.0.0.1", 0, "demo-esl-pw", heartbeat_interval=5.0, tmp_dir=str(workdir),
                    # A wideband far end: pocketsphinx's 16 kHz model mis-hears G.711's narrowband speech.
                    rules=Rules(default=Rule(".*", "answer", after=1.0, hangup_after=timeout_s, codec="L16"))).start()
    receiver = Receiver()
    hooks = WSGIServer(("127.0.0.1", 0), receiver, log=None)
    hooks.start()
    audio_port = free_port()
    config = load_config({
        "DATABASE_URL": f"sqlite:///{workdir}/demo.db", "FREESWITCH_ESL_HOST": f"127.0.0.1:{sim.port}",
        "FREESWITCH_ESL_PASSWORD": "demo-esl-pw", "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0",
        "AUDIO_WS_LISTEN": f"127.0.0.1:{audio_port}", "AUDIO_WS_PUBLIC_URL": f"ws://127.0.0.1:{audio_port}",
        "WEBHOOK_ALLOW_PRIVATE": "true", "LOG_LEVEL": "WARNING"})
    open_database(config.database_url)
    migrate()
    org = Organization.create(name="Demo Clinic", default_caller_id="+14155550000",
                              webhook_url=f"http://127.0.0.1:{hooks.server_port}/hooks")
    receiver.secret = org.webhook_secret
    agent = Agent.create(organization=org, **AGENT,
                         tools=[demo_tool(f"http://127.0.0.1:{hooks.server_port}/tools/next_slot")])
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number=CALLER_NUMBER,
                       from_number=org.default_caller_id, max_attempts=1, next_attempt_at=utcnow())
    controller, _ = build_telephony(config)
    controller.start()
    dispatcher = Dispatcher(controller, interval_s=0.2)
    webhooks = DeliveryWorker(allow_private=True, interval_s=0.2)
    print(f"VoxBridge demo: calling {CALLER_NUMBER} through the FreeSWITCH simulator (no keys, no cloud)",
          file=out, flush=True)
    caller = ScriptedCaller(sim, call.id, CALLER_LINES if caller_lines is None else caller_lines, interrupt)
    started = time.monotonic()
    try:
        dispatcher.start()
        webhooks.start()
        shown, status = 0, None
        while time.monotonic() - started < timeout_s:
            gevent.sleep(0.3)
            with database.connection_context():
                row = Call.get_by_id(call.id)
            if row.status != status:
                status = row.status
                print(f"  [{status}]", file=out, flush=True)
            shown = print_turns(row, shown, out)
            if receiver.get("call.ended") and receiver.get("call.analyzed"):
                break
        for kind in ("call.ended", "call.analyzed"):
            print(f"\n{kind} webhook body:", file=out)
            print(json.dumps(receiver.get(kind), indent=2), file=out, flush=True)
        with database.connection_context():
            final = Call.get_by_id(call.id)
            pending = WebhookDelivery.select().where(WebhookDelivery.status == "pending").count()
        return {"call": final, "events": receiver.events, "pending_webhooks": pending,
                "tool_calls": receiver.tool_calls, "heard": sim.heard(call.id), "caller_heard": caller.heard_whole()}
    finally:
        dispatcher.stop()
        webhooks.stop()
        controller.stop()
        hooks.stop()
        sim.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="voxbridge-demo-") as tmp:
        result = run(Path(tmp))
    problems = conversation_problems(result)
    for problem in problems:
        print(f"demo failed: {problem}", file=sys.stderr, flush=True)
    if not problems:
        print(f"\ndemo: the whole conversation was held ({len(CALLER_LINES)} answers heard and captured, "
              "every agent reply heard by the caller)", flush=True)
    return 1 if problems else 0
