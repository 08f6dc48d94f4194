"""Inbound connection against a fake ESL server replaying captured frames."""
import gevent
import pytest
from gevent import socket

from esl import commands as c
from esl.connection import EslConnection, State
from esl.errors import EslAuthError, EslNotConnected, EslTimeout
from tests.esl.captures import c2s
from tests.esl.fakeserver import FakeEsl, after_command

CAPTURE = "call-events-json"
ORIGINATE = c2s(CAPTURE)[2]
SUBSCRIBE = c2s(CAPTURE)[1]


@pytest.fixture
def server():
    fake = FakeEsl().start()
    yield fake
    fake.stop()


def _conn(server, **kw):
    kw.setdefault("connect_timeout", 2.0)
    kw.setdefault("command_timeout", 2.0)
    return EslConnection("127.0.0.1", server.port, kw.pop("password", "ClueCon"), **kw)


def test_connect_auth_subscribe_and_bgapi_replays_the_capture(server):
    server.scripted[ORIGINATE.rstrip("\n")] = after_command(CAPTURE, ORIGINATE)
    conn = _conn(server)
    seen, everything = [], []
    conn.on("CHANNEL_ANSWER", seen.append)
    conn.on("*", everything.append)
    conn.connect()
    assert conn.state is State.READY
    names = SUBSCRIBE.split(" ")[2:]
    conn.subscribe([n.strip() for n in names])
    call = c.originate(c.loopback_dial("9196", "default"), c.park_app(),
                       origination_uuid="184e74ca-0aeb-4d72-b753-74223c0a57c7", caller_id_number="15551230000",
                       caller_id_name_="VoxBridge", timeout_s=10, call_id="call-123")
    job = conn.bgapi(call)
    assert job == "c09a9c70-bc1a-495c-a5e0-72beaa08f312"
    result = conn.wait_job(job, timeout=2)
    assert result.job_ok and result.job_result == "184e74ca-0aeb-4d72-b753-74223c0a57c7"
    with gevent.Timeout(2):
        while len(everything) < len(after_command(CAPTURE, ORIGINATE)) - 1:
            gevent.sleep(0.01)
    assert [e.name for e in seen] == ["CHANNEL_ANSWER", "CHANNEL_ANSWER"]
    assert everything[0].name == "CHANNEL_CREATE"
    # What went on the wire is byte for byte what the real client sent in the capture.
    assert bytes(server.raw).decode() == "".join(c2s(CAPTURE)[:3])
    conn.exit()
    assert conn.state is State.CLOSED


def test_auth_failure_raises_and_leaves_disconnected(server):
    conn = _conn(server, password="wrong-password")
    with pytest.raises(EslAuthError):
        conn.connect()
    assert conn.state is State.DISCONNECTED
    assert server.received == ["auth wrong-password"]
    with pytest.raises(EslNotConnected):
        conn.api(c.status())


def test_connect_refused_and_no_greeting_time_out_cleanly():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(EslNotConnected):
        EslConnection("127.0.0.1", port, "ClueCon", connect_timeout=1).connect()
    silent = FakeEsl(greet=False).start()
    try:
        conn = EslConnection("127.0.0.1", silent.port, "ClueCon", connect_timeout=0.3)
        with pytest.raises(EslTimeout):
            conn.connect()
        assert conn.state is State.DISCONNECTED
    finally:
        silent.stop()


def test_command_timeout_then_late_reply_goes_to_the_right_caller(server):
    conn = _conn(server)
    conn.connect()
    server.hold.clear()
    first = "00000000-0000-4000-8000-000000000001"
    with pytest.raises(EslTimeout):
        conn.api(c.uuid_exists(first), timeout=0.2)
    server.hold.set()
    second = "00000000-0000-4000-8000-000000000002"
    # The late reply to `first` must be consumed by the timed-out slot, not handed to this caller.
    assert conn.api(c.uuid_exists(second)) == second
    conn.close()


def test_dead_connection_fails_pending_and_new_commands_fast(server):
    conn = _conn(server, command_timeout=30)
    lost = []
    conn.on_disconnect(lost.append)
    conn.connect()
    server.hold.clear()
    pending = gevent.spawn(conn.api, c.uuid_exists("00000000-0000-4000-8000-000000000001"))
    gevent.sleep(0.05)
    server.drop()
    with gevent.Timeout(2):  # far below the 30 s command timeout: it failed because the socket died
        with pytest.raises(EslNotConnected):
            pending.get()
    assert conn.state is State.DISCONNECTED and lost == [conn]
    with gevent.Timeout(0.5):
        with pytest.raises(EslNotConnected):
            conn.api(c.status())
    server.hold.set()


def test_fifty_greenlets_never_interleave(server):
    conn = _conn(server)
    conn.connect()
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(50)]

    def worker(uid):
        return [conn.api(c.uuid_exists(uid)) for _ in range(10)]

    jobs = [gevent.spawn(worker, uid) for uid in ids]
    gevent.joinall(jobs, timeout=20, raise_error=True)
    for uid, job in zip(ids, jobs, strict=True):
        assert job.value == [uid] * 10
    sent = [cmd for cmd in server.received if cmd.startswith("api")]
    assert len(sent) == 500
    assert sorted(set(sent)) == sorted(f"api uuid_exists {uid}" for uid in ids)
    assert bytes(server.raw).count(b"\n\n") == len(server.received)
    conn.close()


def test_handler_errors_do_not_stop_dispatch_and_handlers_can_send(server):
    conn = _conn(server)
    results = []

    def bad(_event):
        raise RuntimeError("boom")

    def good(event):  # a handler that sends a command must not deadlock the reader
        results.append(conn.api(c.uuid_exists("00000000-0000-4000-8000-00000000000a")))

    conn.on("HEARTBEAT", bad)
    conn.on("HEARTBEAT", good)
    conn.connect()
    beat = [f for f in after_command("heartbeat-filter-log", "event json HEARTBEAT CHANNEL_CREATE\n\n")
            if "HEARTBEAT" in f][0]
    server.push(beat)
    with gevent.Timeout(2):
        while not results:
            gevent.sleep(0.01)
    assert results == ["00000000-0000-4000-8000-00000000000a"]
    conn.close()


def test_rude_rejection_is_an_auth_error():
    fake = FakeEsl(greet=False).start()
    original = fake._handle

    def reject(sock, addr):
        body = "Access Denied, go away.\n"
        sock.sendall(f"Content-Type: text/rude-rejection\nContent-Length: {len(body)}\n\n{body}".encode())
        gevent.sleep(0.05)
        sock.close()

    fake.server.set_handle(reject)
    try:
        conn = EslConnection("127.0.0.1", fake.port, "ClueCon", connect_timeout=2)
        with pytest.raises(EslAuthError):
            conn.connect()
        assert conn.state is State.DISCONNECTED and fake.received == []
    finally:
        fake.server.set_handle(original)
        fake.stop()


def test_wait_for_matches_a_predicate_and_times_out(server):
    conn = _conn(server)
    conn.connect()
    beat = [f for f in after_command("heartbeat-filter-log", "event json HEARTBEAT CHANNEL_CREATE\n\n")
            if "HEARTBEAT" in f][0]
    waiter = gevent.spawn(conn.wait_for, "HEARTBEAT", lambda e: e.session_count == 2, 2)
    gevent.sleep(0.01)
    server.push(beat)
    assert waiter.get(timeout=3).max_sessions == 1000
    with pytest.raises(EslTimeout):
        conn.wait_for("HEARTBEAT", lambda e: e.session_count == 99, timeout=0.2)
    assert not conn.router._handlers.get("HEARTBEAT")  # waiters unregister themselves
    conn.close()


def test_sip_busy_originate_hangup_event_arrives_before_its_failed_job(server):
    capture = "sip-outbound-originate"
    command = c2s(capture)[2]
    server.scripted[command.rstrip("\n")] = after_command(capture, command)
    conn = _conn(server, command_timeout=3)
    order = []
    conn.on("CHANNEL_HANGUP_COMPLETE", lambda e: order.append(("hangup", e.hangup_cause, e.sip_term_status)))
    conn.on("BACKGROUND_JOB", lambda e: order.append(("job", e.job_result)))
    conn.connect()
    call = c.originate(c.sofia_dial("external", "15551234567", "127.0.0.1:5099"), c.park_app(),
                       origination_uuid="192d5318-a769-4a62-8ec0-0c1651350765", timeout_s=10)
    assert c.bgapi(call).wire().decode() == command
    job = conn.bgapi_wait(call)
    assert not job.job_ok and job.job_result == "USER_BUSY"
    with gevent.Timeout(2):
        while len(order) < 2:
            gevent.sleep(0.01)
    assert order == [("hangup", "USER_BUSY", "486"), ("job", "USER_BUSY")]
    conn.close()
