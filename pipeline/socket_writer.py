"""One socket's writes, in order, from one greenlet (the audio stream connections' write side).

A greenlet killed while it sends (a reply cut by barge-in) can never leave half a WebSocket frame on the wire,
and a killAudio never waits behind a long reply: every writer only queues bytes here, and one greenlet sends them.
A peer that stops reading is dropped once max_queued_bytes are waiting, instead of growing the queue without end.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import gevent
import gevent.queue

log = logging.getLogger(__name__)
_STOP, _SHUTDOWN = object(), object()  # queue markers: end the writer / half-close after what is queued


class OrderedWriter:
    def __init__(self, sock: socket.socket, max_queued_bytes: int, on_failed: Callable[[str], None]):
        """on_failed(why): a send failed; the writer has stopped and nothing more goes out."""
        self.sock = sock
        self.max_queued_bytes = max_queued_bytes
        self.on_failed = on_failed
        self.queued_bytes = 0
        self.overflowed = False
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._greenlet = gevent.spawn(self._loop)

    def write(self, data: bytes) -> bool:
        """Queue bytes to send after everything queued before them; never blocks. False: the peer is not reading
        (over max_queued_bytes), so the socket is half-closed after what is queued and these bytes are dropped."""
        if not data or self._greenlet.dead:
            return True
        if self.overflowed or self.queued_bytes + len(data) > self.max_queued_bytes:
            if not self.overflowed:
                self.overflowed = True  # nothing more is queued: the socket closes after what is
                self._queue.put(_SHUTDOWN)
            return False
        self.queued_bytes += len(data)
        self._queue.put(data)
        return True

    def shut_down_after_queued(self) -> None:
        """Half-close the socket once what is queued (a close frame, say) has gone out."""
        self._queue.put(_SHUTDOWN)

    def finish(self, timeout: float) -> None:
        """Send what is queued for up to `timeout` seconds, then stop."""
        self._queue.put(_STOP)
        self._greenlet.join(timeout=timeout)
        self._greenlet.kill(block=False)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if item is _SHUTDOWN:
                self._shut_down()
                continue
            self.queued_bytes -= len(item)
            try:
                self.sock.sendall(item)
            except OSError as exc:
                self.on_failed(f"write failed: {exc}")
                return

    def _shut_down(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
