"""websockets.sync on a gevent loop: no watcher is left on a socket that gets closed.

libev aborts the process when a started watcher's fd is closed under it; these tests pin the order
that prevents it (the suite itself installed the patch in tests/conftest.py).
"""
import socket
import threading

import gevent
from websockets.sync.client import connect
from websockets.sync.server import serve

from pipeline.providers import gevent_websockets


def test_install_is_in_force_and_idempotent():
    import websockets.sync.connection as connection

    assert gevent_websockets.install() is True
    assert gevent_websockets.install() is True
    assert connection.Connection.close_socket.__wrapped__ is not None
    assert not hasattr(connection.Connection.close_socket.__wrapped__, "__wrapped__")  # wrapped once


def test_selector_leaves_no_watcher_running_between_selects():
    import websockets.sync.connection as connection

    a, b = socket.socketpair()
    quiet_a, quiet_b = socket.socketpair()
    selector = connection.selectors.DefaultSelector()
    selector.register(a, connection.selectors.EVENT_READ, data="ready")
    selector.register(quiet_a, connection.selectors.EVENT_READ, data="quiet")
    b.send(b"x")
    ready = selector.select(1)
    assert [key.data for key, _ in ready] == ["ready"]
    # gevent's own selector would still be watching quiet_a here; closing it now is what aborts libev.
    assert selector._active_watchers == {}
    assert not any(w.active for w in selector._inactive_watchers.values())
    selector.close()
    for s in (a, b, quiet_a, quiet_b):
        s.close()


class ClosingWitness:
    """Stands in for a socket: records whether, at close(), a reader could still be parked in select().

    Safe closes come from the reader itself (it has left select()) or after it ended."""

    def __init__(self, sock, reader):
        self._sock, self._reader, self.reader_maybe_selecting = sock, reader, None

    def close(self):
        if self.reader_maybe_selecting is None:
            self.reader_maybe_selecting = (self._reader.is_alive()
                                           and threading.current_thread() is not self._reader)
        self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _echo_server():
    def handler(ws):
        for message in ws:
            ws.send(message)

    server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def test_close_from_another_greenlet_waits_for_the_reader_to_leave_select():
    server, _ = _echo_server()
    try:
        client = connect(f"ws://127.0.0.1:{server.socket.getsockname()[1]}", open_timeout=5, legacy=True)
        client.send("hello")
        assert client.recv(5) == "hello"
        gevent.sleep(0.01)  # the reader greenlet is now parked in select()
        witness = ClosingWitness(client.socket, client.recv_events_thread)
        client.socket = witness
        gevent.spawn(client.close_socket).join(5)
        assert witness.reader_maybe_selecting is False
        assert not client.recv_events_thread.is_alive()
    finally:
        server.shutdown()


def test_server_shutdown_stops_accepting_before_closing_the_listening_socket():
    server, thread = _echo_server()
    gevent.sleep(0.01)  # serve_forever is parked in select()
    witness = ClosingWitness(server.socket, thread)
    server.socket = witness
    gevent.spawn(server.shutdown).join(5)
    assert server.socket_closed.is_set()
    assert witness.reader_maybe_selecting is False
    assert not thread.is_alive()
