"""Signed, expiring tokens for the audio WebSocket URL: HMAC-SHA256 over the call id and the expiry.

Token format: "<expiry unix seconds>.<hex signature>". The URL the app hands to uuid_audio_fork is
ws://host:port/audio/<call_id>?token=<token>; both parts use only URL- and ESL-safe characters.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time

CALL_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,79}\Z")


class TokenError(ValueError):
    """Why a token was refused (safe to log: never contains the secret or the signature)."""


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < 16:
        raise ValueError("the audio token secret must be at least 16 bytes")
    return key


def _sign(call_id: str, expiry: int, secret: str | bytes) -> str:
    return hmac.new(_key(secret), f"{call_id}\n{expiry}".encode(), hashlib.sha256).hexdigest()


def make_token(call_id: str, secret: str | bytes, ttl: float, now: float | None = None) -> str:
    if not CALL_ID.match(call_id):
        raise ValueError("call id must be 1-80 characters of [A-Za-z0-9_.-]")
    expiry = int((time.time() if now is None else now) + ttl)
    return f"{expiry}.{_sign(call_id, expiry, secret)}"


def check_token(token: str | None, call_id: str, secret: str | bytes, now: float | None = None) -> None:
    """Raise TokenError unless token is a valid, unexpired signature for call_id."""
    if not token:
        raise TokenError("missing token")
    if not CALL_ID.match(call_id or ""):
        raise TokenError("malformed call id")
    expiry_text, _, signature = token.partition(".")
    if not expiry_text.isdigit() or len(expiry_text) > 12 or not signature:
        raise TokenError("malformed token")
    if not hmac.compare_digest(signature, _sign(call_id, int(expiry_text), secret)):
        raise TokenError("bad signature")
    if int(expiry_text) < (time.time() if now is None else now):
        raise TokenError("expired token")


def verify_token(token: str | None, call_id: str, secret: str | bytes, now: float | None = None) -> bool:
    try:
        check_token(token, call_id, secret, now)
    except TokenError:
        return False
    return True


def audio_fork_url(base_url: str, call_id: str, secret: str | bytes, ttl: float) -> str:
    """The URL for `uuid_audio_fork <uuid> start <url> ...`, e.g. base_url "ws://127.0.0.1:8090"."""
    return f"{base_url.rstrip('/')}/audio/{call_id}?token={make_token(call_id, secret, ttl)}"
