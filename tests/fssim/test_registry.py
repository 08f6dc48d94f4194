"""Gateways, ACL lists and directory users read from a copy of the real freeswitch/ tree, the way
FreeSWITCH reads them: freeswitch.xml preprocessed (includes relative to the including file,
$${var} from vars.xml set / env-set), acl.d/ at the conf root, user_exists from the directory."""
import logging
import shutil
from pathlib import Path

import pytest

from fssim import Simulator
from fssim.registry import Registry
from fssim.xmlconf import Preprocessor
from tests.fssim.eslclient import EslClient

REPO = Path(__file__).resolve().parents[2]
ENV_VARS = ("FREESWITCH_ESL_ALLOW_CIDRS", "FREESWITCH_CARRIER_CIDRS", "FREESWITCH_PBX_CIDRS",
            "FREESWITCH_PROXY_CIDRS")


@pytest.fixture
def conf(tmp_path, monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    target = tmp_path / "freeswitch"
    shutil.copytree(REPO / "freeswitch", target)  # a plain copy: the dialplan symlink is followed
    return target


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def gateway_xml(name: str, proxy: str) -> str:
    return f'<include>\n<gateway name="{name}">\n<param name="proxy" value="{proxy}"/>\n</gateway>\n</include>\n'


def acl_xml(name: str, *cidrs: str) -> str:
    nodes = "".join(f'<node type="allow" cidr="{c}"/>\n' for c in cidrs)
    return f'<include>\n<list name="{name}" default="deny">\n{nodes}</list>\n</include>\n'


def user_xml(user_id: str, attrs: str = "") -> str:
    return (f'<include>\n<user id="{user_id}"{attrs}>\n<params>\n<param name="password" value="pw-1"/>\n'
            f'</params>\n</user>\n</include>\n')


def test_real_acl_conf_loads_with_unset_and_bad_variables(conf, monkeypatch, caplog):
    monkeypatch.setenv("FREESWITCH_ESL_ALLOW_CIDRS", "10.1.0.0/16,not-a-cidr")
    monkeypatch.setenv("FREESWITCH_CARRIER_CIDRS", "198.51.100.0/24")
    with caplog.at_level(logging.ERROR, logger="fssim.registry"):
        reg = Registry(str(conf))
    assert reg.acl_check("10.1.2.3", "esl_clients") and reg.acl_check("127.0.0.1", "esl_clients")
    assert not reg.acl_check("10.2.0.1", "esl_clients")
    assert reg.acl_check("198.51.100.9", "carriers")
    # FREESWITCH_PBX_CIDRS unset: $${vb_pbx_cidrs} expands to nothing, the node is skipped, the list stays
    assert "pbx" in reg.acls and not reg.acl_check("10.0.0.1", "pbx")
    logged = caplog.text
    assert "Error Adding not-a-cidr (allow) to list esl_clients" in logged
    assert "Error Adding  (allow) to list pbx" in logged


def test_env_set_reads_the_environment_and_set_defines_globals(conf, monkeypatch):
    pre = Preprocessor({"FREESWITCH_PBX_CIDRS": "192.0.2.0/28"})
    root = pre.document(conf / "freeswitch.xml")
    assert pre.globals["vb_pbx_cidrs"] == "192.0.2.0/28"
    assert pre.globals["vb_directory_domain"] == "voxbridge"
    assert "vb_carrier_cidrs" not in pre.globals  # env-set of an unset variable leaves it unset
    domains = [d.get("name") for s in root.findall("section") if s.get("name") == "directory"
               for d in s.findall("domain")]
    assert domains == ["voxbridge"]


def test_generated_files_follow_the_real_includes(conf):
    write(conf / "acl.d" / "vb_acl_1.xml", acl_xml("vb_acl_1", "203.0.113.7/32", "198.51.100.0/24"))
    write(conf / "sip_profiles" / "external" / "vb_gw_1.xml", gateway_xml("vb_gw_1", "pbx.example.com:5060"))
    write(conf / "directory" / "voxbridge" / "vb_user_1.xml", user_xml("vb_user_1", ' number-alias="pbx-in"'))
    # the old wrong place is not read
    write(conf / "autoload_configs" / "acl.d" / "stray.xml", acl_xml("stray", "10.0.0.0/8"))
    reg = Registry(str(conf))
    assert reg.acl_check("203.0.113.7", "vb_acl_1") and reg.acl_check("198.51.100.200", "vb_acl_1")
    assert not reg.acl_check("203.0.113.8", "vb_acl_1")
    assert "stray" not in reg.acls
    assert reg.gateway_active("vb_gw_1") and reg.gateway_proxy("vb_gw_1") == "pbx.example.com:5060"
    assert reg.user_exists("vb_user_1", "voxbridge") and not reg.user_exists("vb_user_1", "other")
    assert not reg.user_exists("pbx-in", "voxbridge")  # looked up by id


def test_domain_node_admits_the_cidr_of_ip_trust_users(conf):
    write(conf / "directory" / "voxbridge" / "vb_user_2.xml",
          user_xml("vb_user_2", ' cidr="203.0.113.0/28,192.0.2.9/32"'))
    write(conf / "directory" / "voxbridge" / "vb_user_3.xml", user_xml("vb_user_3"))  # digest user: no cidr
    reg = Registry(str(conf))
    assert reg.acl_check("203.0.113.14", "vb_accounts") and reg.acl_check("192.0.2.9", "vb_accounts")
    assert not reg.acl_check("203.0.113.16", "vb_accounts") and not reg.acl_check("192.0.2.10", "vb_accounts")


def test_longest_prefix_decides_and_a_broken_file_keeps_the_previous_xml(conf):
    write(conf / "acl.d" / "mixed.xml", '<include>\n<list name="mixed" default="allow">\n'
          '<node type="deny" cidr="10.0.0.0/8"/>\n<node type="allow" cidr="10.1.0.0/16"/>\n</list>\n</include>\n')
    reg = Registry(str(conf))
    assert reg.acl_check("10.1.2.3", "mixed") and not reg.acl_check("10.2.0.1", "mixed")
    assert reg.acl_check("192.0.2.1", "mixed")  # no node matches: the default
    write(conf / "acl.d" / "broken.xml", "<include>\n<list name=\"broken\"\n</include>\n")
    assert reg.reloadxml() is not None
    reg.reloadacl()
    assert "mixed" in reg.acls and "broken" not in reg.acls


def test_esl_api_reloadxml_reloadacl_acl_and_user_exists(conf):
    acl = conf / "acl.d" / "vb_carriers.xml"
    write(acl, acl_xml("vb_carriers", "198.51.100.0/24"))
    write(conf / "sip_profiles" / "external" / "vb_gw_1.xml", gateway_xml("vb_gw_1", "198.51.100.7"))
    write(conf / "directory" / "voxbridge" / "u1.xml", user_xml("1001"))
    with Simulator(port=0, conf_dir=str(conf)) as s:
        c = EslClient.connect("127.0.0.1", s.port)
        c.auth("ClueCon")
        assert c.api("acl 198.51.100.9 vb_carriers") == "true"
        assert c.api("acl 203.0.113.1 vb_carriers") == "false"
        assert c.api("user_exists id 1001 voxbridge") == "true"
        assert c.api("user_exists id 1002 voxbridge") == "false"
        assert c.api("user_exists id 1001 example.com") == "false"
        assert c.api("user_exists id 1001") == "false"  # mod_commands: bad args are "false" too
        assert "<name>vb_gw_1</name>" in c.api("sofia xmlstatus gateway vb_gw_1")
        assert c.api("originate sofia/gateway/vb_gw_1/15551230000 &park()").startswith("+OK ")
        assert c.api("originate user/1001 &park()") == "-ERR USER_NOT_REGISTERED\n"
        assert c.api("sofia profile external killgw vb_gw_1") == "+OK gateway marked for deletion.\n"
        assert c.api("sofia xmlstatus gateway vb_gw_1") == "Invalid Gateway!\n"
        write(conf / "sip_profiles" / "external" / "vb_gw_2.xml", gateway_xml("vb_gw_2", "198.51.100.8"))
        assert c.api("reloadxml") == "+OK [Success]\n"
        assert c.api("sofia xmlstatus gateway vb_gw_2") == "Invalid Gateway!\n"  # not until rescan
        assert c.api("sofia profile external rescan").endswith("+OK scan complete\n")
        assert "<name>vb_gw_2</name>" in c.api("sofia xmlstatus gateway vb_gw_2")
        (conf / "directory" / "voxbridge" / "u1.xml").unlink()
        acl.unlink()
        # plain reloadacl works from the XML already loaded (mod_commands): the list stays
        assert c.api("reloadacl") == "+OK acl reloaded\n"
        assert c.api("acl 198.51.100.9 vb_carriers") == "true"
        assert c.api("user_exists id 1001 voxbridge") == "true"
        assert c.api("reloadacl reloadxml") == "+OK acl reloaded\n"
        assert c.api("acl 198.51.100.9 vb_carriers") == "false"
        assert c.api("user_exists id 1001 voxbridge") == "false"
        c.close()


def test_rescan_reads_new_gateways_only_from_the_xml_already_loaded(conf):
    write(conf / "sip_profiles" / "external" / "vb_gw_1.xml", gateway_xml("vb_gw_1", "198.51.100.7"))
    with Simulator(port=0, conf_dir=str(conf)) as s:
        c = EslClient.connect("127.0.0.1", s.port)
        c.auth("ClueCon")
        write(conf / "sip_profiles" / "external" / "vb_gw_3.xml", gateway_xml("vb_gw_3", "198.51.100.9"))
        assert c.api("sofia profile external rescan") == "+OK scan complete\n"
        assert c.api("sofia xmlstatus gateway vb_gw_3") == "Invalid Gateway!\n"  # file not read yet
        assert c.api("sofia profile external rescan reloadxml") == "Reload XML [Success]\n+OK scan complete\n"
        assert "<name>vb_gw_3</name>" in c.api("sofia xmlstatus gateway vb_gw_3")
        c.close()


def test_a_shared_cidr_is_attributed_to_one_user_as_sofia_does(conf):
    """Two IP-trust users allowing one address: the vb_accounts list admits it and the token (whose variables
    sofia sets) is the node added last among equal prefixes; a longer prefix wins whatever the order."""
    from fssim.sip_invite import Refused, admission

    users = conf / "directory" / "voxbridge"
    write(users / "vb_user_a.xml", user_xml("vb_user_a", ' cidr="203.0.113.50/32"').replace(
        "</params>", '</params>\n<variables><variable name="vb_account_id" value="a"/></variables>'))
    write(users / "vb_user_b.xml", user_xml("vb_user_b", ' cidr="203.0.113.50/32"').replace(
        "</params>", '</params>\n<variables><variable name="vb_account_id" value="b"/></variables>'))
    write(users / "vb_user_c.xml", user_xml("vb_user_c", ' cidr="203.0.113.0/24"'))
    reg = Registry(str(conf), env={})
    assert reg.acls["vb_accounts"].lookup("203.0.113.50") == (True, "vb_user_b@voxbridge")
    assert reg.acls["vb_accounts"].lookup("203.0.113.51") == (True, "vb_user_c@voxbridge")
    admitted = admission(reg, "203.0.113.50")
    assert (admitted["sip_acl_authed_by"], admitted["sip_acl_token"], admitted["vb_account_id"],
            admitted["user_context"]) == ("vb_accounts", "vb_user_b@voxbridge", "b", "public")
    assert admission(reg, "192.0.2.200") == Refused(407, "Proxy Authentication Required")
    assert admission(reg, "192.0.2.200", ("vb_user_a", "pw-1"))["vb_account_id"] == "a"
    assert admission(reg, "192.0.2.200", ("vb_user_a", "wrong")) == Refused(403, "Forbidden")
