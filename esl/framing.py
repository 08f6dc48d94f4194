"""Incremental ESL frame parser: header lines, a blank line, then exactly Content-Length bytes of body.

feed() takes whatever recv() returned (a partial frame, many frames, a split inside a header or the body)
and returns the frames completed so far. Outer frame headers are kept as sent: FreeSWITCH does not
URL-encode them, except in the outbound-socket `connect` reply, which events.parse_plain_headers decodes.
"""
from __future__ import annotations

from esl.errors import FrameError

MAX_HEADER_BYTES = 256 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class Frame:
    """One ESL frame. Content-Type and Content-Length are read with two searches; the header dict is built on
    first use (log/data and event frames rarely need it, and building it is most of a small frame's cost)."""

    __slots__ = ("_head", "_headers", "body", "content_type")

    def __init__(self, head: bytes, body: bytes = b"", content_type: str = "") -> None:
        self._head = head
        self._headers: dict[str, str] | None = None
        self.body = body
        self.content_type = content_type

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = _parse_head(self._head)
        return self._headers

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")

    def __repr__(self) -> str:
        return f"Frame({self.content_type!r}, {len(self.body)} bytes)"


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


def _header(head: bytes, name: bytes) -> bytes | None:
    """The value of header `name` (given as b"\nName: ") at a line start; the last one wins, as in the dict."""
    at = head.rfind(name)
    if at < 0:
        if not head.startswith(name[1:]):
            return None
        start = len(name) - 1
    else:
        start = at + len(name)
    end = head.find(b"\n", start)
    return head[start:] if end < 0 else head[start:end]


_TYPES: dict[bytes, str] = {}  # the handful of content types FreeSWITCH sends, decoded once


def _content_type(head: bytes) -> str:
    raw = _header(head, b"\nContent-Type: ")
    if raw is None:
        return ""
    known = _TYPES.get(raw)
    if known is None:
        known = raw.decode("ascii", "replace")
        if len(_TYPES) < 64:
            _TYPES[raw] = known
    return known


class FrameParser:
    """Feed bytes, get complete Frames. Keeps at most one partial frame buffered."""

    __slots__ = ("_buf", "_pending", "_need")

    def __init__(self) -> None:
        self._buf = b""
        self._pending: bytes | None = None  # header block of a frame whose body is incomplete
        self._need = 0

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf + data if self._buf else data
        if self._pending is not None and len(buf) < self._need:
            self._buf = buf  # still waiting for the body: don't rescan anything
            return []
        frames: list[Frame] = []
        append = frames.append
        pos = 0
        size = len(buf)
        find = buf.find
        while True:
            head = self._pending
            if head is None:
                end = find(b"\n\n", pos)
                if end == pos:  # tolerate stray newlines between frames
                    while pos < size and buf[pos] == 10:
                        pos += 1
                    continue
                if end < 0:
                    if size - pos > MAX_HEADER_BYTES:
                        raise FrameError("header block over limit without a blank line")
                    break
                head = buf[pos:end]
                pos = end + 2
                # Content-Type and Content-Length inlined (this runs once per frame; calls cost here).
                at = head.rfind(b"\nContent-Type: ")
                at = at + 15 if at >= 0 else (14 if head.startswith(b"Content-Type: ") else -1)
                if at >= 0:
                    stop = head.find(b"\n", at)
                    kind = _TYPES.get(head[at:] if stop < 0 else head[at:stop]) or _content_type(head)
                else:
                    kind = ""
                at = head.rfind(b"\nContent-Length: ")
                at = at + 17 if at >= 0 else (16 if head.startswith(b"Content-Length: ") else -1)
                if at >= 0:
                    stop = head.find(b"\n", at)
                    raw = head[at:] if stop < 0 else head[at:stop]
                    if not raw.isdigit() or len(raw) > 9:  # bytes.isdigit is ASCII-only
                        raise FrameError(f"bad Content-Length {raw[:20]!r}")
                    length = int(raw)
                    if length > MAX_BODY_BYTES:
                        raise FrameError(f"Content-Length {length} over limit")
                else:
                    length = 0
                if length == 0:
                    append(Frame(head, b"", kind))
                    continue
                if pos + length > size:
                    self._pending, self._need = head, length
                    break
            else:
                length = self._need
                if pos + length > size:
                    break
                kind = _content_type(head)
            append(Frame(head, buf[pos:pos + length], kind))
            pos += length
            self._pending = None
        # Keep only the unconsumed tail; when waiting for a body, _need counts from the tail's start.
        self._buf = buf[pos:] if pos < size else b""
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buf)
