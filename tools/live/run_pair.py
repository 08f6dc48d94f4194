"""Calls through two VoxBridge instances on one live switch (tools/live/serve_pair.sh), issue 13's scale-out:
dialed through either instance, hung up through the other, and the node's owner SIGKILLed during live calls.

Instance b owns the node's events; instance a holds every call's socket and voice stream. Webhooks are received
here (127.0.0.1:18099) and counted per call: call.ended must arrive once per call.
  .venv/bin/python tools/live/run_pair.py --dir /tmp/vb-pair [--out result.json]
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import sys
import threading
import time
from collections import Counter

from run_calls import AGENT, FINAL, api

A, B = "http://127.0.0.1:18080", "http://127.0.0.1:18081"
HOOKS: Counter[tuple[str, str]] = Counter()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        data = body.get("data") or {}
        HOOKS[(body.get("type") or body.get("event") or "?", data.get("id") or data.get("call_id") or "?")] += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


def place(base: str, key: str, agent: dict, number: str) -> str:
    body = {"to": number, "agent_id": agent["id"], "max_attempts": 1}
    return api(base, key, "POST", "/v1/calls/outbound", body)["id"]


def wait_status(key: str, call_id: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        call = api(A, key, "GET", f"/v1/calls/{call_id}")
        if call["status"] in statuses or time.monotonic() > deadline:
            return call
        time.sleep(0.5)


def summary(key: str, call_id: str) -> dict:
    call = api(A, key, "GET", f"/v1/calls/{call_id}")
    events = api(A, key, "GET", f"/v1/calls/{call_id}/events")
    return {"id": call_id, "to": call["to"], "status": call["status"], "hangup_cause": call["hangup_cause"],
            "failure_reason": call["failure_reason"], "duration_s": call["duration_seconds"],
            "turns": [(t.get("speaker"), t.get("text")) for t in call.get("transcript") or []],
            "timeline": [f'{e.get("at")} {e.get("from")}->{e.get("to")} {e.get("reason")}'
                         for e in events.get("data", events if isinstance(events, list) else [])],
            "call_ended_webhooks": HOOKS[("call.ended", call_id)]}


def run(directory: str) -> dict:
    key = open(os.path.join(directory, "key")).read().strip()
    agent = api(A, key, "POST", "/v1/agents", AGENT)
    result: dict = {}
    # 1. Dialed through either instance (b owns the node; a holds the socket and the voice).
    through_b = place(B, key, agent, "+14155551001")
    through_a = place(A, key, agent, "+14155552001")
    for call_id in (through_b, through_a):
        wait_status(key, call_id, FINAL)
    # 2. Dialed through a, hung up through b.
    held = place(A, key, agent, "+14155553001")
    wait_status(key, held, ("in-progress",))
    time.sleep(3)  # the greeting is under way
    api(B, key, "POST", f"/v1/calls/{held}/hangup", {})
    wait_status(key, held, FINAL)
    # 3. The node's owner (b) SIGKILLed during three live calls: a takes the node and the calls go on.
    live = [place(A, key, agent, f"+1415555101{n}") for n in range(3)]
    for call_id in live:
        wait_status(key, call_id, ("in-progress",))
    killed_at = time.monotonic()
    os.kill(int(open(os.path.join(directory, "b.pid")).read()), signal.SIGKILL)
    for call_id in live:
        wait_status(key, call_id, FINAL)
    result["owner_killed_calls_final_after_s"] = round(time.monotonic() - killed_at, 1)
    time.sleep(5)  # the webhook worker sends what the last transitions enqueued
    result["dialed_through_b"] = summary(key, through_b)
    result["dialed_through_a"] = summary(key, through_a)
    result["hung_up_through_b"] = summary(key, held)
    result["owner_killed"] = [summary(key, c) for c in live]
    result["after_kill_dialed_through_a"] = summary(key, wait_status(key, place(A, key, agent, "+14155551020"),
                                                                     FINAL)["id"])
    time.sleep(3)
    result["after_kill_dialed_through_a"]["call_ended_webhooks"] = HOOKS[("call.ended",
                                                                          result["after_kill_dialed_through_a"]["id"])]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--out")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 18099), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    result = run(args.dir)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
