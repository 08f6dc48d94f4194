"""The audio connections' write side (pipeline/socket_writer.py): in order, bounded, told when a send fails."""
import socket

import gevent

from pipeline.socket_writer import OrderedWriter


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_bytes_go_out_in_the_order_they_were_queued_then_the_socket_half_closes():
    ours, peer = socket.socketpair()
    writer = OrderedWriter(ours, max_queued_bytes=1 << 20, on_failed=lambda why: None)
    for n in range(100):
        assert writer.write(b"%03d," % n)
    writer.shut_down_after_queued()
    with gevent.Timeout(10):
        received = _read_all(peer)  # ends at the half-close
    assert received == b"".join(b"%03d," % n for n in range(100))
    writer.finish(timeout=5)
    ours.close()
    peer.close()


def test_a_peer_that_stops_reading_is_dropped_at_the_limit_instead_of_queued_without_end():
    ours, peer = socket.socketpair()
    writer = OrderedWriter(ours, max_queued_bytes=1000, on_failed=lambda why: None)
    # Queued faster than the writer greenlet runs (no yield in between): the limit counts what waits.
    results = [writer.write(b"x" * 300) for _ in range(4)] + [writer.write(b"small")]
    assert results == [True, True, True, False, False]  # nothing after the limit, not even what would fit
    with gevent.Timeout(10):
        received = _read_all(peer)
    assert received == b"x" * 900  # what was queued before the limit, then the half-close
    writer.finish(timeout=5)
    ours.close()
    peer.close()


def test_a_failed_send_is_reported_and_stops_the_writer():
    ours, peer = socket.socketpair()
    peer.close()
    failures = []
    writer = OrderedWriter(ours, max_queued_bytes=1 << 20, on_failed=failures.append)
    writer.write(b"hello")
    with gevent.Timeout(10):
        while not failures:
            gevent.sleep(0.01)
    assert failures[0].startswith("write failed")
    assert writer.write(b"more")  # dropped quietly: nothing goes out any more
    writer.finish(timeout=5)
    ours.close()
