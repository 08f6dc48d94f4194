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
