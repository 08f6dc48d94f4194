"""Admitting inbound calls: number -> organization -> active inbound agent, or a stated rejection."""
import uuid

import pytest

from calls.inbound import admit, normalize_did
from models import FAILED, Agent, Call, PhoneNumber, WebhookDelivery


@pytest.fixture
def desk(org):
    agent = Agent.create(organization=org, name="Desk", direction="inbound")
    PhoneNumber.create(organization=org, number="+14155550100", agent=agent)
    return agent


def chan():
    return str(uuid.uuid4())


def test_owned_number_reaches_the_numbers_inbound_agent(desk, org):
    decision = admit(chan(), "14155550100", "+442071838750", "US")
    assert decision.accepted
    call = Call.get_by_id(decision.call.id)
    assert (call.organization_id, call.agent_id, call.direction, call.status) == (org.id, desk.id, "inbound",
                                                                                  "calling")
    assert call.to_number == "+14155550100" and call.from_number == "+442071838750"


def test_unknown_number_is_rejected_and_recorded(desk):
    decision = admit(chan(), "+14155550199", "+14155550123", "US")
    assert not decision.accepted and decision.hangup_cause == "UNALLOCATED_NUMBER"
    row = Call.get_by_id(decision.call.id)
    assert row.status == FAILED and row.organization_id is None and "not assigned" in row.failure_reason


def test_no_active_inbound_agent_is_rejected_with_a_webhook(desk, org):
    desk.active = False
    desk.save()
    decision = admit(chan(), "+14155550100", None, "US")
    assert decision.hangup_cause == "NO_ROUTE_DESTINATION"
    assert WebhookDelivery.get().event_type == "call.ended"


def test_exhausted_allowance_is_rejected(desk, org):
    org.minutes_used = org.minutes_included
    org.save()
    assert admit(chan(), "+14155550100", None, "US").hangup_cause == "CALL_REJECTED"


@pytest.mark.parametrize("bad", ["", "abc", "+1${system(id)}", "1415555\n0100", "12"])
def test_garbage_dialed_numbers_are_rejected_cleanly(desk, bad):
    assert admit(chan(), bad, None, "US").hangup_cause == "UNALLOCATED_NUMBER"


def test_a_socket_for_a_channel_already_decided_is_admitted_again_only_while_its_inbound_call_is_live(desk, org):
    first = admit(chan(), "+14155550100", None, "US").call
    again = admit(first.id, "+14155550100", None, "US")   # the socket reconnected mid-call
    assert again.accepted and again.call.id == first.id and Call.select().count() == 1
    Call.update(status="completed", hangup_cause="NORMAL_CLEARING").where(Call.id == first.id).execute()
    late = admit(first.id, "+14155550100", None, "US")
    assert not late.accepted and late.hangup_cause == "NORMAL_CLEARING" and "inbound and completed" in late.reason


def test_a_socket_with_an_outbound_calls_uuid_is_never_admitted_as_an_inbound_call(desk, org, outbound_agent):
    # An '&socket' outbound call whose socket arrives after the far end hung up: admitted as "the call already
    # decided", its LiveCall held the organization's concurrency slot for good.
    outbound = Call.create(organization=org, agent=outbound_agent, direction="outbound", to_number="+14155550100",
                           status="completed", attempt=1)
    decision = admit(outbound.id, "+14155550100", None, "US")
    assert not decision.accepted and "outbound and completed" in decision.reason
    assert Call.get_by_id(outbound.id).status == "completed" and Call.select().count() == 1


def test_channel_uuid_must_be_a_uuid(desk):
    with pytest.raises(ValueError):
        admit("not-a-uuid'; DROP TABLE call;--", "+14155550100", None, "US")


def test_normalize_did_forms():
    assert normalize_did("4155550100", "US") == "+14155550100"
    assert normalize_did("+442071838750", "US") == "+442071838750"
    assert normalize_did("442071838750", "US") == "+442071838750"


def test_a_call_from_another_accounts_trunk_cannot_reach_the_number(desk, org):
    from models import Organization, SipAccount

    mine = SipAccount.create(organization=org, name="Mine")
    other_org = Organization.create(name="Other", minutes_included=10)
    theirs = SipAccount.create(organization=other_org, name="Theirs")
    hex_of = lambda a: a.id.replace("-", "")  # noqa: E731 - what vb_account_id carries
    rejected = admit(chan(), "+14155550100", "+14155550123", "US", account=hex_of(theirs))
    assert not rejected.accepted and rejected.hangup_cause == "CALL_REJECTED"
    assert "not a number of the SIP account" in Call.get_by_id(rejected.call.id).failure_reason
    assert admit(chan(), "+14155550100", "+14155550123", "US", account=hex_of(mine)).accepted
    assert admit(chan(), "+14155550100", "+14155550123", "US").accepted  # carriers set no account


def test_a_number_bound_to_one_account_rejects_the_organizations_other_accounts(desk, org):
    from models import SipAccount

    bound, other = SipAccount.create(organization=org, name="A"), SipAccount.create(organization=org, name="B")
    PhoneNumber.update(sip_account=bound).where(PhoneNumber.number == "+14155550100").execute()
    assert not admit(chan(), "+14155550100", None, "US", account=other.id.replace("-", "")).accepted
    assert admit(chan(), "+14155550100", None, "US", account=bound.id.replace("-", "")).accepted
