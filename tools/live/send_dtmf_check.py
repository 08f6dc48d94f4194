"""Keys the agent presses reach the far end on a real switch: dial the carrier's silent scenario from the switch
under test, send digits with the command the app builds (esl.commands.uuid_send_dtmf), and read the DTMF events
on the carrier's side (docs/live-runs.md).

    .venv/bin/python tools/live/send_dtmf_check.py [DIGITS]
"""
from __future__ import annotations

import json
import pathlib
import socket
import sys
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from esl.commands import uuid_send_dtmf  # noqa: E402


class Esl:
    def __init__(self, port: int, password: str):
        self.conn = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.reader = self.conn.makefile("rb")
        self.frame()
        self.send(f"auth {password}")

    def frame(self) -> tuple[dict, str]:
        headers: dict[str, str] = {}
        while (line := self.reader.readline().decode().rstrip("\n")) or not headers:
            if line:
                name, _, value = line.partition(": ")
                headers[name] = value
        body = self.reader.read(int(headers["Content-Length"])).decode() if "Content-Length" in headers else ""
        return headers, body

    def send(self, command: str) -> tuple[dict, str]:
        self.conn.sendall(f"{command}\n\n".encode())
        return self.frame()


def main() -> int:
    digits = sys.argv[1] if len(sys.argv) > 1 else "1w2#"
    carrier, switch = Esl(8022, "carrier"), Esl(8021, "voxbridge-live-esl")
    carrier.send("event json DTMF CHANNEL_ANSWER")
    channel = str(uuid.uuid4())
    switch.send(f"bgapi originate {{origination_uuid={channel}}}sofia/gateway/carrier/+14155553001 &park()")
    heard: list[str] = []
    deadline = time.monotonic() + 20
    answered = False
    while time.monotonic() < deadline and len(heard) < len(digits.replace("w", "").replace("W", "")):
        headers, body = carrier.frame()
        if headers.get("Content-Type") != "text/event-json":
            continue
        event = json.loads(body)
        if event["Event-Name"] == "CHANNEL_ANSWER" and not answered:
            answered = True
            time.sleep(0.5)
            command = uuid_send_dtmf(channel, digits).line
            reply = switch.send(f"api {command}")[1].strip()
            print(f"switch: api {command} -> {reply}")
        elif event["Event-Name"] == "DTMF":
            heard.append(event.get("DTMF-Digit", "?"))
            print(f"carrier: DTMF {event.get('DTMF-Digit')} ({event.get('DTMF-Source')}, "
                  f"{event.get('DTMF-Duration')} samples)")
    switch.send(f"api uuid_kill {channel}")
    expected = [d for d in digits if d not in "wW"]
    print("heard", heard, "expected", expected)
    return 0 if heard == expected else 1


if __name__ == "__main__":
    sys.exit(main())
