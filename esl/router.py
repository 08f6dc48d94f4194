"""Event handlers registered by name: an event name (CHANNEL_ANSWER), a CUSTOM subclass
(mod_audio_fork::connect) or '*' for every event. A failing handler is logged and never stops the others."""
from __future__ import annotations

import logging
from collections.abc import Callable

from esl.events import Event

log = logging.getLogger(__name__)
Handler = Callable[[Event], object]


class EventRouter:
    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def on(self, key: str, handler: Handler) -> None:
        handlers = self._handlers.setdefault(key, [])
        if handler not in handlers:
            handlers.append(handler)

    def off(self, key: str, handler: Handler) -> None:
        handlers = self._handlers.get(key, [])
        if handler in handlers:
            handlers.remove(handler)

    def dispatch(self, event: Event) -> int:
        """Run the handlers for the event's key, then the '*' handlers; returns how many ran."""
        get = self._handlers.get
        specific = get(event.subclass if event.name == "CUSTOM" and event.subclass else event.name)
        wildcard = get("*")
        ran = 0
        for handlers in (specific, wildcard):
            if not handlers:
                continue
            for handler in tuple(handlers):
                try:
                    handler(event)
                except Exception:
                    log.exception("ESL handler %r failed on %s", handler, event.key)
                ran += 1
        return ran
