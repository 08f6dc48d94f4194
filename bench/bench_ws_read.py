"""Microseconds per received 20 ms audio frame: the audio server's old read path (wsproto) against
pipeline/ws_frames.py, on the same bytes.

    .venv/bin/python bench/bench_ws_read.py [--frames 20000] [--runs 7]

The stream is what mod_audio_fork sends during a call: masked binary frames of 640 bytes (20 ms of 16 kHz
16-bit PCM), each with its own random mask key, as websocket-client encodes them. Two chunkings: one frame
per recv (a server keeping up: a call's frame arrives every 20 ms) and 64 KiB recvs (a backlog). Equal work:
both paths start from a connection past its handshake and end with each frame's payload handed to the same
callback, after the same dispatch the server does (the old path includes Connection._collect's join and size
check as it was); the delivered bytes are compared after each run. One process, one core; min/median/max of
--runs runs.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websocket import ABNF  # noqa: E402
from wsproto import ConnectionType, WSConnection  # noqa: E402
from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage  # noqa: E402

from pipeline import ws_frames  # noqa: E402
from pipeline.ws_frames import BINARY, TEXT, FrameReader  # noqa: E402

FRAME_BYTES = 640
MAX_MESSAGE = 1 << 20


def audio_stream(frames: int) -> tuple[bytes, list[bytes]]:
    payloads = [os.urandom(FRAME_BYTES) for _ in range(frames)]
    return b"".join(ABNF.create_frame(p, ABNF.OPCODE_BINARY).format() for p in payloads), payloads


def chunks(stream: bytes, size: int | None) -> list[bytes]:
    if size is None:  # one frame per recv
        step = 2 + 4 + FRAME_BYTES + 2  # header, 16-bit length, mask key, payload
        return [stream[i : i + step] for i in range(0, len(stream), step)]
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def open_wsproto() -> WSConnection:
    """A server-side WSConnection past its handshake, as Connection.ws is when audio flows."""
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="bench", target="/audio/c", subprotocols=["audio.drachtio.org"])))
    request = next(server.events())
    client.receive_data(server.send(AcceptConnection(subprotocol=request.subprotocols[0])))
    assert isinstance(next(client.events()), AcceptConnection)
    return server


def old_path(pieces: list[bytes], deliver: Callable[[bytes], None]) -> None:
    """The read loop as it was: receive_data + events(), then Connection._on_event/_collect."""
    ws = open_wsproto()
    parts: list = []
    size = 0
    for data in pieces:
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                parts.append(event.data)
                size += len(event.data)
                if size > MAX_MESSAGE:
                    raise RuntimeError("too big")
                if not event.message_finished:
                    continue
                whole, parts, size = parts, [], 0
                if isinstance(event, TextMessage):
                    deliver("".join(whole).encode())
                else:
                    deliver(b"".join(whole))


def new_path(pieces: list[bytes], deliver: Callable[[bytes], None]) -> None:
    """The read loop now: FrameReader.feed, then Connection._on_frame's dispatch."""
    reader = FrameReader(MAX_MESSAGE)
    for data in pieces:
        for opcode, payload in reader.feed(data):
            if opcode == BINARY:
                deliver(payload)
            elif opcode == TEXT:
                deliver(payload.encode())


def measure(path: Callable, pieces: list[bytes], expected: list[bytes], runs: int) -> list[float]:
    per_frame = []
    for _ in range(runs):
        got: list[bytes] = []
        start = time.perf_counter()
        path(pieces, got.append)
        per_frame.append((time.perf_counter() - start) / len(expected) * 1e6)
        if got != expected:
            raise AssertionError(f"{path.__name__} delivered other bytes")
    return per_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    stream, payloads = audio_stream(args.frames)
    c_unmask = ws_frames._unmask_c
    print(f"{args.frames} masked {FRAME_BYTES}-byte binary frames, {args.runs} runs, us per frame "
          f"(min / median / max)")
    for label, size in (("one frame per recv", None), ("64 KiB recvs", 65536)):
        pieces = chunks(stream, size)
        rows = [("wsproto (old)", old_path, c_unmask), ("ws_frames, C unmask", new_path, c_unmask),
                ("ws_frames, int unmask", new_path, None)]
        for name, path, unmask in rows:
            ws_frames._unmask_c = unmask
            try:
                times = measure(path, pieces, payloads, args.runs)
            finally:
                ws_frames._unmask_c = c_unmask
            print(f"  {label:19} {name:22} {min(times):7.2f} / {statistics.median(times):7.2f} / "
                  f"{max(times):7.2f}")


if __name__ == "__main__":
    main()
