"""Outbound-socket server driven by a fake FreeSWITCH that replays outbound-socket.jsonl verbatim."""
import re

import gevent
import pytest
from gevent import socket

from esl.errors import EslTimeout, SessionGone
from esl.outbound import OutboundServer
from tests.esl.captures import rows

CAPTURE = "outbound-socket"
CHANNEL = "f9c607a0-03cf-45de-bdd2-bb3ecf4ee004"


def _replay_freeswitch(port: int, capture: str, received: list[str], stall_after: str | None = None) -> None:
    """Connect like the `socket` application, then answer each command with the frames the capture shows."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    buf = b""
    try:
        script = rows(capture)
        for i, row in enumerate(script):
            if row["dir"] != "c2s":
                continue
            while b"\n\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            command, _, buf = buf.partition(b"\n\n")
            received.append(command.decode())
            if stall_after is not None and command.decode().startswith(stall_after):
                gevent.sleep(0.8)
                return
            for reply in script[i + 1:]:
                if reply["dir"] == "c2s":
                    break
                if reply["dir"] == "s2c":
                    sock.sendall(reply["data"].encode())
        gevent.sleep(0.1)
    finally:
        sock.close()


def _without_event_uuid(command: str) -> str:
    return re.sub(r"\nEvent-UUID: [0-9a-f-]{36}", "", command)


def test_session_replays_the_captured_conversation_byte_for_byte():
    results = {}

    def handler(session):
        results["channel"] = session.channel
        session.myevents(fmt=None)
        session.linger()
        session.subscribe(["CHANNEL_EXECUTE_COMPLETE", "DTMF"])
        session.answer()
        results["played"] = session.playback("tone_stream://%(300,0,440)", wait=True, event_lock=True, timeout=3)
        session.hangup()
        results["over"] = session.wait_over(3)
        results["lingering"] = session.lingering
        with pytest.raises(SessionGone):
            session.answer()

    server = OutboundServer(handler, command_timeout=3).start()
    received: list[str] = []
    try:
        gevent.spawn(_replay_freeswitch, server.port, CAPTURE, received).join(timeout=10)
        with gevent.Timeout(5):
            while server.sessions:
                gevent.sleep(0.01)
    finally:
        server.stop()
    expected = [r["data"][:-2] for r in rows(CAPTURE) if r["dir"] == "c2s"]
    assert [_without_event_uuid(c) for c in received] == expected
    channel = results["channel"]
    assert channel.name == "CHANNEL_DATA" and channel.unique_id == CHANNEL
    assert channel.headers["Reply-Text"] == "+OK\n"  # URL-decoded (%2BOK%0A)
    assert channel.variable("current_application_data") == "127.0.0.1:34461 async full"
    assert channel.headers["Caller-Caller-ID-Number"] and channel.headers["Socket-Mode"] == "async"
    played = results["played"]
    assert played.name == "CHANNEL_EXECUTE_COMPLETE" and played.get("Application-Response") == "FILE PLAYED"
    assert results["lingering"] is True and results["over"] is True


def test_handler_errors_are_contained_and_command_timeouts_raise():
    outcome = []

    def handler(session):
        session.myevents(fmt=None)
        try:
            session.linger(timeout=0.3)  # the fake FreeSWITCH stalls here
        except EslTimeout:
            outcome.append("timeout")
        raise RuntimeError("handler bug")  # must be logged, never take the server down

    server = OutboundServer(handler).start()
    try:
        gevent.spawn(_replay_freeswitch, server.port, CAPTURE, [], stall_after="linger").join(timeout=5)
        with gevent.Timeout(5):
            while server.sessions:
                gevent.sleep(0.01)
        assert outcome == ["timeout"]
        # The server still accepts the next call.
        second = []
        gevent.spawn(_replay_freeswitch, server.port, CAPTURE, second, stall_after="linger").join(timeout=5)
        assert second[:2] == ["connect", "myevents"]
    finally:
        server.stop()


def test_connect_that_never_answers_times_out_and_closes():
    calls = []
    server = OutboundServer(calls.append, connect_timeout=0.2).start()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        assert sock.recv(100) == b"connect\n\n"
        sock.settimeout(2)
        assert sock.recv(100) == b""  # we gave up and closed
        sock.close()
        assert calls == []
    finally:
        server.stop()
