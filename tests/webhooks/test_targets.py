"""SSRF guard: one resolution, every address checked, and the POST goes to a checked address."""
import socket

import pytest
import urllib3.util.connection

from models import WebhookDelivery
from webhooks import enqueue
from webhooks.delivery import DeliveryWorker
from webhooks.targets import UnsafeTarget, check_target

from .receiver import Receiver

PUBLIC = "93.184.216.34"


def _rebinding_resolver(monkeypatch, host, answers):
    """`host` resolves to answers[0], then answers[1], ... (the last repeats): a rebinding DNS server."""
    real = socket.getaddrinfo
    queue = list(answers)
    asked = []

    def fake(name, port, *args, **kwargs):
        if name != host:
            return real(name, port, *args, **kwargs)
        asked.append(name)
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_a_host_that_rebinds_to_loopback_after_the_check_is_never_reached(org, monkeypatch):
    with Receiver([200]) as receiver:
        url = f"http://rebind.example:{receiver.server.server_port}/hooks"
        asked = _rebinding_resolver(monkeypatch, "rebind.example", [PUBLIC, "127.0.0.1"])
        dialed = []
        real_connect = urllib3.util.connection.create_connection

        def connect(address, *args, **kwargs):
            dialed.append(address[0])
            if address[0] == PUBLIC:  # no internet in tests: the public host refuses
                raise ConnectionRefusedError("refused")
            return real_connect(address, *args, **kwargs)

        monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)
        org.webhook_url = url
        org.save()
        event_id = enqueue(org, "call.ended", {})
        results = DeliveryWorker(allow_private=False, timeout_s=2).run_once()
    assert receiver.received == []
    assert dialed == [PUBLIC] and asked == ["rebind.example"]
    assert results[0].ok is False and results[0].status_code is None
    assert WebhookDelivery.get_by_id(event_id).attempts == 1


def test_a_host_resolving_to_loopback_first_is_refused(monkeypatch):
    _rebinding_resolver(monkeypatch, "evil.example", ["127.0.0.1", PUBLIC])
    with pytest.raises(UnsafeTarget, match="non-public address 127.0.0.1"):
        check_target("https://evil.example/hook")


@pytest.mark.parametrize("url", [f"https://{PUBLIC}/hook", f"http://{PUBLIC}:8443/a?b=c",
                                 "https://[2606:2800:220:1:248:1893:25c8:1946]/x"])
def test_a_public_address_is_accepted_and_pinned(url):
    target = check_target(url, allow_private=False)
    assert len(target.addresses) == 1 and target.addresses[0] in url


def test_the_pinned_post_keeps_the_host_header_and_path(org):
    with Receiver([202]) as receiver:
        org.webhook_url = f"http://localhost:{receiver.server.server_port}/hooks?org=1"
        org.save()
        enqueue(org, "call.ended", {})
        results = DeliveryWorker(allow_private=True).run_once()
    assert [r.status_code for r in results] == [202]
    headers, _body = receiver.received[0]
    assert headers["Host"] == f"localhost:{receiver.server.server_port}"


def test_redirects_are_not_followed(org):
    with Receiver([302]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        enqueue(org, "call.ended", {})
        results = DeliveryWorker(allow_private=True).run_once()
    assert results[0].ok is False and results[0].status_code == 302 and len(receiver.received) == 1


def _resolver(*answers):
    """An injected getaddrinfo: each call takes the next answer (an address, or an exception to raise)."""
    queue = list(answers)
    asked = []

    def resolve(name, port, *args, **kwargs):
        asked.append(name)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer, port))]

    resolve.asked = asked
    return resolve


@pytest.mark.parametrize("failure", [socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
                                     socket.gaierror(socket.EAI_NONAME, "Name or service not known")])
def test_a_host_that_does_not_resolve_is_retried_on_the_schedule_then_delivered(org, failure):
    """A DNS blip is transient like a connect error: the event waits for the next attempt, then arrives."""
    from models import utcnow
    from models.webhook import DELIVERED, PENDING

    with Receiver([200]) as receiver:
        org.webhook_url = f"http://hooks.example:{receiver.server.server_port}/hooks"
        org.save()
        event_id = enqueue(org, "call.ended", {})
        resolve = _resolver(failure, "127.0.0.1")
        worker = DeliveryWorker(allow_private=True, resolve=resolve)
        [first] = worker.run_once()
        row = WebhookDelivery.get_by_id(event_id)
        assert first.ok is False and first.final is False
        assert row.status == PENDING and row.attempts == 1 and row.next_attempt_at > utcnow()
        assert "does not resolve" in row.last_error
        WebhookDelivery.update(next_attempt_at=utcnow()).execute()  # the backoff has passed
        assert [r.ok for r in worker.run_once()] == [True]
    assert resolve.asked == ["hooks.example", "hooks.example"] and len(receiver.received) == 1
    assert WebhookDelivery.get_by_id(event_id).status == DELIVERED


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1"])
def test_a_host_resolving_to_a_forbidden_address_is_final_and_says_why(org, address):
    from models.webhook import FAILED

    org.webhook_url = "https://hooks.example/hooks"
    org.save()
    event_id = enqueue(org, "call.ended", {})
    [result] = DeliveryWorker(allow_private=False, resolve=_resolver(address)).run_once()
    row = WebhookDelivery.get_by_id(event_id)
    assert result.final is True
    assert (row.status, row.attempts) == (FAILED, 1)
    assert row.last_error == f"refused: webhook host 'hooks.example' resolves to non-public address {address}"


def test_a_connect_error_is_retried_and_a_give_up_says_after_how_many_attempts(org, monkeypatch):
    from models import utcnow
    from models.webhook import FAILED, PENDING

    def refuse(address, *args, **kwargs):
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", refuse)
    org.webhook_url = f"https://{PUBLIC}/hooks"
    org.save()
    event_id = enqueue(org, "call.ended", {})
    worker = DeliveryWorker(allow_private=False, max_attempts=2, timeout_s=2)
    worker.run_once()
    assert WebhookDelivery.get_by_id(event_id).status == PENDING
    WebhookDelivery.update(next_attempt_at=utcnow()).execute()
    worker.run_once()
    row = WebhookDelivery.get_by_id(event_id)
    assert (row.status, row.attempts) == (FAILED, 2)
    assert row.last_error.startswith("gave up after 2 attempts; last: NewConnectionError")
