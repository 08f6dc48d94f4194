"""What mod_audio_fork sends on a real switch for one far-end scenario: frame times, gaps, levels.

    .venv/bin/python tools/live/fork_pace.py NUMBER [SECONDS]     (switch of start_switch.sh, carrier running)

Originates `sofia/gateway/carrier/NUMBER &park()` on the switch under test (ESL 127.0.0.1:8021), forks the
answered call (`uuid_audio_fork <uuid> start ws://127.0.0.1:<port>/x mono 16k`) to a WebSocket sink in this
process, optionally plays 3 s of tone into the call at answer (--play: does our audio leave while the far end
sends no RTP?), and prints every gap between frames longer than 100 ms, frames per second and the level of the
frames, until the far end hangs up or SECONDS pass. A diagnostic for docs/live-runs.md, not a test.
"""
from __future__ import annotations

import asyncio
import math
import os
import socket
import struct
import sys
import threading
import time
import uuid

import websockets

ESL = ("127.0.0.1", 8021, os.environ.get("FREESWITCH_ESL_PASSWORD", "voxbridge-live-esl"))


def esl_api(command: str) -> str:
    """One `api` command over a fresh ESL connection (inbound, auth, api, read the body)."""
    with socket.create_connection(ESL[:2], 5) as s:
        f = s.makefile("rb")

        def frame() -> tuple[dict, bytes]:
            headers = {}
            while (line := f.readline().decode().rstrip("\n")):
                key, _, value = line.partition(": ")
                headers[key] = value
            body = f.read(int(headers.get("Content-Length", 0)))
            return headers, body

        frame()
        s.sendall(f"auth {ESL[2]}\n\n".encode())
        frame()
        s.sendall(f"api {command}\n\n".encode())
        return frame()[1].decode()


def dbfs(frame: bytes) -> float:
    samples = struct.unpack(f"<{len(frame) // 2}h", frame)
    rms = math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))
    return 20 * math.log10(rms / 32768) if rms else -120.0


def main() -> int:
    number, seconds = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2][0].isdigit() else 25
    play = "--play" in sys.argv
    frames: list[tuple[float, int, float]] = []
    done = threading.Event()
    start: list[float] = []

    async def sink(ws):
        async for message in ws:
            if isinstance(message, bytes):
                frames.append((time.monotonic() - start[0], len(message), dbfs(message)))
        done.set()

    async def serve(port_box: list[int], ready: threading.Event):
        async with websockets.serve(sink, "127.0.0.1", 0, subprotocols=["audio.drachtio.org"]) as server:
            port_box.append(server.sockets[0].getsockname()[1])
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, done.wait, seconds + 5)

    port_box: list[int] = []
    ready = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(serve(port_box, ready)), daemon=True)
    thread.start()
    ready.wait(5)
    call = str(uuid.uuid4())
    reply = esl_api(f"originate {{origination_uuid={call},ignore_early_media=true}}sofia/gateway/carrier/{number} "
                    "&park()")
    start.append(time.monotonic())
    print("originate:", reply.strip())
    print("fork:", esl_api(f"uuid_audio_fork {call} start ws://127.0.0.1:{port_box[0]}/x mono 16k").strip())
    if play:
        print("broadcast:", esl_api(f"uuid_broadcast {call} tone_stream://%(3000,0,440) aleg").strip())
    done.wait(seconds)
    esl_api(f"uuid_kill {call}")
    last = 0.0
    print(f"{len(frames)} frames in {frames[-1][0] if frames else 0:.2f} s")
    for t, _size, _level in frames:
        if t - last > 0.1:
            print(f"  gap {last:6.2f} -> {t:6.2f} s ({t - last:.2f} s)")
        last = t
    for second in range(int(frames[-1][0]) + 1 if frames else 0):
        inside = [f for f in frames if second <= f[0] < second + 1]
        loud = max((f[2] for f in inside), default=-120)
        print(f"  second {second:2d}: {len(inside):3d} frames, loudest {loud:6.1f} dBFS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
