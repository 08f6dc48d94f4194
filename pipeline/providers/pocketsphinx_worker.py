"""A pool worker process: recognizers for many streams over one pipe, decoders shared between them.

Input messages: 1 byte kind + 4 bytes stream id + 4 bytes length (big-endian) + payload. Kinds: O open (the
stream's RecognizerOptions as JSON), A audio, S skipped (payload: 8-byte count of audio bytes the parent
dropped), F finalize, C close (final results, then a "closed" line).
Output lines: {"type": "ready", "pid": ...}, {"type": "transcript", "stream": id, ...Transcript fields},
{"type": "closed", "stream": id}, {"type": "error", "stream": id or null, "message": ...}.
Started by pocketsphinx_pool as `python -m pipeline.providers.pocketsphinx_worker '{"decoders": N,
"max_decoders": M}'`; it ends
at end of input. One stream's failure ends that stream only.
"""
from __future__ import annotations

import json
import struct
import sys
from dataclasses import asdict

from pipeline.providers.pocketsphinx_recognizer import DEFAULT_SEARCH, DecoderSet, Recognizer, RecognizerOptions

HEADER = struct.Struct(">cII")
SKIP = struct.Struct(">Q")
MAX_FRAME = 10_000_000


class Worker:
    def __init__(self, decoders: DecoderSet, out):
        self.decoders, self.out = decoders, out
        self.streams: dict[int, Recognizer] = {}

    def line(self, message: dict) -> None:
        self.out.write(json.dumps(message) + "\n")

    def handle(self, kind: bytes, stream: int, payload: bytes) -> None:
        if kind == b"O":
            try:
                self.streams[stream] = Recognizer(RecognizerOptions(**json.loads(payload)), self.decoders)
            except Exception as exc:  # bad options end this stream, not the worker
                self.line({"type": "error", "stream": stream, "message": f"{type(exc).__name__}: {exc}"})
            return
        recognizer = self.streams.get(stream)
        if recognizer is None:  # closed after a failure, or never opened: nothing to do
            if kind == b"C":
                self.line({"type": "closed", "stream": stream})
            return
        try:
            if kind == b"A":
                self.emit(stream, recognizer.feed(payload))
            elif kind == b"S":
                recognizer.skip(SKIP.unpack(payload)[0])
            elif kind == b"F":
                self.emit(stream, recognizer.finalize())
            elif kind == b"C":
                self.emit(stream, recognizer.finalize())
                self.drop(stream)
                self.line({"type": "closed", "stream": stream})
            else:
                raise ValueError(f"unknown message kind {kind!r}")
        except Exception as exc:  # this stream's audio or state broke it: end it, keep the others
            self.drop(stream)
            self.line({"type": "error", "stream": stream, "message": f"{type(exc).__name__}: {exc}"})

    def drop(self, stream: int) -> None:
        recognizer = self.streams.pop(stream, None)
        if recognizer is not None:
            recognizer.release()

    def emit(self, stream: int, events) -> None:
        for event in events:
            self.line({"type": "transcript", "stream": stream, **asdict(event)})

    def resume_waiting(self) -> None:
        """A decoder may have been freed: the streams that wait for one catch up (in stream order)."""
        for stream, recognizer in list(self.streams.items()):
            if not self.decoders.free and self.decoders.count >= self.decoders.limit:
                return
            if recognizer.waiting:
                self.emit(stream, recognizer.resume())


def serve(decoders: DecoderSet, stdin, stdout) -> None:
    worker = Worker(decoders, stdout)
    stdout.write(json.dumps({"type": "ready", "decoders": decoders.count}) + "\n")
    stdout.flush()
    while True:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        kind, stream, length = HEADER.unpack(header)
        if length > MAX_FRAME:
            raise ValueError("message too large")
        payload = stdin.read(length) if length else b""
        worker.handle(kind, stream, payload)
        worker.resume_waiting()
        stdout.flush()


def main() -> None:
    try:
        settings = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
        decoders = int(settings.get("decoders", 1))
        search = str(settings.get("search", DEFAULT_SEARCH))
        serve(DecoderSet(decoders, int(settings.get("max_decoders", decoders)), search), sys.stdin.buffer, sys.stdout)
    except Exception as exc:  # reported to the parent, which restarts the worker
        sys.stdout.write(json.dumps({"type": "error", "stream": None,
                                     "message": f"{type(exc).__name__}: {exc}"}) + "\n")
        sys.stdout.flush()
        sys.exit(1)


if __name__ == "__main__":
    main()
