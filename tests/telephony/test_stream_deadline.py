"""An answered call whose agent's audio stream never connects ends `failed`, unbilled, with the reason (unserved),
once MEDIA_CONNECT_TIMEOUT has passed since the answer, instead of sitting in dead air until MAX_CALL_DURATION.
The instance that owns the call's node decides (it sees the answer and the stream's connect events)."""
import contextlib
import json
import socket

import gevent
import pytest

from calls.dispatcher import Dispatcher
from calls.ownership import OwnAll
from models import Call, CallEvent, Organization, WebhookDelivery, utcnow

from .conftest import running_controller, wait_for
from .test_cross_instance import OwnsNothing, _controller

REASON = "the agent's audio stream did not connect within 1 s of the answer (no agent on the call)"


@pytest.fixture
def deadline_config(telephony_env):
    from config import load_config

    return load_config({**telephony_env, "MEDIA_CONNECT_TIMEOUT": "1",
                        "MEDIA_TOKEN_SECRET": "a-secret-shared-by-every-instance"},
                       webhook_allow_private=True, rate_limit_per_minute=100_000)


@contextlib.contextmanager
def black_hole():
    """A pipeline address that accepts the fork's TCP connection and never answers its WebSocket handshake: no
    connect; the list it yields fills as connections arrive."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept():
        while True:
            accepted.append(listener.accept()[0])

    acceptor = gevent.spawn(accept)
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        acceptor.kill()
        for conn in [*accepted, listener]:
            conn.close()


def _dial(controller, org, agent) -> str:
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number="+14155550123",
                       from_number=org.default_caller_id, max_attempts=3, next_attempt_at=utcnow())
    assert Dispatcher(controller).run_once().claimed == 1
    return call.id


def _reasons(call_id):
    return [e.reason for e in CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id)]


def _ended_unserved(call_id, org) -> Call:
    call = wait_for(lambda: (c := Call.get_by_id(call_id)).status not in ("calling", "ringing", "in-progress") and c,
                    timeout=20)
    assert call.answered_at is not None
    assert (call.status, call.failure_reason, call.billed_minutes, call.attempt) == ("failed", REASON, 0, 1)
    assert Organization.get_by_id(org.id).minutes_used == 0
    assert "media connect" not in _reasons(call_id)
    row = wait_for(lambda: WebhookDelivery.get_or_none(WebhookDelivery.call_id == call_id,
                                                       WebhookDelivery.event_type == "call.ended"))
    data = json.loads(row.payload)["data"]
    assert (data["status"], data["failure_reason"], data["billed_minutes"]) == ("failed", REASON, 0)
    return call


def test_a_call_whose_stream_never_connects_is_hung_up_as_unserved(db, deadline_config, sim, caller_org,
                                                                  outbound_agent):
    """The fork is sent and its connection reaches the pipeline's address, but the handshake never completes."""
    with black_hole() as (url, accepted), running_controller(deadline_config) as controller:
        controller.media.public_url = url
        call_id = _dial(controller, caller_org, outbound_agent)
        wait_for(lambda: accepted)  # the fork's connection arrived and hangs there
        _ended_unserved(call_id, caller_org)
        assert "media stream requested" in _reasons(call_id)
        assert sim.channel(call_id) is None  # hung up, not merely closed in the database


@pytest.fixture
def owner_and_dialer(db, deadline_config):
    """Two instances with the voice pipeline: `owner` owns the node, `dialer` owns nothing."""
    with _controller(deadline_config, lambda nodes: OwnsNothing(), True) as dialer, \
            _controller(deadline_config, OwnAll, True) as owner:
        yield owner, dialer


def test_a_fork_never_sent_by_the_instance_holding_the_socket_is_ended_by_the_nodes_owner(
        owner_and_dialer, sim, caller_org, outbound_agent, monkeypatch):
    """Issue 13's symptom: the call's socket is held by the instance that dialed it (not the node's owner) and its
    fork is never sent, so no stream event ever comes. The owner ends the call, once."""
    owner, dialer = owner_and_dialer
    asked = []
    monkeypatch.setattr(dialer.streams, "request_bidirectional", lambda call_id, channel: asked.append(call_id))
    call_id = _dial(dialer, caller_org, outbound_agent)
    wait_for(lambda: asked == [call_id])  # the socket session reached the point where the fork is sent
    _ended_unserved(call_id, caller_org)
    reasons = _reasons(call_id)
    assert not [r for r in reasons if r.startswith("media ")]  # no fork, no stream event
    assert [r for r in reasons if r.startswith("hangup requested")] == [f"hangup requested: {REASON}"]
    for control in (owner, dialer):
        wait_for(lambda c=control: call_id not in c.live and not c.limits.per_org)
