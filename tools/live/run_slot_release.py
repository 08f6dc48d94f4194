"""Place calls whose far end answers and hangs up at once, one organization limited to one concurrent call, and
check that every call is dialed in turn (docs/live-runs.md section 8).

With the streamed-voice default the app's socket for such a call can arrive after the hang-up was handled; it was
then admitted as an inbound call and kept the organization's one slot for good, so the second call was never
dialed. Run against `tools/live/serve.sh` (SQLite) and the carrier (tools/live/carrier, +141555550xx):
  .venv/bin/python tools/live/run_slot_release.py --api http://127.0.0.1:18080 --key vb_live_... \
      --db /tmp/vb-app/vb.db [--calls 8] [--out result.json]
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time

from run_calls import AGENT, FINAL, api, timeline


def run(args: argparse.Namespace) -> dict:
    with sqlite3.connect(args.db) as db:  # the operator's knob, set as an operator would (no API for it)
        db.execute("update organization set max_concurrent_calls = 1")
    agent = api(args.api, args.key, "POST", "/v1/agents", AGENT)
    numbers = [f"+141555550{n:02d}" for n in range(args.calls)]
    started = time.monotonic()
    created = api(args.api, args.key, "POST", "/v1/calls/outbound/batch",
                  {"calls": [{"to": n, "agent_id": agent["id"], "max_attempts": 1} for n in numbers]})
    ids = [r["call"]["id"] for r in created["results"]]
    deadline = time.monotonic() + 30 + 10 * args.calls
    calls = []
    while time.monotonic() < deadline:
        calls = [api(args.api, args.key, "GET", f"/v1/calls/{i}") for i in ids]
        if all(c["status"] in FINAL for c in calls):
            break
        time.sleep(1)
    return {"calls": args.calls, "org_max_concurrent_calls": 1, "all_final": all(c["status"] in FINAL for c in calls),
            "seconds": round(time.monotonic() - started, 1),
            "results": [{"number": c["to"], "status": c["status"], "hangup_cause": c["hangup_cause"],
                         "attempt": c.get("attempt"), "timeline": timeline(args.db, c["id"])} for c in calls]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--out")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0 if result["all_final"] else 1


if __name__ == "__main__":
    sys.exit(main())
