"""FreeSwitchProvisioner through the simulator: files, ESL commands, Verify, Reprovision, delete.

The provisioner writes into a plain copy of freeswitch/ (the real layout: acl.d/,
sip_profiles/external/, directory/voxbridge/) and the simulator reads that same copy the way
FreeSWITCH does: freeswitch.xml preprocessed, acl.d/ through acl.conf.xml's include, the
`$${...}` cidr values expanded from vars.xml.
"""
import json
import shutil
import socket
from pathlib import Path

import pytest

from esl import commands
from esl.commands import ApiCall
from esl.connection import EslConnection
from fsconf.check import check_config
from fsconf.dialplan import Dialplan
from fsconf.provision import account_paths
from fssim import Simulator
from models import Organization, PhoneNumber, SipAccount
from sip.freeswitch import FreeSwitchProvisioner, esl_connector, parse_gateway_status
from sip.secrets_box import SecretBox

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "ClueCon"


@pytest.fixture
def conf(tmp_path):
    target = tmp_path / "freeswitch"
    shutil.copytree(REPO / "freeswitch", target)
    return target


@pytest.fixture
def sim(conf):
    assert not any(p.is_symlink() for p in conf.rglob("*"))  # the simulator sees what FreeSWITCH would
    simulator = Simulator("127.0.0.1", 0, PASSWORD, conf_dir=str(conf)).start()
    yield simulator
    simulator.stop()


class Recorder:
    """A pool-like object (not closed by the provisioner) that remembers every api line."""

    def __init__(self, port: int):
        self.conn = EslConnection("127.0.0.1", port, PASSWORD, connect_timeout=3, command_timeout=3)
        self.conn.connect()
        self.lines: list[str] = []

    def api(self, call: ApiCall) -> str:
        self.lines.append(call.line)
        return self.conn.api(call)


@pytest.fixture
def esl(sim):
    recorder = Recorder(sim.port)
    yield recorder
    recorder.conn.exit()


@pytest.fixture
def box(config):
    return SecretBox(config.sip_secret_key)


@pytest.fixture
def prov(conf, esl, box):
    return FreeSwitchProvisioner(conf, lambda: esl, box)


def make_account(org, box, **fields) -> SipAccount:
    values = {"name": "HQ", "sip_server": "pbx.example.com:5060", "transport": "udp",
              "allowed_ips": "203.0.113.7/32,198.51.100.0/24", "outbound_username": "acme",
              "outbound_password_enc": box.encrypt("s3cret-pass")}
    values.update(fields)
    return SipAccount.create(organization=org, **values)


def checks(result) -> dict[str, tuple[str, str | None]]:
    return {c.name: (c.status, c.reason) for c in result}


def test_provision_writes_files_and_applies_them_without_restart(org, box, conf, prov, esl, sim):
    account = make_account(org, box)
    result = prov.provision(account)
    assert result.ok, result.error
    paths = account_paths(account.id)
    gateway = (conf / paths["gateway"]).read_text()
    assert 'value="pbx.example.com:5060"' in gateway and 'value="s3cret-pass"' in gateway
    assert 'cidr="198.51.100.0/24"' in (conf / paths["acl"]).read_text()
    assert (conf / paths["user"]).exists()
    gw = account.gateway_name
    # Never applied before: killgw first (FreeSWITCH may run an older copy), then load everything.
    assert esl.lines == ["reloadxml", f"sofia profile external killgw {gw}", "sofia profile external rescan",
                         "reloadacl"]
    assert sim.registry.gateway_active(gw)
    assert esl.api(commands.acl_check("203.0.113.7", account.acl_name)) == "true"

    # Applied and unchanged (e.g. a number was bound): no killgw, so no call on the gateway drops.
    account.provisioned = True
    esl.lines.clear()
    assert prov.provision(account).ok
    assert esl.lines == ["reloadxml", "sofia profile external rescan", "reloadacl"]

    # The PBX moved: the running gateway is killed and rescanned with the new proxy.
    account.sip_server = "pbx2.example.com"
    esl.lines.clear()
    assert prov.provision(account).ok
    assert f"sofia profile external killgw {gw}" in esl.lines
    assert sim.registry.gateway_proxy(gw) == "pbx2.example.com"


def test_outbound_disabled_removes_the_gateway(org, box, conf, prov, esl, sim):
    account = make_account(org, box, provisioned=True)
    assert prov.provision(account).ok
    account.sip_server = None
    esl.lines.clear()
    assert prov.provision(account).ok
    assert not (conf / account_paths(account.id)["gateway"]).exists()
    assert f"sofia profile external killgw {account.gateway_name}" in esl.lines
    assert not sim.registry.gateway_active(account.gateway_name)
    assert checks(prov.verify(account))["outbound_trunk"] == ("skipped", "outbound disabled: no SIP server set")


def test_generated_files_pass_check_config(org, box, conf, prov):
    make = [make_account(org, box),
            make_account(org, box, sip_server=None, inbound_username="pbx-in",
                         inbound_password_enc=box.encrypt("in-pass-123")),
            make_account(org, box, allowed_ips="", outbound_username=None, outbound_password_enc=None)]
    for account in make:
        assert prov.provision(account).ok
    assert len(list((conf / "sip_profiles" / "external").glob("*.xml"))) == 2
    assert check_config(conf) == []


def test_verify_all_ok_then_each_check_fails_for_its_reason(org, box, conf, prov, esl):
    account = make_account(org, box)
    PhoneNumber.create(organization=org, number="+14155550100", sip_account=account)
    assert prov.provision(account).ok
    assert {name: status for name, (status, _) in checks(prov.verify(account)).items()} == {
        "local_config": "ok", "inbound_trunk": "ok", "outbound_trunk": "ok", "numbers_in_sync": "ok"}

    # outbound: the gateway disappeared behind our back (file deleted, gateway killed by hand).
    (conf / account_paths(account.id)["gateway"]).unlink()
    esl.api(commands.reloadxml())
    esl.api(commands.sofia_killgw("external", account.gateway_name))
    status, reason = checks(prov.verify(account))["outbound_trunk"]
    assert status == "failed" and f"no gateway {account.gateway_name}" in reason and "Invalid Gateway!" in reason
    assert checks(prov.verify(account))["inbound_trunk"][0] == "ok"

    # inbound (IP-trust): what admits the PBX is vb_accounts, built from the directory user's cidr.
    # The user file is gone; reloadxml drops the user, reloadacl the addresses.
    (conf / account_paths(account.id)["user"]).unlink()
    esl.api(commands.reloadxml())
    status, reason = checks(prov.verify(account))["inbound_trunk"]
    assert status == "failed" and f"no directory user {account.directory_user}" in reason
    esl.api(commands.reloadacl())
    result = checks(prov.verify(account))
    assert result["inbound_trunk"][0] == "failed" and "vb_accounts does not admit 203.0.113.7" in result[
        "inbound_trunk"][1]
    # a number cannot reach its agent when FreeSWITCH refuses the PBX.
    assert result["numbers_in_sync"][0] == "failed" and "inbound trunk not ready" in result["numbers_in_sync"][1]
    # a number cannot reach its agent when FreeSWITCH refuses the PBX.
    assert result["numbers_in_sync"][0] == "failed" and "inbound trunk not ready" in result["numbers_in_sync"][1]

    # Reprovision (deprovision + provision) repairs both.
    assert prov.deprovision(account).ok and prov.provision(account).ok
    assert all(status == "ok" for status, _ in checks(prov.verify(account)).values())

    # numbers: the public dialplan no longer hands DIDs to the app.
    public = conf / "dialplan" / "public.xml"
    public.write_text(public.read_text().replace('application="socket"', 'application="park"'))
    status, reason = checks(prov.verify(account))["numbers_in_sync"]
    assert status == "failed" and "+14155550100 does not route to the app" in reason

    # local config: a half credential pair in the database.
    SipAccount.update(outbound_password_enc=None).where(SipAccount.id == account.id).execute()
    status, reason = checks(prov.verify(SipAccount.get_by_id(account.id)))["local_config"]
    assert status == "failed" and "outbound username and password must be set together" in reason


def test_ip_trust_inbound_asks_vb_accounts_and_the_user(org, box, conf, prov, esl, sim):
    account = make_account(org, box)
    assert prov.provision(account).ok
    esl.lines.clear()
    assert checks(prov.verify(account))["inbound_trunk"] == ("ok", None)
    assert [line for line in esl.lines if not line.startswith("sofia")] == [
        f"user_exists id {account.directory_user} voxbridge", "acl 203.0.113.7 vb_accounts"]
    # the per-account list does not admit an IP-trust PBX: losing it alone changes nothing
    (conf / account_paths(account.id)["acl"]).unlink()
    esl.api(commands.reloadxml())
    esl.api(commands.reloadacl())
    assert esl.api(commands.acl_check("203.0.113.7", account.acl_name)) == "false"
    assert esl.api(commands.acl_check("203.0.113.7", "vb_accounts")) == "true"
    assert checks(prov.verify(account))["inbound_trunk"] == ("ok", None)


def test_digest_inbound_with_allowed_ips_checks_its_auth_acl(org, box, conf, prov, esl, sim):
    account = make_account(org, box, inbound_username="pbx-in", inbound_password_enc=box.encrypt("in-pass-123"))
    assert prov.provision(account).ok
    assert checks(prov.verify(account))["inbound_trunk"] == ("ok", None)
    (conf / account_paths(account.id)["acl"]).unlink()
    esl.api(commands.reloadxml())
    esl.api(commands.reloadacl())
    status, reason = checks(prov.verify(account))["inbound_trunk"]
    assert status == "failed" and f"{account.acl_name} does not admit 203.0.113.7" in reason


def test_numbers_check_skipped_without_numbers_and_failed_for_another_org(org, box, prov):
    account = make_account(org, box)
    assert prov.provision(account).ok
    assert checks(prov.verify(account))["numbers_in_sync"] == ("skipped", "no numbers are bound to this account")
    other = Organization.create(name="Other", minutes_included=1, webhook_url="http://127.0.0.1:9/x")
    PhoneNumber.create(organization=other, number="+14155550111", sip_account=account)
    status, reason = checks(prov.verify(account))["numbers_in_sync"]
    assert status == "failed" and "+14155550111 belongs to another organization" in reason


def test_deprovision_removes_files_and_freeswitch_objects(org, box, conf, prov, esl, sim):
    account = make_account(org, box, inbound_username="pbx-in", inbound_password_enc=box.encrypt("in-pass-123"))
    assert prov.provision(account).ok
    assert sim.registry.user_exists(account.directory_user)
    esl.lines.clear()
    assert prov.deprovision(account).ok
    assert not any((conf / p).exists() for p in account_paths(account.id).values())
    assert esl.lines == ["reloadxml", f"sofia profile external killgw {account.gateway_name}", "reloadacl"]
    assert not sim.registry.gateway_active(account.gateway_name)
    assert not sim.registry.user_exists(account.directory_user)
    assert esl.api(commands.acl_check("203.0.113.7", account.acl_name)) == "false"
    assert esl.api(commands.sofia_xmlstatus_gateway(account.gateway_name)).strip() == "Invalid Gateway!"


def test_live_calls_counts_channels_on_the_gateway(org, box, prov, esl):
    account = make_account(org, box)
    assert prov.provision(account).ok
    assert prov.live_calls(account) == 0
    reply = esl.api(ApiCall(f"originate sofia/gateway/{account.gateway_name}/14155550100 &park()"))
    assert reply.startswith("+OK"), reply
    assert prov.live_calls(account) == 1


def test_live_calls_are_counted_by_sip_gateway_name_not_channel_name(org, box, conf):
    """Real gateway channels are named sofia/external/<number>@<host> (captures), not after the gateway."""
    account = make_account(org, box)
    ours, other, ghost, inbound = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
                                   "33333333-3333-4333-8333-333333333333", "44444444-4444-4444-8444-444444444444")
    rows = [{"uuid": ours, "name": "sofia/external/14155550100@pbx.example.com:5060"},
            {"uuid": other, "name": "sofia/external/14155550101@carrier.example.net"},
            {"uuid": ghost, "name": "sofia/external/14155550102@pbx.example.com:5060"},
            {"uuid": inbound, "name": "loopback/14155550103-a"}]
    fake = Scripted({"show channels": json.dumps({"row_count": len(rows), "rows": rows}),
                     f"uuid_getvar {ours} sip_gateway_name": account.gateway_name,
                     f"uuid_getvar {other} sip_gateway_name": "carrier_default",
                     f"uuid_getvar {ghost} ": "-ERR No such channel!\n"})
    prov = FreeSwitchProvisioner(conf, lambda: fake, box)
    assert prov.live_calls(account) == 1
    assert fake.lines == ["show channels as json"] + [f"uuid_getvar {u} sip_gateway_name" for u in (ours, other, ghost)]


class Scripted:
    """Answers api lines from a table: FreeSWITCH replies the simulator does not produce."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.lines = answers, []

    def api(self, call: ApiCall) -> str:
        self.lines.append(call.line)
        for prefix, answer in self.answers.items():
            if call.line.startswith(prefix):
                return answer
        return "+OK\n"


def test_digest_inbound_checks_the_directory_user(org, box, conf, prov, esl, sim):
    account = make_account(org, box, allowed_ips="", inbound_username="pbx-in",
                           inbound_password_enc=box.encrypt("in-pass-123"), sip_server=None)
    assert prov.provision(account).ok
    esl.lines.clear()
    assert checks(prov.verify(account))["inbound_trunk"] == ("ok", None)
    assert esl.lines == [f"user_exists id {account.directory_user} voxbridge"]
    assert esl.api(commands.user_exists(account.directory_user, "voxbridge")) == "true"

    # the user file vanished and FreeSWITCH reloaded: the PBX's Digest answer would be refused
    (conf / account_paths(account.id)["user"]).unlink()
    esl.api(commands.reloadxml())
    status, reason = checks(prov.verify(account))["inbound_trunk"]
    assert status == "failed" and account.directory_user in reason and reason.endswith(": false")
    assert prov.provision(account).ok
    assert checks(prov.verify(account))["inbound_trunk"] == ("ok", None)


def test_gateway_down_or_stale_is_reported(org, box, conf):
    account = make_account(org, box)
    status_xml = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<gateway>\n<name>{gw}</name>\n'
                  '<proxy>sip:{proxy};transport=udp</proxy>\n<state>NOREG</state>\n<status>{status}</status>\n'
                  '</gateway>\n')
    fake = Scripted({"acl": "true"})
    prov = FreeSwitchProvisioner(conf, lambda: fake, box)
    fake.answers["sofia xmlstatus"] = status_xml.format(gw=account.gateway_name, proxy="pbx.example.com:5060",
                                                        status="DOWN")
    status, reason = checks(prov.verify(account))["outbound_trunk"]
    assert status == "failed" and "NOREG/DOWN" in reason and "OPTIONS" in reason
    fake.answers["sofia xmlstatus"] = status_xml.format(gw=account.gateway_name, proxy="old.example.com",
                                                        status="UP")
    status, reason = checks(prov.verify(account))["outbound_trunk"]
    assert status == "failed" and "points at old.example.com" in reason
    assert parse_gateway_status("Invalid Gateway!\n") is None


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def send(client, method, path, auth, body=None):
    return client.open(path, method=method, data=json.dumps(body) if body is not None else None, headers=auth,
                       content_type="application/json")


BODY = {"name": "HQ PBX", "sip_server": "pbx.example.com:5060", "transport": "udp",
        "allowed_ips": "203.0.113.7", "outbound_username": "acme", "outbound_password": "s3cret-pass"}


def test_unreachable_freeswitch_saves_and_reports_then_reprovision_fixes(config, db, auth, conf, box, sim):
    from api import create_app

    down = FreeSwitchProvisioner(conf, esl_connector("127.0.0.1", closed_port(), PASSWORD, timeout=1), box)
    client = create_app(config, provisioner=down).test_client()
    created = send(client, "POST", "/v1/sip-accounts", auth, BODY)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["provisioned"] is False
    assert "FreeSWITCH unreachable" in body["provision_error"] and "reprovision" in body["provision_error"]
    assert "s3cret-pass" not in body["provision_error"]
    account_id = body["id"]
    assert (conf / account_paths(account_id)["gateway"]).exists()  # files stay written
    verify = send(client, "POST", f"/v1/sip-accounts/{account_id}/verify", auth).get_json()
    assert verify["ok"] is False
    assert {c["name"]: c["status"] for c in verify["checks"]}["outbound_trunk"] == "failed"

    up = FreeSwitchProvisioner(conf, esl_connector("127.0.0.1", sim.port, PASSWORD, timeout=3), box)
    client = create_app(config, provisioner=up).test_client()
    repaired = send(client, "POST", f"/v1/sip-accounts/{account_id}/reprovision", auth)
    assert repaired.status_code == 200 and repaired.get_json()["provisioned"] is True
    assert sim.registry.gateway_active("vb_gw_" + account_id.replace("-", ""))
    bound = send(client, "POST", f"/v1/sip-accounts/{account_id}/numbers", auth, {"number": "+14155550100"})
    assert bound.status_code == 201
    verify = send(client, "POST", f"/v1/sip-accounts/{account_id}/verify", auth).get_json()
    assert verify["ok"] is True, verify


def test_api_reprovision_warns_about_live_calls_and_delete_cleans_up(config, db, auth, conf, box, sim):
    from api import create_app

    prov = FreeSwitchProvisioner(conf, esl_connector("127.0.0.1", sim.port, PASSWORD, timeout=3), box)
    client = create_app(config, provisioner=prov).test_client()
    account_id = send(client, "POST", "/v1/sip-accounts", auth, BODY).get_json()["id"]
    gw = "vb_gw_" + account_id.replace("-", "")
    assert sim.registry.gateway_active(gw)
    with EslConnection("127.0.0.1", sim.port, PASSWORD) as conn:
        assert conn.api(ApiCall(f"originate sofia/gateway/{gw}/14155550100 &park()")).startswith("+OK")
    body = send(client, "POST", f"/v1/sip-accounts/{account_id}/reprovision", auth).get_json()
    assert body["provisioned"] is True and "1 live call(s)" in body["warning"]

    deleted = send(client, "DELETE", f"/v1/sip-accounts/{account_id}", auth)
    assert deleted.status_code == 200 and "warning" not in deleted.get_json()
    assert not any((conf / p).exists() for p in account_paths(account_id).values())
    assert not sim.registry.gateway_active(gw)
    assert not sim.registry.acl_check("203.0.113.7", "vb_acl_" + account_id.replace("-", ""))


def test_numbers_in_sync_with_a_conf_dir_of_generated_files_only(org, box, tmp_path):
    """docker-compose: FREESWITCH_CONF_DIR (/srv/fsconf) holds only acl.d/, sip_profiles/external/
    and directory/voxbridge/; the dialplan is evaluated from the app's shipped trees."""
    generated = tmp_path / "srv-fsconf"
    for folder in ("acl.d", "sip_profiles/external", "directory/voxbridge"):
        (generated / folder).mkdir(parents=True)
    account = make_account(org, box)
    PhoneNumber.create(organization=org, number="+14155550100", sip_account=account)
    fake = Scripted({"user_exists": "true", "acl": "true", "sofia xmlstatus": "Invalid Gateway!\n"})
    alone = FreeSwitchProvisioner(generated, lambda: fake, box)
    assert alone.provision(account).ok
    assert not (generated / "freeswitch.xml").exists()
    status, reason = checks(alone.verify(account))["numbers_in_sync"]
    assert status == "failed" and "cannot read the FreeSWITCH dialplan" in reason   # what compose did before

    composed = FreeSwitchProvisioner(generated, lambda: fake, box, dialplan_conf_dir=REPO / "freeswitch",
                                     dialplan_dir=REPO / "dialplan")
    assert checks(composed.verify(account))["numbers_in_sync"] == ("ok", None)
    # and it really reads the shipped dialplan: a broken copy of it is noticed
    broken = tmp_path / "dialplan"
    shutil.copytree(REPO / "dialplan", broken)
    public = broken / "public.xml"
    public.write_text(public.read_text().replace('application="socket"', 'application="park"'))
    drifted = FreeSwitchProvisioner(generated, lambda: fake, box, dialplan_conf_dir=REPO / "freeswitch",
                                    dialplan_dir=broken)
    status, reason = checks(drifted.verify(account))["numbers_in_sync"]
    assert status == "failed" and "+14155550100 does not route to the app" in reason


def test_app_composes_the_provisioner_with_its_shipped_trees(db, tmp_path):
    from cryptography.fernet import Fernet

    import app as voxbridge_app
    from config import load_config

    config = load_config({}, esl_hosts=f"127.0.0.1:{closed_port()}", esl_password="x" * 16,
                         voice_pipeline=False, freeswitch_conf_dir=str(tmp_path),
                         sip_secret_key=Fernet.generate_key().decode())
    api_app, *_ = voxbridge_app.build_services(config)
    prov = api_app.extensions["voxbridge.provisioner"]
    assert isinstance(prov, FreeSwitchProvisioner) and prov.conf_dir == tmp_path
    assert (prov.dialplan_conf_dir / "freeswitch.xml").is_file() and (prov.dialplan_dir / "public.xml").is_file()
    Dialplan.load(prov.dialplan_conf_dir, prov.dialplan_dir, generated_dir=prov.conf_dir).hunt("public", "+1415")


def _api_client(config, conf, box, sim):
    from api import create_app

    prov = FreeSwitchProvisioner(conf, esl_connector("127.0.0.1", sim.port, PASSWORD, timeout=3), box)
    return create_app(config, provisioner=prov).test_client()


def test_api_reprovision_repairs_drift(config, db, auth, conf, box, sim):
    client = _api_client(config, conf, box, sim)
    account_id = send(client, "POST", "/v1/sip-accounts", auth, BODY).get_json()["id"]
    gw = "vb_gw_" + account_id.replace("-", "")
    bound = send(client, "POST", f"/v1/sip-accounts/{account_id}/numbers", auth, {"number": "+14155550100"})
    assert bound.status_code == 201
    # drift behind the app's back: the gateway file deleted and the gateway killed by hand
    (conf / account_paths(account_id)["gateway"]).unlink()
    with EslConnection("127.0.0.1", sim.port, PASSWORD) as conn:
        conn.api(commands.reloadxml())
        conn.api(commands.sofia_killgw("external", gw))
    verify = send(client, "POST", f"/v1/sip-accounts/{account_id}/verify", auth).get_json()
    assert verify["ok"] is False
    assert {c["name"]: c["status"] for c in verify["checks"]}["outbound_trunk"] == "failed"
    repaired = send(client, "POST", f"/v1/sip-accounts/{account_id}/reprovision", auth)
    assert repaired.status_code == 200 and repaired.get_json()["provisioned"] is True
    assert "warning" not in repaired.get_json()
    assert (conf / account_paths(account_id)["gateway"]).exists() and sim.registry.gateway_active(gw)
    verify = send(client, "POST", f"/v1/sip-accounts/{account_id}/verify", auth).get_json()
    assert verify["ok"] is True and [c["status"] for c in verify["checks"]] == ["ok"] * 4, verify


def test_api_patch_provisions_the_change(config, db, auth, conf, box, sim):
    client = _api_client(config, conf, box, sim)
    account_id = send(client, "POST", "/v1/sip-accounts", auth, BODY).get_json()["id"]
    gw = "vb_gw_" + account_id.replace("-", "")
    assert sim.registry.gateway_proxy(gw) == "pbx.example.com:5060"
    patched = send(client, "PATCH", f"/v1/sip-accounts/{account_id}", auth,
                   {"sip_server": "pbx2.example.com:5070", "allowed_ips": "192.0.2.10"})
    assert patched.status_code == 200 and patched.get_json()["provisioned"] is True, patched.get_json()
    assert sim.registry.gateway_proxy(gw) == "pbx2.example.com:5070"
    assert 'value="pbx2.example.com:5070"' in (conf / account_paths(account_id)["gateway"]).read_text()
    assert sim.registry.acl_check("192.0.2.10", "vb_acl_" + account_id.replace("-", ""))
    assert not sim.registry.acl_check("203.0.113.7", "vb_acl_" + account_id.replace("-", ""))


def test_passwords_never_reach_logs_or_responses(config, db, auth, conf, box, sim, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    secrets = ("s3cret-pass", "in-bound-pass1", "changed-pass2")
    client = _api_client(config, conf, box, sim)
    created = send(client, "POST", "/v1/sip-accounts", auth,
                   {**BODY, "inbound_username": "pbx-in", "inbound_password": secrets[1]})
    assert created.status_code == 201
    account_id = created.get_json()["id"]
    bodies = [created.get_data(as_text=True)]
    bodies.append(send(client, "PATCH", f"/v1/sip-accounts/{account_id}", auth,
                       {"outbound_password": secrets[2]}).get_data(as_text=True))
    bodies.append(client.get(f"/v1/sip-accounts/{account_id}", headers=auth).get_data(as_text=True))
    bodies.append(client.get("/v1/sip-accounts", headers=auth).get_data(as_text=True))
    bodies.append(send(client, "POST", f"/v1/sip-accounts/{account_id}/verify", auth).get_data(as_text=True))
    bodies.append(send(client, "POST", f"/v1/sip-accounts/{account_id}/reprovision", auth).get_data(as_text=True))
    # and the unreachable path, whose error text is logged
    down = FreeSwitchProvisioner(conf, esl_connector("127.0.0.1", closed_port(), PASSWORD, timeout=1), box)
    from api import create_app
    offline = create_app(config, provisioner=down).test_client()
    bodies.append(send(offline, "PATCH", f"/v1/sip-accounts/{account_id}", auth,
                       {"outbound_password": secrets[0]}).get_data(as_text=True))
    listed = json.loads(bodies[3])["data"]
    assert [a["id"] for a in listed] == [account_id]
    assert any("not provisioned" in r.getMessage() for r in caplog.records)   # logging did happen
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records) + caplog.text
    for secret in secrets:
        assert secret not in logged
        assert all(secret not in body for body in bodies)
    assert (conf / account_paths(account_id)["gateway"]).read_text().count(secrets[0]) == 1  # it did reach the XML
