"""The web call's token: short-lived, signed, single-use, naming one call.

Format "<expiry unix seconds>.<hex HMAC-SHA256>" over "web\\n<call id>\\n<expiry>". The "web" purpose keeps an
audio-fork token (pipeline/tokens.py, the same secret) from opening a browser stream and the other way round.
Single use is not kept here: the first stream that opens marks the call answered (a conditional UPDATE in
webcall/service.py), and a second one with the same token then finds the call already answered.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from pipeline.tokens import CALL_ID

PURPOSE = "web"


class WebTokenError(ValueError):
    """Why a token was refused; `close_code` is what the browser's WebSocket sees (safe to show: no secret)."""

    def __init__(self, message: str, close_code: int):
        super().__init__(message)
        self.close_code = close_code


# WebSocket close codes a page can tell apart (4000-4999 are the application's own, RFC 6455 7.4.2).
CLOSE_BAD_REQUEST = 4400  # no token, or a path that names no call
CLOSE_BAD_TOKEN = 4401  # malformed, or not signed by this deployment for this call
CLOSE_ORIGIN = 4403  # the page's origin is not in WEB_CALL_ALLOWED_ORIGINS
CLOSE_GONE = 4404  # no such web call, or it already ended
CLOSE_EXPIRED = 4408  # signed, but its time ran out before the browser connected
CLOSE_USED = 4409  # signed and in time, but a stream already used it
CLOSE_UNAVAILABLE = 4503  # the server could not look the call up (database)


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < 16:
        raise ValueError("the web call token secret must be at least 16 bytes")
    return key


def _sign(call_id: str, expiry: int, secret: str | bytes) -> str:
    return hmac.new(_key(secret), f"{PURPOSE}\n{call_id}\n{expiry}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebToken:
    call_id: str
    token: str
    expires_at: float  # unix seconds


def issue(call_id: str, secret: str | bytes, ttl_s: float, now: float | None = None) -> WebToken:
    if not CALL_ID.match(call_id):
        raise ValueError("call id must be 1-80 characters of [A-Za-z0-9_.-]")
    expiry = int((time.time() if now is None else now) + ttl_s)
    return WebToken(call_id, f"{expiry}.{_sign(call_id, expiry, secret)}", float(expiry))


def check(token: str | None, call_id: str, secret: str | bytes, now: float | None = None) -> None:
    """Raise WebTokenError unless `token` is this deployment's unexpired signature for `call_id`."""
    if not token:
        raise WebTokenError("missing token", CLOSE_BAD_REQUEST)
    if not CALL_ID.match(call_id or ""):
        raise WebTokenError("malformed call id", CLOSE_BAD_REQUEST)
    expiry_text, _, signature = token.partition(".")
    if not expiry_text.isdigit() or len(expiry_text) > 12 or len(signature) != 64:
        raise WebTokenError("malformed token", CLOSE_BAD_TOKEN)
    if not hmac.compare_digest(signature, _sign(call_id, int(expiry_text), secret)):
        raise WebTokenError("token not valid for this call", CLOSE_BAD_TOKEN)
    if int(expiry_text) < (time.time() if now is None else now):
        raise WebTokenError("token expired", CLOSE_EXPIRED)
