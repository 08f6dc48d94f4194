"""Which call the running code works for: a context variable each call's greenlets carry, read by the logs.

Greenlets start with an empty context (unlike threads spawned with contextvars copied), so work spawned for a
call goes through spawn() here, which runs it in a copy of the spawner's context; entry points that learn the
call id (the audio socket, an ESL event, the dispatcher's originate, a webhook delivery) open call_context().
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable, Iterator
from typing import Any

import gevent

_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("voxbridge_call_id", default=None)
# Call ids are UUIDs; anything else (a caller-controlled header, a stray event variable) is not logged as one.
_CALL_ID_RE = re.compile(r"[0-9a-fA-F-]{36}")


def current_call_id() -> str | None:
    return _CALL_ID.get()


def _valid(call_id: str | None) -> str | None:
    return call_id if isinstance(call_id, str) and _CALL_ID_RE.fullmatch(call_id) else None


@contextlib.contextmanager
def call_context(call_id: str | None) -> Iterator[None]:
    """Code in this block (and greenlets it starts through spawn()) works for call_id."""
    token = _CALL_ID.set(_valid(call_id))
    try:
        yield
    finally:
        _CALL_ID.reset(token)


def in_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn bound to a copy of the current context: it sees the call id of whoever made it, wherever it runs."""
    context = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> Any:
        return context.run(fn, *args, **kwargs)

    return run


def spawn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> gevent.Greenlet:
    """gevent.spawn, the new greenlet running in a copy of this one's context (so with its call id)."""
    return gevent.spawn(in_context(fn), *args, **kwargs)


def enter_call(call_id: str | None) -> None:
    """For a greenlet that serves one call for the rest of its life (the audio socket's): no block to close."""
    _CALL_ID.set(_valid(call_id))
