"""The pocketsphinx worker process: framed audio on stdin, JSON-line events on stdout.

Input frames: 1 byte kind (A audio, F finalize, C close) + 4 bytes big-endian length + payload.
Output lines: {"type": "ready"}, {"type": "transcript", ...Transcript fields}, {"type": "error", "message": ...}.
Started by PocketsphinxSTT as `python -m pipeline.providers.pocketsphinx_worker '<options json>'`.
"""
from __future__ import annotations

import json
import struct
import sys
from dataclasses import asdict

from pipeline.providers.pocketsphinx_recognizer import Recognizer, RecognizerOptions

HEADER = struct.Struct(">cI")
MAX_FRAME = 10_000_000


def _write(out, events) -> None:
    for event in events:
        out.write(json.dumps({"type": "transcript", **asdict(event)}) + "\n")
    out.flush()


def serve(options: RecognizerOptions, stdin, stdout) -> None:
    recognizer = Recognizer(options)
    stdout.write('{"type": "ready"}\n')
    stdout.flush()
    while True:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            _write(stdout, recognizer.finalize())
            return
        kind, length = HEADER.unpack(header)
        if length > MAX_FRAME:
            raise ValueError("frame too large")
        payload = stdin.read(length) if length else b""
        if kind == b"A":
            _write(stdout, recognizer.feed(payload))
        elif kind == b"F":
            _write(stdout, recognizer.finalize())
        elif kind == b"C":
            _write(stdout, recognizer.finalize())
            return
        else:
            raise ValueError(f"unknown frame kind {kind!r}")


def main() -> None:
    try:
        options = RecognizerOptions(**json.loads(sys.argv[1]))
        serve(options, sys.stdin.buffer, sys.stdout)
    except Exception as exc:  # reported to the parent, which turns it into STTFailed
        sys.stdout.write(json.dumps({"type": "error", "message": f"{type(exc).__name__}: {exc}"}) + "\n")
        sys.stdout.flush()
        sys.exit(1)


if __name__ == "__main__":
    main()
