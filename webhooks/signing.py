"""HMAC-SHA256 webhook signatures over "<timestamp>.<body>", in the Stripe style.

Header: `VoxBridge-Signature: t=<unix seconds>,v1=<hex digest>`. Receivers recompute the digest
with their organization's signing secret and reject stale timestamps, which defeats replays.
During a secret rotation's overlap window the header carries one v1= per live secret, the new
one first (`t=...,v1=<new>,v1=<old>`): a receiver holding either secret accepts the delivery.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "VoxBridge-Signature"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale or does not match."""


def compute(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str | Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """The header value for `body`: one v1= per secret given (several during a rotation's overlap)."""
    ts = int(time.time()) if timestamp is None else timestamp
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return f"t={ts}," + ",".join(f"v1={compute(s, ts, body)}" for s in secrets)


def verify(secret: str, header: str, body: bytes, tolerance_s: int = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> int:
    """Check a received webhook; return its timestamp or raise SignatureError.

    Use the raw request body exactly as received: re-serialized JSON will not match.
    """
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("signature header has no valid t= timestamp") from None
    candidates = parts.get("v1", [])
    if not candidates:
        raise SignatureError("signature header has no v1= signature")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError("signature timestamp outside the tolerance window (possible replay)")
    expected = compute(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match the body")
    return timestamp
