"""The call-control relay between API workers and the process that owns the ESL connections."""
import http.client
import json

import gevent
import gevent.event
import pytest

from calls.call_control import CallNotControlled, TransferFailed
from calls.relay import AUTH_HEADER, RelayAddress, RelayCallControl, RelayServer, RelayUnavailable, open_listener
from esl.errors import EslNotConnected, EslTimeout
from models import Call


class FakeControl:
    def __init__(self):
        self.done = []
        self.fail: Exception | None = None
        self.release: gevent.event.Event | None = None

    def hangup(self, call, reason="hung up through the API"):
        self._act(("hangup", call.id, reason))

    def transfer(self, call, target, mode):
        self._act(("transfer", call.id, target, mode))
        return True

    def health(self):
        return [{"node": "127.0.0.1:8021", "alive": True, "sessions": 0, "max_sessions": 100}]

    def _act(self, what):
        if self.release is not None:
            self.release.wait()
        if self.fail is not None:
            raise self.fail
        self.done.append(what)


@pytest.fixture
def owner():
    listener, address = open_listener()
    control = FakeControl()
    server = RelayServer(listener, address, control).start()
    yield control, address
    if control.release is not None:
        control.release.set()
    server.stop()


@pytest.fixture
def call(org):
    return Call.create(organization=org, direction="outbound", to_number="+14155550100", status="in-progress")


def _raw(address: RelayAddress, path: str, body, secret: str | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(address.host, address.port, timeout=10)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={AUTH_HEADER: address.secret if secret is None else secret})
    response = conn.getresponse()
    try:
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_hangup_transfer_and_health_are_carried_out_by_the_owner(owner, call):
    control, address = owner
    relay = RelayCallControl(address, timeout_s=10)
    relay.hangup(call, reason="canceled through the API")
    assert relay.transfer(call, "+14155550199", "refer") is True
    assert control.done == [("hangup", call.id, "canceled through the API"),
                            ("transfer", call.id, "+14155550199", "refer")]
    assert relay.health()[0]["alive"] is True


@pytest.mark.parametrize("fail, raised", [(EslNotConnected("down"), EslNotConnected), (EslTimeout("slow"), EslTimeout),
                                          (CallNotControlled("not here"), CallNotControlled)])
def test_the_owners_errors_come_back_as_the_same_errors(owner, call, fail, raised):
    control, address = owner
    control.fail = fail
    with pytest.raises(raised):
        RelayCallControl(address, timeout_s=10).hangup(call)


def test_a_refused_transfer_keeps_freeswitchs_reply(owner, call):
    control, address = owner
    control.fail = TransferFailed(call.id, "-ERR no route")
    with pytest.raises(TransferFailed) as info:
        RelayCallControl(address, timeout_s=10).transfer(call, "+14155550199", "bridge")
    assert info.value.reply == "-ERR no route" and call.id in str(info.value)


@pytest.mark.parametrize("body, status", [
    ({"call_id": "x; uuid_kill all", "reason": "r"}, 400),
    ({"call_id": "00000000-0000-4000-8000-000000000000", "reason": "r"}, 409),  # no such call
    ({"reason": "r"}, 400),
    (b"[1, 2]", 400),
    (b"not json", 400),
    (b"{" + b" " * 5000 + b"}", 400),
])
def test_the_owner_validates_what_it_is_sent(owner, db, body, status):
    control, address = owner
    assert _raw(address, "/hangup", body)[0] == status
    assert control.done == []


@pytest.mark.parametrize("to, mode", [("+1415 555", "bridge"), ("+14155550199\n", "bridge"), ("sip:x@y", "refer"),
                                      ("+14155550199", "blind")])
def test_the_owner_validates_a_transfer(owner, call, to, mode):
    control, address = owner
    assert _raw(address, "/transfer", {"call_id": call.id, "to": to, "mode": mode})[0] == 400
    assert control.done == []


def test_a_request_without_the_secret_is_refused(owner, call):
    control, address = owner
    assert _raw(address, "/hangup", {"call_id": call.id, "reason": "r"}, secret="guess")[0] == 403
    assert _raw(address, "/hangup", {"call_id": call.id, "reason": "r"}, secret="")[0] == 403
    assert control.done == []


def test_an_owner_that_is_gone_is_unavailable_at_once(call):
    listener, address = open_listener()
    listener.close()  # nobody listens on that port now
    with pytest.raises(RelayUnavailable, match="did not answer"):
        RelayCallControl(address, timeout_s=10).hangup(call)


def test_an_owner_that_does_not_answer_within_the_bound_is_unavailable(owner, call):
    control, address = owner
    control.release = gevent.event.Event()  # the owner's ESL command hangs
    with pytest.raises(RelayUnavailable, match="may or may not have been carried out"):
        RelayCallControl(address, timeout_s=0.3).hangup(call)
