"""Place one inbound call from the carrier (tools/live/carrier) to a number of a running VoxBridge, carrying an
X- header, and report what the agent was told (docs/live-runs.md):

    .venv/bin/python tools/live/run_inbound.py --api http://127.0.0.1:18080 --key vb_live_... [--out result.json]

The app must allow the header (INBOUND_SIP_HEADERS=X-Customer-Id, tools/live/serve.sh passes it through). The
carrier dials `sofia/carrier/<number>@127.0.0.1:35090` (the switch under test's SIP port) with the header set
as `sip_h_X-Customer-Id`; the number's inbound agent greets with `{{x_customer_id}}`, so the transcript shows
whether the header reached the agent. The carrier hangs up 12 s after the answer.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import socket
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from run_calls import api  # noqa: E402 - the same API helper as the outbound runs

NUMBER = "+14155550177"
CUSTOMER = "A-4242"


def carrier_api(command: str) -> str:
    """One `api` command on the carrier's ESL (127.0.0.1:8022, password "carrier")."""
    with socket.create_connection(("127.0.0.1", 8022), timeout=30) as conn:
        reader = conn.makefile("rb")

        def frame() -> tuple[dict, str]:
            headers = {}
            while (line := reader.readline().decode().rstrip("\n")) or not headers:
                if line:
                    name, _, value = line.partition(": ")
                    headers[name] = value
            body = reader.read(int(headers["Content-Length"])).decode() if "Content-Length" in headers else ""
            return headers, body

        frame()
        conn.sendall(b"auth carrier\n\n")
        frame()
        conn.sendall(f"api {command}\n\n".encode())
        return frame()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out")
    args = parser.parse_args()
    agent = api(args.api, args.key, "POST", "/v1/agents", {
        "name": "Live inbound desk", "direction": "inbound",
        "greeting": "Hello, customer {{x_customer_id}}, thank you for calling.",
        "variables": {"x_customer_id": {"default": "unknown"}},
        "settings": {"questions": ["How can I help?"], "closing": "Goodbye.", "silence_reprompt_s": 6}})
    numbers = api(args.api, args.key, "GET", "/v1/numbers")
    if not any(n["number"] == NUMBER for n in numbers.get("data", [])):
        api(args.api, args.key, "POST", "/v1/numbers", {"number": NUMBER, "agent_id": agent["id"]})
    else:
        number_id = next(n["id"] for n in numbers["data"] if n["number"] == NUMBER)
        api(args.api, args.key, "PATCH", f"/v1/numbers/{number_id}", {"agent_id": agent["id"]})
    started = time.time()
    reply = carrier_api(f"originate {{sip_h_X-Customer-Id={CUSTOMER},origination_caller_id_number=14155557777}}"
                        f"sofia/carrier/{NUMBER}@127.0.0.1:35090 &playback(silence_stream://12000)")
    print("carrier originate:", reply.strip(), flush=True)
    call = None
    for _ in range(60):
        calls = api(args.api, args.key, "GET", "/v1/calls?direction=inbound&limit=5").get("data", [])
        recent = [c for c in calls if c["to"] == NUMBER and c["status"] in ("completed", "failed")]
        if recent:
            call = api(args.api, args.key, "GET", f"/v1/calls/{recent[0]['id']}")
            break
        time.sleep(1)
    result = {"carrier_reply": reply.strip(), "elapsed_s": round(time.time() - started, 1),
              "call": None if call is None else {k: call.get(k) for k in (
                  "id", "status", "from", "to", "hangup_cause", "duration_seconds")},
              "turns": [] if call is None else [(t.get("speaker"), t.get("text"))
                                                for t in call.get("transcript") or []]}
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0 if call is not None else 1


if __name__ == "__main__":
    sys.exit(main())
