"""ESL events parsed and dispatched per second: esl/ next to greenswitch's own parser, same byte stream.

    .venv/bin/python bench/bench_esl_parse.py [--seconds 2] [--repeat 200]

The stream is the frames FreeSWITCH sent in the captures (call-events-plain, call-events-json,
heartbeat-filter-log: events plus log/data frames), replayed --repeat times and read in 64 KiB pieces like
recv(). Both sides do framing, event decoding and dispatch to one registered handler, in one process on
one core. greenswitch cannot decode text/event-json (it splits the JSON as if it were plain headers), so
its json row measures work on a result that is wrong. Equal work is the "all hdrs" column: greenswitch
decodes every header of every event, so the like-for-like ratio is greenswitch against esl/ decoding every
header too (the "lazy" ratio only says what the app gains by not decoding headers nobody reads).
"""
from __future__ import annotations

import argparse
import io
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from greenswitch.esl import ESLProtocol  # noqa: E402

from esl.events import from_frame  # noqa: E402
from esl.framing import FrameParser  # noqa: E402
from esl.router import EventRouter  # noqa: E402

CAPTURES = ROOT / "tests" / "data" / "freeswitch" / "captures"  # the real switch's captures, in the project
STREAM_KINDS = ("text/event-plain", "text/event-json", "log/data")
CHUNK = 65536


def captured_frames(name: str) -> list[str]:
    out = []
    for line in (CAPTURES / f"{name}.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["dir"] == "s2c" and any(f"Content-Type: {k}\n" in row["data"] for k in STREAM_KINDS):
            out.append(row["data"])
    return out


def count_events(frames: list[str]) -> int:
    return sum(1 for f in frames if "Content-Type: text/event-" in f)


# ------------------------------------------------------------------ esl/
def run_esl(stream: bytes, materialize: bool = False) -> int:
    router = EventRouter()
    seen = [0]

    def handler(event):
        # What a call handler reads first; materialize=True also builds every header (worst case).
        if event.unique_id is not None or event.name:
            seen[0] += 1
        if materialize:
            event.headers  # noqa: B018

    for key in ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB", "HEARTBEAT",
                "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP", "CHANNEL_DESTROY"):
        router.on(key, handler)
    parser = FrameParser()
    feed, dispatch = parser.feed, router.dispatch
    for start in range(0, len(stream), CHUNK):
        for frame in feed(stream[start:start + CHUNK]):
            event = from_frame(frame)
            if event is not None:
                dispatch(event)
    return seen[0]


# ------------------------------------------------------------------ greenswitch
class _Inline:
    """Stands in for greenswitch's event queue: runs its process_events dispatch inline (no greenlet hop)."""

    def __init__(self, proto: ESLProtocol) -> None:
        self.proto = proto

    def put(self, event) -> None:
        proto = self.proto
        # The lookup greenswitch's process_events does for each event.
        if event.headers.get("Event-Name") == "CUSTOM":
            handlers = proto.event_handlers.get(event.headers.get("Event-Subclass"))
        else:
            handlers = proto.event_handlers.get(event.headers.get("Event-Name"))
        if event.headers.get("Content-Type") == "text/disconnect-notice":
            handlers = proto.event_handlers.get("DISCONNECT")
        if not handlers and event.headers.get("Content-Type") == "log/data":
            handlers = proto.event_handlers.get("log")
        if not handlers and "*" in proto.event_handlers:
            handlers = proto.event_handlers.get("*")
        for handle in handlers or ():
            proto._safe_exec_handler(handle, event)


class _Sock:
    def close(self) -> None:
        pass


def run_esl_all_headers(stream: bytes) -> int:
    return run_esl(stream, materialize=True)


def run_greenswitch(stream: bytes) -> int:
    proto = ESLProtocol()
    seen = [0]

    def handler(event):
        if event.headers.get("Unique-ID") is not None or event.headers.get("Event-Name"):
            seen[0] += 1

    for key in ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB", "HEARTBEAT",
                "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP", "CHANNEL_DESTROY", "*"):
        proto.register_handle(key, handler)
    proto.sock = _Sock()
    proto.sock_file = io.BufferedReader(io.BytesIO(stream), CHUNK)
    proto.connected = True
    proto._esl_event_queue = _Inline(proto)
    proto.receive_events()  # greenswitch's own reader: readline framing, ESLEvent parsing, handle_event
    return seen[0]


def run_esl_tcp(stream: bytes, events: int) -> float:
    """Seconds for EslConnection to receive and dispatch `events` over loopback TCP (reader greenlet,
    dispatcher greenlet, handler), the stream pushed by a local server right after authentication."""
    import gevent
    from gevent.event import Event as Flag
    from gevent.server import StreamServer

    from esl.connection import EslConnection

    go = Flag()

    def serve(sock, _addr):
        sock.sendall(b"Content-Type: auth/request\n\n")
        sock.recv(1024)
        sock.sendall(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
        go.wait(10)
        sock.sendall(stream)
        gevent.sleep(5)

    server = StreamServer(("127.0.0.1", 0), serve)
    server.start()
    conn = EslConnection("127.0.0.1", server.server_port, "ClueCon", connect_timeout=5)
    seen, done = [0], Flag()

    def handler(event):
        if event.unique_id is not None or event.name:
            seen[0] += 1
        if seen[0] == events:
            done.set()

    conn.on("*", handler)
    try:
        conn.connect()
        start = time.perf_counter()
        go.set()
        if not done.wait(60):
            raise RuntimeError(f"only {seen[0]} of {events} events arrived")
        return time.perf_counter() - start
    finally:
        conn.close()
        server.stop(timeout=1)


def measure(fn, stream: bytes, seconds: float) -> tuple[float, int]:
    runs, dispatched, start = 0, 0, time.perf_counter()
    while True:
        dispatched = fn(stream)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / runs, dispatched


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    plain, js = captured_frames("call-events-plain"), captured_frames("call-events-json")
    beat = captured_frames("heartbeat-filter-log")
    logs = [f for f in beat if "Content-Type: log/data\n" in f]
    streams = {
        "call events, plain": plain,
        "plain + log/data": plain + logs,
        "call events, json": js,
        "heartbeat + log/data": beat,
        "all three, mixed": plain + js + beat,
    }
    failure = "nothing"
    print(f"{'stream':22} {'frames':>7} {'events':>7} {'esl/ frames/s':>13} {'esl/ ev/s':>10} {'esl/ all hdrs':>13} "
          f"{'greenswitch':>12} {'lazy':>6} {'equal work':>14}")
    for label, frames in streams.items():
        stream = "".join(frames * args.repeat).encode()
        events = count_events(frames) * args.repeat
        ours, ours_seen = measure(run_esl, stream, args.seconds)
        full, _ = measure(run_esl_all_headers, stream, args.seconds)
        assert ours_seen == events, (ours_seen, events)
        try:
            theirs, _ = measure(run_greenswitch, stream, args.seconds)
            their_rate, ratio, ratio_full = f"{events / theirs:12,.0f}", f"{theirs / ours:5.1f}x", \
                f"{theirs / full:13.1f}x"
        except Exception as exc:  # greenswitch cannot parse text/event-json
            their_rate, ratio, ratio_full = f"{'fails':>12}", f"{'-':>6}", f"{'-':>14}"
            failure = type(exc).__name__
        nframes = len(frames) * args.repeat
        print(f"{label:22} {nframes:7d} {events:7d} {nframes / ours:13,.0f} {events / ours:10,.0f} "
              f"{events / full:13,.0f} {their_rate} {ratio} "
              f"{ratio_full}")
    for label, frames in (("call events, json", js), ("call events, plain", plain)):
        events = count_events(frames) * args.repeat
        elapsed = min(run_esl_tcp("".join(frames * args.repeat).encode(), events) for _ in range(3))
        print(f"end to end over loopback TCP, EslConnection, {label}: {events / elapsed:,.0f} events/s")
    print("events/s count event frames only (log/data frames are framed and skipped by both sides); ratio is")
    print("greenswitch time / esl/ time on the same stream. 'lazy': esl/ handlers read name and Unique-ID only;")
    print("'equal work' / 'all hdrs': esl/ also decodes every header of every event, as greenswitch does.")
    print(f"greenswitch 'fails': its reader raises {failure} on text/event-json (no JSON support).")


if __name__ == "__main__":
    main()
