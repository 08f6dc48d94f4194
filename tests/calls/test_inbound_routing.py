"""Attribution of IP-trusted inbound calls by the dialed number (issue 12, #10), at the unit level: which
address counts (the packet's source, or a Kamailio front end's X-AUTH-IP), and which account is chosen."""
import uuid

import pytest

from calls.inbound import admit
from calls.inbound_routing import InboundOrigin
from models import Agent, CallEvent, Organization, PhoneNumber, SipAccount

PBX, PROXY = "203.0.113.50", "10.9.0.2"


@pytest.fixture
def customers(org):
    beta = Organization.create(name="Beta", minutes_included=10)
    accounts = {}
    for owner, number in ((org, "+14155550101"), (beta, "+14155550102")):
        Agent.create(organization=owner, name="Desk", direction="inbound")
        accounts[number] = SipAccount.create(organization=owner, name="Mango", allowed_ips=f"{PBX},198.51.100.0/24")
        PhoneNumber.create(organization=owner, number=number, sip_account=accounts[number])
    # a number of Acme bound to no account: any Acme account allowing the address may reach it
    PhoneNumber.create(organization=org, number="+14155550109")
    return accounts


def _admit(number, **origin):
    vb = {"account": "0" * 32, "acl_list": "vb_accounts", **origin}  # sofia named some user; it does not count
    return admit(str(uuid.uuid4()), number, None, "US", origin=InboundOrigin(**vb))


def test_the_number_chooses_among_accounts_sharing_the_address(customers):
    for number, account in customers.items():
        decision = _admit(number, source_ip=PBX)
        assert decision.accepted, decision.reason
        event = CallEvent.get(CallEvent.call == decision.call.id)
        assert event.data == {"sip_account_id": account.id}
    assert _admit("+14155550109", source_ip="198.51.100.77").accepted
    rejected = _admit("+14155550101", source_ip="192.0.2.9")
    assert (rejected.accepted, rejected.hangup_cause) == (False, "CALL_REJECTED")
    assert rejected.reason == "+14155550101 is not a number of any SIP account that allows calls from 192.0.2.9"


def test_x_auth_ip_counts_only_when_the_packet_came_from_a_front_end(customers):
    # through Kamailio: the packet's source is the proxy, which no account allows; the header is the caller
    assert _admit("+14155550102", source_ip=PROXY, proxied_ip=PBX).accepted
    # a PBX of an allowed address cannot borrow another address with its own header
    SipAccount.update(allowed_ips="192.0.2.77").where(SipAccount.id == customers["+14155550102"].id).execute()
    spoofed = _admit("+14155550102", source_ip=PBX, proxied_ip="192.0.2.77")
    assert not spoofed.accepted and "allows calls from 203.0.113.50" in spoofed.reason


def test_a_digest_caller_keeps_the_account_its_credentials_name(customers):
    acme = customers["+14155550101"].id.replace("-", "")
    assert admit(str(uuid.uuid4()), "+14155550101", None, "US", origin=InboundOrigin(account=acme)).accepted
    refused = admit(str(uuid.uuid4()), "+14155550102", None, "US", origin=InboundOrigin(account=acme))
    assert refused.reason == "+14155550102 is not a number of the SIP account the call came from"
