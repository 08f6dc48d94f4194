"""websockets' sync (threaded) connections, made safe on a gevent loop.

The Deepgram SDK's live client runs on `websockets.sync`: a reader thread waits in a selector on the
socket and on a wake-up socketpair, and `close_socket()` closes the socket from whichever thread
decides to close. Under gevent's monkey patching those threads are greenlets on one libev loop, and
gevent's selector leaves a watcher started on every fd that did not fire when `select()` returns.
So the socket is closed while a watcher still wants it, and on the next `epoll_ctl` for that fd
libev aborts the whole process ("I/O watcher with invalid fd found in epoll_ctl"): every live call
on the node drops. Seen in this project's test suite, one run in two.

`install()` fixes the order, not the libraries:
- the selector websockets uses stops all its watchers when `select()` returns, so an fd is watched
  only while someone is waiting on it;
- `close_socket()` called from another greenlet first wakes the reader and lets it leave `select()`
  (bounded), then closes;
- `Server.shutdown()` shuts the listening socket down (which wakes `serve_forever()` and fails its
  `accept()`), waits until it stopped accepting, then closes it.
"""
from __future__ import annotations

import selectors
import socket
import threading
import types

from gevent import monkey

READER_EXIT_WAIT_S = 2.0  # how long close_socket() waits for the reader to leave select()

_installed = False


def _close_safe_selector_class():
    from gevent.selectors import GeventSelector

    class CloseSafeSelector(GeventSelector):
        """gevent's selector, with no watcher left running between select() calls."""

        def select(self, timeout=None):
            try:
                return super().select(timeout)
            finally:
                self.quiesce()

        def quiesce(self) -> None:
            active = self._active_watchers
            if active:
                for watcher in active.values():
                    watcher.stop()
                self._inactive_watchers.update(active)
                active.clear()

    return CloseSafeSelector


def _wrap_close_socket(original):
    def close_socket(self) -> None:
        reader = getattr(self, "recv_events_thread", None)
        if reader is not None and reader.is_alive() and threading.current_thread() is not reader:
            try:
                self.shutdown_notifier.send(b"x")  # wakes the reader's select()
            except OSError:
                pass
            reader.join(READER_EXIT_WAIT_S)
        original(self)

    close_socket.__wrapped__ = original
    return close_socket


def _wrap_shutdown(original):
    def shutdown(self, *args, **kwargs) -> None:
        if not self.socket_closed.is_set():
            try:
                self.socket.shutdown(socket.SHUT_RDWR)  # listening socket: wakes the poller, accept() fails
            except OSError:
                pass
            self.socket_closed.wait(READER_EXIT_WAIT_S)
        original(self, *args, **kwargs)

    shutdown.__wrapped__ = original
    return shutdown


def install() -> bool:
    """Patch websockets.sync for gevent (idempotent). False when selectors is not gevent-patched."""
    global _installed
    if _installed:
        return True
    if not monkey.is_module_patched("selectors"):
        return False
    import websockets.sync.connection as connection
    import websockets.sync.server as server

    patched = types.SimpleNamespace(DefaultSelector=_close_safe_selector_class(),
                                    EVENT_READ=selectors.EVENT_READ, EVENT_WRITE=selectors.EVENT_WRITE)
    connection.selectors = patched
    server.selectors = patched
    connection.Connection.close_socket = _wrap_close_socket(connection.Connection.close_socket)
    server.Server.shutdown = _wrap_shutdown(server.Server.shutdown)
    _installed = True
    return True
