"""Two organizations behind one cloud PBX address (seed 002: Mango Office serves many customers from a few
IPs). Both Custom SIP accounts allow the same address; the simulator runs the real freeswitch/ tree, so the
INVITE is admitted by the vb_accounts ACL exactly as mod_sofia admits it, with the variables of whichever
directory user's ACL node wins. The dialed number, not that user, decides the organization (issue 12, #10).
"""
import shutil
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from fssim import Simulator
from fssim.sip_invite import Refused
from models import Agent, Call, Organization, PhoneNumber, SipAccount
from sip.freeswitch import FreeSwitchProvisioner, esl_connector
from sip.secrets_box import SecretBox

from .conftest import RULES, running_controller, wait_for

REPO = Path(__file__).resolve().parents[2]
PBX = "203.0.113.50"  # the shared cloud PBX address


@pytest.fixture
def fs_env():
    return {}  # vars.xml's env-set reads this; the app's socket address is known once the controller runs


@pytest.fixture
def conf(tmp_path):
    target = tmp_path / "freeswitch"
    shutil.copytree(REPO / "freeswitch", target)
    return target


@pytest.fixture
def sim(conf, fs_env):
    simulator = Simulator("127.0.0.1", 0, "s3cret-esl", rules=RULES, conf_dir=str(conf), env=fs_env,
                          heartbeat_interval=1.0).start()
    yield simulator
    simulator.stop()


def _customer(org, number: str, allowed_ips: str = PBX) -> tuple[Agent, SipAccount]:
    agent = Agent.create(organization=org, name=f"{org.name} desk", direction="inbound", greeting="Hello")
    account = SipAccount.create(organization=org, name="Mango Office", allowed_ips=allowed_ips)
    PhoneNumber.create(organization=org, number=number, agent=agent, sip_account=account)
    return agent, account


@pytest.fixture
def two_customers(db, org, conf, sim, fs_env, telephony_config):
    beta = Organization.create(name="Beta", minutes_included=100)
    gamma = Organization.create(name="Gamma", minutes_included=100)
    customers = {"+14155550101": (org, *_customer(org, "+14155550101")),
                 "+14155550102": (beta, *_customer(beta, "+14155550102")),
                 # a third customer of the platform, whose PBX is elsewhere
                 "+14155550103": (gamma, *_customer(gamma, "+14155550103", "198.51.100.9"))}
    with running_controller(telephony_config) as controller:
        fs_env["VOXBRIDGE_SOCKET_ADDRESS"] = f"127.0.0.1:{controller.socket_server.port}"
        prov = FreeSwitchProvisioner(conf, esl_connector("127.0.0.1", sim.port, "s3cret-esl"),
                                     SecretBox(Fernet.generate_key().decode()))
        for _org, _agent, account in customers.values():
            assert prov.provision(account).ok
        yield customers


def _answered(uuid: str) -> Call:
    return wait_for(lambda: (c := Call.get_or_none(Call.id == uuid)) and c.status != "calling" and c)


def test_each_organization_behind_a_shared_pbx_address_reaches_its_own_agent(sim, two_customers):
    tokens = set()
    for number in ("+14155550101", "+14155550102"):
        org, agent, account = two_customers[number]
        channel = sim.sip_invite(number.removeprefix("+"), PBX, caller="+442071838750")
        assert not isinstance(channel, Refused)
        # FreeSWITCH admitted it by IP and set the variables of one of the users sharing the address
        assert channel.variables["sip_acl_authed_by"] == "vb_accounts"
        tokens.add(channel.variables["vb_account_id"])
        call = _answered(channel.uuid)
        assert (call.status, call.organization_id, call.agent_id) == ("in-progress", org.id, agent.id), \
            call.failure_reason
        uuid = channel.uuid
        sim.hangup_far_end(uuid)
        wait_for(lambda uuid=uuid: Call.get_by_id(uuid).status == "completed")
    # the same user was picked both times: its account is the wrong one for one of the two calls
    assert len(tokens) == 1


def test_a_number_of_no_account_behind_the_address_is_rejected_with_the_reason(sim, two_customers):
    channel = sim.sip_invite("14155550103", PBX)
    call = wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c)
    assert (call.status, call.hangup_cause) == ("failed", "CALL_REJECTED")
    assert call.failure_reason == f"+14155550103 is not a number of any SIP account that allows calls from {PBX}"
    assert call.organization_id == two_customers["+14155550103"][0].id
    unknown = sim.sip_invite("14155550199", PBX)
    call = wait_for(lambda: (c := Call.get_or_none(Call.id == unknown.uuid)) and c)
    assert call.hangup_cause == "UNALLOCATED_NUMBER"
    # an address no account allows is challenged and never reaches the app
    assert sim.sip_invite("14155550101", "192.0.2.200") == Refused(407, "Proxy Authentication Required")
