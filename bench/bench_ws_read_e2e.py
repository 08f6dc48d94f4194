"""Server-process CPU per received audio frame, end to end over TCP: the audio fork server reading with
pipeline/ws_frames.py against the same server reading as it did before (wsproto receive_data/events and
Connection._collect, kept here as OldConnection).

    .venv/bin/python bench/bench_ws_read_e2e.py [--calls 100] [--frames 250] [--runs 2]

A client process opens --calls streams and sends each one's masked 640-byte binary frames at a call's pace
(one every 20 ms, so each recv holds one frame, as in production), then the empty frame that ends a stream.
The server process (gevent, one core) hands every frame to a session that only counts it. Figure: the
server's user+system CPU from the first connection to the last stream's end, over the frames received; it
includes recv, gevent's hub and the handshakes (the same for both), so the difference is the read path's.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gevent  # noqa: E402
from wsproto.events import BytesMessage, TextMessage  # noqa: E402

from pipeline.server import AudioForkServer, Connection, Refused  # noqa: E402
from pipeline.tokens import make_token  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"


class CountingSession:
    def __init__(self, info, send, ended: list[int]):
        self.ended, self.frames, self._done = False, 0, ended

    def start(self) -> None:
        pass

    def push_audio(self, pcm: bytes) -> None:
        self.frames += 1

    def push_dtmf(self, digit: str) -> None:
        pass

    def stop(self, why: str = "") -> None:
        self.ended = True
        self._done.append(self.frames)


class OldConnection(Connection):
    """The read path before ws_frames: every byte through wsproto, messages joined by _collect."""

    _parts: list | None = None
    _size = 0

    def _on_handshake_data(self, data: bytes) -> None:
        if self._parts is None:
            self._parts = []
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                self._collect(event)
            else:
                self._on_event(event)
            if self.closed:
                return

    def _collect(self, event: TextMessage | BytesMessage) -> None:
        self._parts.append(event.data)
        self._size += len(event.data)
        if self._size > self.server.max_message_bytes:
            raise Refused("too big", close_code=1009)
        if not event.message_finished:
            return
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(event, TextMessage):
            self._on_text("".join(parts))
        else:
            self._on_binary(b"".join(parts))


def serve(old: bool, calls: int, frames: int) -> float:
    ended: list[int] = []
    server = AudioForkServer(lambda info, send: CountingSession(info, send, ended), lambda c: {"id": c}, SECRET)
    if old:
        server.connection_class = OldConnection
    server.start()
    client = subprocess.Popen([sys.executable, __file__, "--client", str(server.address[1]), "--calls",
                               str(calls), "--frames", str(frames)])
    before = resource.getrusage(resource.RUSAGE_SELF)
    while len(ended) < calls:
        gevent.sleep(0.05)
    after = resource.getrusage(resource.RUSAGE_SELF)
    client.wait()
    server.stop()
    if sum(ended) != calls * frames:
        raise AssertionError(f"frames lost: {ended}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu / (calls * frames) * 1e6


def client(port: int, calls: int, frames: int) -> None:
    from websocket import ABNF, create_connection

    def one(call_id: str) -> None:
        ws = create_connection(f"ws://127.0.0.1:{port}/audio/{call_id}?token={make_token(call_id, SECRET, 600)}",
                               subprotocols=["audio.drachtio.org"])
        ws.send('{"sampleRate":16000}')
        encoded = [ABNF.create_frame(os.urandom(640), ABNF.OPCODE_BINARY).format() for _ in range(50)]
        due = time.monotonic()
        for k in range(frames):
            ws.sock.sendall(encoded[k % 50])
            due += 0.02
            time.sleep(max(0.0, due - time.monotonic()))
        ws.send_binary(b"")
        with contextlib.suppress(Exception):  # the server's close, or the socket's end
            ws.recv()

    threads = [threading.Thread(target=one, args=(f"bench-{i}",)) for i in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.calls, args.frames)
        return
    print(f"{args.calls} paced calls x {args.frames} frames, server CPU us per frame:")
    for run in range(args.runs):
        for name, old in (("wsproto (old)", True), ("ws_frames", False)):
            print(f"  run {run + 1}  {name:14} {serve(old, args.calls, args.frames):6.1f}")


if __name__ == "__main__":
    main()
