"""Bearer API keys and the per-key rate limit."""
from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass

from flask import g, request

from api.errors import ApiError
from api.keys import touch_last_used
from models import ApiKey
from models.tenancy import REVOCATION_LISTENERS, hash_key


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: `per_minute` sustained, bursts up to the same amount."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed, else the seconds until a request would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(self.capacity, now))
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


class KeyCache:
    """Authenticated keys remembered for a couple of seconds: the key lookup is the costliest query of
    a POST. A revocation made in this process (ApiKey.revoke) evicts the key at once; one made by
    another process (another API worker, `app.py revoke-key`) takes effect here within `ttl_s`.
    Allowance checks never trust the cached organization (see api.calls._check_allowance)."""

    def __init__(self, ttl_s: float = 2.0):
        self.ttl_s = ttl_s
        self._keys: dict[str, tuple[float, ApiKey]] = {}
        _CACHES.add(self)

    def authenticate(self, plaintext: str) -> ApiKey | None:
        now = time.monotonic()
        digest = hash_key(plaintext)
        hit = self._keys.get(digest)
        if hit and hit[0] > now:
            return hit[1]
        key = ApiKey.authenticate(plaintext)
        if key is not None and self.ttl_s > 0:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (now + self.ttl_s, key)
        return key

    def forget(self, key_id: str) -> None:
        for digest, (_expires, key) in list(self._keys.items()):
            if key.id == key_id:
                self._keys.pop(digest, None)


_CACHES: weakref.WeakSet[KeyCache] = weakref.WeakSet()


def _evict_revoked(key_id: str) -> None:
    for cache in list(_CACHES):
        cache.forget(key_id)


REVOCATION_LISTENERS.append(_evict_revoked)


def authenticate(limiter: RateLimiter, keys: KeyCache) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send your API key as 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": 'Bearer realm="voxbridge"'})
    key = keys.authenticate(token.strip())
    if key is None:
        raise ApiError(401, "unauthorized", "API key is invalid or revoked",
                       headers={"WWW-Authenticate": 'Bearer realm="voxbridge", error="invalid_token"'})
    wait = limiter.take(key.id)
    if wait:
        raise ApiError(429, "rate_limited", "too many requests for this API key; retry later",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})
    g.api_key = key
    g.org = key.organization
    touch_last_used(key)
