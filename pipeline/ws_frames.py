"""A server-side RFC 6455 frame reader: the bytes a WebSocket client sends, after the handshake, as messages.

Why not wsproto: its reader costs ~34 us per 20 ms audio frame (a frame object, an event object, a generic
unmasking loop and several buffer copies per frame); at 50 frames a second per call that was a large share of
the audio server's CPU. This one parses straight from the received bytes and unmasks with one C call.

`FrameReader.feed(data)` yields (opcode, payload) in order: TEXT with a str (whole message, UTF-8 checked),
BINARY with bytes (whole message), PING / PONG with bytes, CLOSE with (code, reason). A frame split across
feeds waits for its rest; several frames in one feed all come out. Anything the RFC says must fail the
connection raises FrameError with the close code to send (1002 protocol error, 1007 bad UTF-8, 1009 too big);
the reader is then dead and raises it again on any further feed.
"""
from __future__ import annotations

from collections.abc import Iterator

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA = (CONTINUATION, TEXT, BINARY)
_CONTROL = (CLOSE, PING, PONG)
NO_STATUS = 1005  # a close frame without a code (what wsproto reports, and echoes as an empty close)
_SENDABLE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))

__all__ = ["BINARY", "CLOSE", "CONTINUATION", "NO_STATUS", "PING", "PONG", "TEXT", "FrameError", "FrameReader",
           "unmask"]


class FrameError(Exception):
    """The peer broke the protocol; close the connection with `code`."""

    def __init__(self, reason: str, code: int = 1002):
        super().__init__(reason)
        self.code = code


def _unmask_int(payload: bytes, key: bytes) -> bytes:
    # XOR as one big integer: a handful of C calls whatever the length, not a Python loop per byte.
    n = len(payload)
    mask = int.from_bytes((key * ((n >> 2) + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")


try:  # websockets (a runtime dependency) ships this in C: ~0.1 us for 640 bytes against ~1.8 us
    from websockets.speedups import apply_mask as _unmask_c
except ImportError:  # pragma: no cover - a build without the extension
    _unmask_c = None


def unmask(payload: bytes, key: bytes) -> bytes:
    """payload XOR the 4-byte key repeated."""
    if not payload:
        return b""
    return _unmask_c(payload, key) if _unmask_c is not None else _unmask_int(payload, key)


class FrameReader:
    """Parses client-to-server frames (which must be masked) into whole messages; see the module docstring."""

    def __init__(self, max_message_bytes: int = 1 << 20):
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()  # the start of a frame whose rest has not arrived
        self._message_opcode = 0  # TEXT or BINARY while a fragmented message is open, else 0
        self._fragments: list[bytes] = []
        self._fragment_bytes = 0
        self._error: FrameError | None = None
        self._pos = 0  # how far the current feed has been handed out

    def feed(self, data: bytes) -> Iterator[tuple[int, object]]:
        if self._error is not None:
            raise self._error
        if self._buffer:  # extended in place: a big frame arriving in many reads is not copied again each time
            self._buffer += data
            buf = self._buffer
        else:
            buf = data
        self._pos = 0
        try:
            yield from self._parse(buf)
        except FrameError as exc:
            self._error = exc
            raise
        finally:  # also when the caller stopped early: what was not handed out is read by the next feed
            pos = self._pos
            if pos == len(buf):
                self._buffer = bytearray()
            elif pos or buf is not self._buffer:
                self._buffer = bytearray(buf[pos:])

    def _parse(self, buf: bytes | bytearray) -> Iterator[tuple[int, object]]:
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b0 & 0x70:
                raise FrameError("reserved bits set (no extension was agreed)")
            if not b1 & 0x80:
                raise FrameError("client frame is not masked")
            length, head = b1 & 0x7F, pos + 6
            if length >= 126:
                length, head = self._extended_length(buf, pos, length)
                if length < 0:
                    break  # the extended length has not all arrived
            opcode = b0 & 0x0F
            self._check_frame(opcode, b0 & 0x80, length)
            if end - head < length:
                break
            payload = unmask(buf[head : head + length], buf[head - 4 : head])
            pos = self._pos = head + length
            if opcode == BINARY and b0 & 0x80:  # the audio: one whole binary frame
                yield BINARY, payload
            else:
                message = self._message(opcode, b0 & 0x80, payload)
                if message is not None:
                    yield message

    @staticmethod
    def _extended_length(buf: bytes | bytearray, pos: int, code: int) -> tuple[int, int]:
        """(payload length, payload start) of a frame with a 16- or 64-bit length; (-1, 0) if incomplete."""
        size = 2 if code == 126 else 8
        if len(buf) - pos < 2 + size:
            return -1, 0
        length = int.from_bytes(buf[pos + 2 : pos + 2 + size], "big")
        if size == 8 and length >> 63:
            raise FrameError("64-bit payload length with its top bit set")
        if length < (126 if size == 2 else 1 << 16):
            raise FrameError("payload length not in its shortest form")
        return length, pos + 2 + size + 4

    def _check_frame(self, opcode: int, fin: int, length: int) -> None:
        """Everything a frame header can be refused for, before its payload is waited for or buffered."""
        if opcode in _CONTROL:
            if length > 125:
                raise FrameError("control frame payload longer than 125 bytes")
            if not fin:
                raise FrameError("fragmented control frame")
            return
        if opcode not in _DATA:
            raise FrameError(f"unknown opcode {opcode:#x}")
        if opcode == CONTINUATION:
            if not self._message_opcode:
                raise FrameError("continuation frame without a message to continue")
        elif self._message_opcode:
            raise FrameError("new message before the fragmented one finished")
        if self._fragment_bytes + length > self.max_message_bytes:
            raise FrameError(f"message larger than {self.max_message_bytes} bytes", 1009)

    def _message(self, opcode: int, fin: int, payload: bytes) -> tuple[int, object] | None:
        if opcode in _CONTROL:
            return (CLOSE, _close_payload(payload)) if opcode == CLOSE else (opcode, payload)
        if not fin:  # the first or a middle fragment
            if opcode != CONTINUATION:
                self._message_opcode = opcode
            self._fragments.append(payload)
            self._fragment_bytes += len(payload)
            return None
        if opcode == CONTINUATION:
            self._fragments.append(payload)
            opcode, payload = self._message_opcode, b"".join(self._fragments)
            self._message_opcode, self._fragments, self._fragment_bytes = 0, [], 0
        if opcode == TEXT:
            return TEXT, _utf8(payload, "text message")
        return BINARY, payload


def _utf8(payload: bytes, what: str) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(f"{what} is not valid UTF-8", 1007) from None


def _close_payload(payload: bytes) -> tuple[int, str]:
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        raise FrameError("close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
        raise FrameError(f"close code {code} may not be sent")
    return code, _utf8(payload[2:], "close reason")
