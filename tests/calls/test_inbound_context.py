"""Inbound context pieces without a switch: which headers are allowed, what a webhook reply may say, the setting."""
import pytest

from calls.inbound_context import allowed_headers, variable_name
from config import ConfigError, load_config
from esl.events import Event
from webhooks.inbound_hook import HookFailed, HookReply, parse_reply


def channel(**variables):
    return Event("CHANNEL_DATA", {f"variable_{k}": v for k, v in variables.items()})


def test_only_allowed_x_headers_become_variables_bounded_and_sanitized():
    data = channel(**{"sip_h_X-Customer-Id": "C-42", "sip_h_x-customer-tier": "gold\r\nsendmsg", "sip_h_X-Other": "no",
                      "sip_h_X-Customer-Note": "x" * 1000, "sip_h_X-Customer-Empty": "\x00", "sip_from_user": "1"})
    found = allowed_headers(data, ("X-Customer-*",))
    assert found == {"X-Customer-Id": "C-42", "x-customer-tier": "gold sendmsg", "X-Customer-Note": "x" * 256}
    assert allowed_headers(data, ("X-Customer-Id",)) == {"X-Customer-Id": "C-42"}
    assert allowed_headers(data, ()) == {}
    assert variable_name("X-Customer-Id") == "x_customer_id"


@pytest.mark.parametrize(("value", "ok"), [("X-Customer-Id", True), ("X-Acme-*, X-Campaign", True), ("X-*", True),
                                           ("", True), ("Authorization", False), ("X-FS-Foo", False), ("X-", False),
                                           ("X-Bad Name", False), ("P-Asserted-Identity", False)])
def test_the_inbound_sip_headers_setting_takes_only_x_header_names(value, ok):
    if ok:
        assert isinstance(load_config({"INBOUND_SIP_HEADERS": value}).inbound_sip_headers, tuple)
    else:
        with pytest.raises(ConfigError, match="INBOUND_SIP_HEADERS"):
            load_config({"INBOUND_SIP_HEADERS": value})


def test_webhook_replies():
    assert parse_reply(b"") == HookReply()
    assert parse_reply(b'{"variables": {"name": "Ada\\n", "n": 3}}') == HookReply({"name": "Ada", "n": "3"})
    assert parse_reply(b'{"reject": true, "reason": "blocked"}') == HookReply(reject="blocked")
    assert parse_reply(b'{"reject": true}').reject == "rejected by the inbound webhook"
    assert parse_reply(b'{"agent_id": "a1"}').agent_id == "a1"
    for bad in (b"[1]", b"nope", b'{"variabels": {}}', b'{"variables": {"a b": "x"}}',
                b'{"variables": {"x": {"y": 1}}}', b'{"reject": "yes"}', b'{"agent_id": 5}'):
        with pytest.raises(HookFailed):
            parse_reply(bad)


def test_ask_refuses_a_private_address_and_reports_bad_answers():
    from tests.webhooks.receiver import Receiver
    from webhooks.inbound_hook import ask

    with pytest.raises(HookFailed, match="refused destination"):
        ask("http://127.0.0.1:9/inbound", ["whsec_x"], b"{}", 1.0, allow_private=False)
    with Receiver(statuses=(500,)) as receiver:
        with pytest.raises(HookFailed, match="HTTP 500"):
            ask(receiver.url, ["whsec_x"], b"{}", 2.0, allow_private=True)
        receiver.statuses = [200]
        with pytest.raises(HookFailed, match="not JSON"):  # the receiver answers "ok"
            ask(receiver.url, ["whsec_x"], b"{}", 2.0, allow_private=True)
        assert receiver.received[0][0]["Voxbridge-Signature"].startswith("t=")
