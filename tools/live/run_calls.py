"""Place real calls through a running VoxBridge (`app.py serve` against the switch of start_switch.sh) to the
carrier's far-end scenarios, one at a time, and report what happened on each (docs/live-runs.md).

    .venv/bin/python tools/live/run_calls.py --api http://127.0.0.1:18080 --key vb_live_... \
        --db /tmp/vb-app/vb.db [--audio-return playaudio|stream] [--out result.json]

For every scenario: the call's final status, SIP code, failure reason, its status/event timeline (from the
database), the transcript (turns, speakers, text), and the carrier's stereo recording of the call
(tools/live/carrier: left = what the carrier received, i.e. the agent's voice; right = what the far end sent)
measured per second with sox, with the seconds where the agent is audible (RMS above -45 dBFS).
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request

SCENARIOS = [
    ("speaks-at-answer", "+14155551001", "says 'Hello?' at answer, listens until the agent is quiet 1.7 s, "
                                         "answers, listens again, hangs up"),
    ("silent-then-speaks", "+14155552001", "no RTP for 5 s, waits until the agent is quiet 1.7 s, answers in a "
                                           "sentence, listens again, hangs up"),
    ("continuous-silence", "+14155553001", "RTP of silence for 25 s, never speaks"),
    ("voicemail", "+14155554001", "a voicemail box: a 6 s greeting, a 1 kHz beep, then records 12 s in silence"),
]
AGENT = {
    "name": "Live run agent", "direction": "outbound",
    "greeting": "Hello, this is the VoxBridge clinic assistant calling about your appointment.",
    "settings": {"questions": ["Can you confirm your appointment tomorrow at ten?"],
                 "closing": "Thank you, goodbye.", "silence_reprompt_s": 6, "max_duration_s": 45},
}
FINAL = ("completed", "failed", "busy", "no-answer", "canceled")
AUDIBLE_DBFS = -45.0


def api(base: str, key: str, method: str, path: str, body: dict | None = None) -> dict:
    if not base.startswith(("http://", "https://")):
        raise SystemExit(f"--api must be an http(s) URL, not {base!r}")
    request = urllib.request.Request(base + path, method=method,  # noqa: S310 - scheme checked above
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - scheme checked above
        return json.loads(response.read())


def timeline(db: str, call_id: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT created_at, from_status, to_status, reason FROM call_event WHERE call_id = ? "
                            "ORDER BY id", (call_id,)).fetchall()
    return [f"{at} {before}->{after} {reason or ''}".strip() for at, before, after, reason in rows]


def levels(path: str, channel: int) -> list[float]:
    """RMS dBFS of each whole second of one channel of the recording."""
    seconds = float(subprocess.run(["soxi", "-D", path], capture_output=True, text=True).stdout or 0)
    out = []
    for second in range(int(seconds)):
        stat = subprocess.run(["sox", path, "-n", "remix", str(channel), "trim", str(second), "1", "stat"],
                              capture_output=True, text=True).stderr
        rms = next((float(line.split()[-1]) for line in stat.splitlines() if line.startswith("RMS     amplitude")),
                   0.0)
        out.append(round(20 * math.log10(rms), 1) if rms > 0 else -120.0)
    return out


def recording(number: str, since: float) -> str | None:
    folder = "/tmp/vb-carrier/rec"  # noqa: S108 - where tools/live/carrier/freeswitch.xml records
    found = [p for p in glob.glob(f"{folder}/{number}-*.wav") if os.path.getmtime(p) >= since]
    return max(found, key=os.path.getmtime) if found else None


def run(args: argparse.Namespace) -> list[dict]:
    settings = {**AGENT["settings"], "audio_return": args.audio_return}
    if args.machine_detection:
        settings["machine_detection"] = json.loads(args.machine_detection)
    agent = api(args.api, args.key, "POST", "/v1/agents", {**AGENT, "settings": settings})
    results = []
    for name, number, far_end in SCENARIOS:
        if args.only and name not in args.only:
            continue
        started = time.time()
        call = api(args.api, args.key, "POST", "/v1/calls/outbound",
                   {"to": number, "agent_id": agent["id"], "max_attempts": 1})
        deadline = time.monotonic() + 120
        while call["status"] not in FINAL and time.monotonic() < deadline:
            time.sleep(1)
            call = api(args.api, args.key, "GET", f"/v1/calls/{call['id']}")
        time.sleep(2)  # the carrier closes its recording after the hang-up
        path = recording(number, started)
        agent_levels = levels(path, 1) if path else []
        result = {"scenario": name, "far_end": far_end, "number": number, "call_id": call["id"],
                  "audio_return": args.audio_return, "status": call["status"], "sip_code": call["sip_code"],
                  "hangup_cause": call["hangup_cause"], "failure_reason": call["failure_reason"],
                  "duration_s": call["duration_seconds"], "answered_by": call.get("answered_by"),
                  "machine_detection": call.get("machine_detection"),
                  "turns": [(t.get("speaker"), t.get("text"), t.get("interrupted")) for t in call.get("transcript")
                            or []],
                  "timeline": timeline(args.db, call["id"]), "recording": path,
                  "agent_dbfs_per_s": agent_levels, "far_end_dbfs_per_s": levels(path, 2) if path else [],
                  "agent_audible_s": [s for s, v in enumerate(agent_levels) if v > AUDIBLE_DBFS]}
        results.append(result)
        print(json.dumps(result, indent=1), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--audio-return", default="stream", choices=("playaudio", "stream"))
    parser.add_argument("--out")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--machine-detection", help='the agent\'s machine_detection, JSON: {"mode": "hangup"}')
    args = parser.parse_args()
    results = run(args)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
