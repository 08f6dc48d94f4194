"""Incremental ESL frame parser: header lines, a blank line, then exactly Content-Length bytes of body.

feed() takes whatever recv() returned (a partial frame, many frames, a split inside a header or the body)
and returns the frames completed so far. Outer frame headers are kept as sent: FreeSWITCH does not
URL-encode them, except in the outbound-socket `connect` reply, which events.parse_plain_headers decodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from esl.errors import FrameError

MAX_HEADER_BYTES = 256 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class Frame:
    headers: dict[str, str]
    body: bytes = b""
    content_type: str = field(default="")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")


def _parse_head(block: bytes) -> dict[str, str]:
    text = block.decode("utf-8", "replace")
    # Fast path in C: when every line holds exactly one ": ", pairs fall out of one split.
    parts = text.replace("\n", ": ").split(": ")
    if len(parts) == 2 * (text.count("\n") + 1):
        return dict(zip(parts[::2], parts[1::2], strict=True))
    headers: dict[str, str] = {}
    for line in text.split("\n"):  # a value with ": " in it (Reply-Text: +OK Job-UUID: ...)
        key, _, value = line.partition(": ")
        headers[key] = value
    return headers


def _content_length(headers: dict[str, str]) -> int:
    raw = headers.get("Content-Length")
    if raw is None:
        return 0
    if not raw.isdigit() or not raw.isascii():
        raise FrameError(f"bad Content-Length {raw[:20]!r}")
    length = int(raw)
    if length > MAX_BODY_BYTES:
        raise FrameError(f"Content-Length {length} over limit")
    return length


class FrameParser:
    """Feed bytes, get complete Frames. Keeps at most one partial frame buffered."""

    __slots__ = ("_buf", "_pending", "_need")

    def __init__(self) -> None:
        self._buf = b""
        self._pending: dict[str, str] | None = None  # headers of a frame whose body is incomplete
        self._need = 0

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf + data if self._buf else data
        if self._pending is not None and len(buf) < self._need:
            self._buf = buf  # still waiting for the body: don't rescan anything
            return []
        frames: list[Frame] = []
        pos = 0
        size = len(buf)
        find = buf.find
        while True:
            headers = self._pending
            if headers is None:
                while pos < size and buf[pos] == 10:  # tolerate stray newlines between frames
                    pos += 1
                end = find(b"\n\n", pos)
                if end < 0:
                    if size - pos > MAX_HEADER_BYTES:
                        raise FrameError("header block over limit without a blank line")
                    break
                headers = _parse_head(buf[pos:end])
                pos = end + 2
                length = _content_length(headers)
                if length == 0:
                    frames.append(Frame(headers, b"", headers.get("Content-Type", "")))
                    continue
                if pos + length > size:
                    self._pending, self._need = headers, length
                    break
            else:
                length = self._need
                if pos + length > size:
                    break
            frames.append(Frame(headers, buf[pos:pos + length], headers.get("Content-Type", "")))
            pos += length
            self._pending = None
        # Keep only the unconsumed tail; when waiting for a body, _need counts from the tail's start.
        self._buf = buf[pos:] if pos < size else b""
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buf)
