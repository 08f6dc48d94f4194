"""The start/stop of a worker that runs passes in a greenlet (dispatcher, webhook delivery, recording upload).

A subclass provides `_loop`, which runs passes until `_stopping` is set. stop() lets the pass under way
finish (a transaction is never cut in half) for up to `timeout` seconds, and only then kills the greenlet.
"""
from __future__ import annotations

import gevent


class BackgroundLoop:
    _greenlet: gevent.Greenlet | None = None
    _stopping = False

    def start(self) -> None:
        self._stopping = False
        self._greenlet = gevent.spawn(self._loop)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the pass under way, then stop."""
        self._stopping = True
        if self._greenlet is not None:
            self._greenlet.join(timeout)
            self._greenlet.kill()
            self._greenlet = None
