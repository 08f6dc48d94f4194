"""The demo: one whole call on a fresh machine, with no keys and no FreeSWITCH.

The FreeSWITCH simulator dials; the called party is a scripted caller whose lines espeak-ng
speaks into the call's audio stream; the pipeline transcribes them with pocketsphinx; the
scripted agent answers through espeak-ng. The live transcript is printed as it happens, then the
call.ended and call.analyzed webhook bodies as a receiver got them.

    python app.py demo
"""
from __future__ import annotations

import json
import socket
import subprocess
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
        {"key": "callback_time", "text": "When is the best time to call you back?"}],
        "closing": "We will call you then. Goodbye!", "silence_reprompt_s": 8},
    "analysis_schema": {"type": "object", "properties": {"confirmed": {"type": "boolean"},
                                                         "callback_time": {"type": "string"}}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def speak(text: str) -> tuple[bytes, int]:
    """espeak-ng's voice for the caller; text goes in as one argv element, never through a shell."""
    wav = subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "150", "--stdout", text], capture_output=True,
                         check=True, timeout=60).stdout
    return wav_to_pcm(wav)


class ScriptedCaller:
    """The far end: after each question the agent finishes, it speaks its next line into the call."""

    def __init__(self, sim: Simulator, call_id: str, lines: list[tuple[str, str]]):
        self.sim, self.call_id = sim, call_id
        self.lines = [(cue, speak_16k(line)) for cue, line in lines]
        self.seen = 0

    def on_transcript(self, transcript: list[dict[str, Any]]) -> None:
        for turn in transcript[self.seen:]:
            text = turn.get("text", "")
            if turn.get("speaker") != "agent" or turn.get("interrupted") or not text.rstrip().endswith("?"):
                continue
            answer = next((pcm for cue, pcm in self.lines if cue in text.lower()), None)
            if answer is not None:
                gevent.spawn_later(0.6, self.sim.say, self.call_id, answer)
        self.seen = len(transcript)


def speak_16k(text: str) -> bytes:
    pcm, rate = speak(text)
    return resample(pcm, rate, 16000)


@dataclass
class Receiver:
    """The customer's webhook endpoint: checks each signature and keeps the bodies."""

    secret: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        verify(self.secret, environ.get("HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"), ""), body)
        self.events.append(json.loads(body))
        start_response("204 No Content", [])
        return [b""]

    def get(self, event_type: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["type"] == event_type), None)


def print_turns(call: Call, shown: int, out) -> int:
    for turn in (call.transcript or [])[shown:]:
        who = "agent " if turn.get("speaker") == "agent" else "caller"
        cut = " [interrupted]" if turn.get("interrupted") else ""
        print(f"  {turn.get('start_ms', 0) / 1000:6.1f}s  {who}: {turn.get('text', '')}{cut}", file=out, flush=True)
    return len(call.transcript or [])


def run(workdir: Path, out=None, timeout_s: float = 120.0, caller_lines: list[tuple[str, str]] | None = None,
        interrupt: tuple[float, str] | None = None) -> dict[str, Any]:
    """Run the demo call in `workdir`; returns the call and the webhook bodies received.

    caller_lines: the caller's answers, by a word of the question; interrupt: (seconds after the
    answer, a line) the caller says regardless, e.g. over the agent's greeting (barge-in).
    """
    import sys

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
    agent = Agent.create(organization=org, **AGENT)
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number=CALLER_NUMBER,
                       from_number=org.default_caller_id, max_attempts=1, next_attempt_at=utcnow())
    controller, _ = build_telephony(config)
    controller.start()
    dispatcher = Dispatcher(controller, interval_s=0.2)
    webhooks = DeliveryWorker(allow_private=True, interval_s=0.2)
    print(f"VoxBridge demo: calling {CALLER_NUMBER} through the FreeSWITCH simulator (no keys, no cloud)",
          file=out, flush=True)
    caller = ScriptedCaller(sim, call.id, CALLER_LINES if caller_lines is None else caller_lines)
    interrupted = False
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
                if status == "in-progress" and interrupt and not interrupted:
                    interrupted = True
                    gevent.spawn_later(interrupt[0], sim.say, call.id, speak_16k(interrupt[1]))
                print(f"  [{status}]", file=out, flush=True)
            shown = print_turns(row, shown, out)
            caller.on_transcript(row.transcript or [])
            if receiver.get("call.ended") and receiver.get("call.analyzed"):
                break
        for kind in ("call.ended", "call.analyzed"):
            print(f"\n{kind} webhook body:", file=out)
            print(json.dumps(receiver.get(kind), indent=2), file=out, flush=True)
        with database.connection_context():
            final = Call.get_by_id(call.id)
            pending = WebhookDelivery.select().where(WebhookDelivery.status == "pending").count()
        return {"call": final, "events": receiver.events, "pending_webhooks": pending,
                "heard": sim.heard(call.id)}
    finally:
        dispatcher.stop()
        webhooks.stop()
        controller.stop()
        hooks.stop()
        sim.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="voxbridge-demo-") as tmp:
        result = run(Path(tmp))
    ok = result["call"].status == "completed" and any(e["type"] == "call.analyzed" for e in result["events"])
    return 0 if ok else 1
