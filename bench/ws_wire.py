"""The little of RFC 6455 the bench callers need: a client handshake, masked frames, a reply-header parser.

The callers (ws_callers.py) speak to AudioForkServer as mod_audio_fork does: an HTTP upgrade to
/audio/<call_id>?token=... offering subprotocol audio.drachtio.org, then masked frames. It is written here
rather than taken from websocket-client because that library masks every frame in Python and needs a greenlet
per caller doing a blocking send; this lets one scheduler write pre-built frames to hundreds of sockets.
"""
from __future__ import annotations

import base64
import hashlib
import os
import socket
from urllib.parse import urlsplit

SUBPROTOCOL = "audio.drachtio.org"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
PEEK_BYTES = 64  # how much of a text reply is looked at: json.dumps puts "type" first


class HandshakeError(Exception):
    """The server did not upgrade the connection (its status line says why)."""


def mask(payload: bytes, key: bytes) -> bytes:
    """payload XOR the repeated 4-byte key, as whole integers (no per-byte Python loop)."""
    n = len(payload)
    if not n:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


def frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """One final, masked client frame (a client must mask every frame it sends)."""
    key = os.urandom(4) if key is None else key
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + mask(payload, key)


def close_frame(code: int = 1000) -> bytes:
    return frame(OP_CLOSE, code.to_bytes(2, "big"))


def connect(url: str, timeout: float = 30.0) -> tuple[socket.socket, bytes]:
    """Open ws://host:port/path?query as mod_audio_fork does; returns the socket and any bytes read past the
    101 response (the server may already have sent a frame)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    try:
        # Frames are small and due now: Nagle would hold one back behind an unacknowledged one.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        sock.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: " + parts.netloc.encode() +
                     b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                     b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + SUBPROTOCOL.encode() +
                     b"\r\n\r\n")
        head, rest = _read_head(sock)
        _check_upgrade(head, key)
    except BaseException:
        sock.close()
        raise
    return sock, rest


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise HandshakeError("connection closed during the handshake")
        data += chunk
        if len(data) > 16384:
            raise HandshakeError("handshake response too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _check_upgrade(head: bytes, key: bytes) -> None:
    status, *lines = head.decode("latin-1").split("\r\n")
    if status.split(" ")[1:2] != ["101"]:
        raise HandshakeError(f"status {status!r}")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()  # noqa: S324 - RFC 6455 says SHA-1
    if headers.get("sec-websocket-accept") != accept:
        raise HandshakeError("bad Sec-WebSocket-Accept")
    if headers.get("sec-websocket-protocol") != SUBPROTOCOL:
        raise HandshakeError(f"subprotocol {headers.get('sec-websocket-protocol')!r} not accepted")


class ReplyParser:
    """Finds the server's frames in a byte stream without keeping their payloads.

    feed() returns (opcode, head) per frame whose header arrived: head is the first PEEK_BYTES of a text
    payload, the whole payload of a control frame, and empty otherwise (binary audio needs no look inside).
    The rest of each payload is skipped as it arrives, so a 25 kB playAudio costs a header parse, not a copy.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._skip = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return []
            data, self._skip = data[self._skip:], 0
        buf = self._buf + data if self._buf else data
        events: list[tuple[int, bytes]] = []
        pos = 0
        while True:
            parsed = _header(buf, pos)
            if parsed is None:
                break
            opcode, start, length = parsed
            want = min(length, PEEK_BYTES if opcode == OP_TEXT else length if opcode >= OP_CLOSE else 0)
            if len(buf) - start < want:
                break  # wait for the rest of what we look at; parse this header again then
            events.append((opcode, buf[start:start + want]))
            end = start + length
            if end > len(buf):
                self._skip, pos = end - len(buf), len(buf)
                break
            pos = end
        self._buf = buf[pos:]
        return events


def _header(buf: bytes, pos: int) -> tuple[int, int, int] | None:
    """(opcode, payload start, payload length) of the frame at pos, or None if its header is incomplete."""
    if len(buf) - pos < 2:
        return None
    opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
    start = pos + 2
    if n == 126:
        if len(buf) < start + 2:
            return None
        n, start = int.from_bytes(buf[start:start + 2], "big"), start + 2
    elif n == 127:
        if len(buf) < start + 8:
            return None
        n, start = int.from_bytes(buf[start:start + 8], "big"), start + 8
    if buf[pos + 1] & 0x80:  # a server must not mask; skip the key if one does
        start += 4
    if len(buf) < start:
        return None
    return opcode, start, n
