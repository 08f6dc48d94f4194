"""check-config passes on the shipped tree and names file:line for each broken copy."""
import subprocess
import sys

import pytest

from fsconf.check import main
from tests.fsconf.conftest import CONF, DIALPLAN, REPO


def test_shipped_tree_passes(tree):
    assert tree.check() == []


def test_shipped_tree_passes_through_the_cli(capsys):
    assert main(["--conf", str(CONF), "--dialplan", str(DIALPLAN), "--socket-address", "127.0.0.1:8084"]) == 0
    assert "check-config: OK" in capsys.readouterr().out


def test_cli_runs_as_a_module_and_exits_1_on_problems(tree):
    tree.edit("dialplan/public.xml", 'expression="^true$"', 'expression="^(true$"')
    run = subprocess.run([sys.executable, "-m", "fsconf.check", "--conf", str(tree.conf),
                          "--dialplan", str(tree.dialplan)], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:8084"})
    assert run.returncode == 1
    assert "dialplan/public.xml:" in run.stdout and "does not compile" in run.stdout


def _line_of(tree, relative: str, needle: str) -> int:
    for number, line in enumerate(tree.path(relative).read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


BROKEN = [
    # (name, file, old, new, expected location file, text to find the line, message part)
    ("missing include", "freeswitch/freeswitch.xml", 'data="vars.xml"', 'data="vars-missing.xml"',
     "freeswitch/freeswitch.xml", "vars-missing.xml", "no such file"),
    ("bad regex", "dialplan/outbound.xml", 'expression="^0?([1-9][0-9]{5,13})$"',
     'expression="^0?([1-9][0-9]{5,13}$"', "dialplan/outbound.xml", "^0?([1-9][0-9]{5,13}$", "does not compile"),
    ("unknown context", "dialplan/transfer.xml", 'data="$1 XML voxbridge_outbound"',
     'data="$1 XML voxbridge_outbnd"', "dialplan/transfer.xml", "voxbridge_outbnd", "unknown context"),
    ("profile context", "freeswitch/sip_profiles/external.xml", '<param name="context" value="public"/>',
     '<param name="context" value="inbound"/>', "freeswitch/sip_profiles/external.xml", 'value="inbound"',
     "profile context 'inbound' does not exist"),
    ("hardcoded socket address", "dialplan/public.xml", 'data="$${vb_public_socket}"',
     'data="10.9.9.9:9999 async full"', "dialplan/public.xml", "10.9.9.9:9999", "app listens on '127.0.0.1:8084'"),
    ("socket without async full", "dialplan/public.xml", 'data="$${vb_public_socket}"',
     'data="$${vb_socket_address}"', "dialplan/public.xml", 'data="$${vb_socket_address}"', "async full"),
    ("missing module", "freeswitch/autoload_configs/modules.conf.xml", '<load module="mod_audio_fork"/>', "",
     "freeswitch/autoload_configs/modules.conf.xml", '<configuration name="modules.conf"',
     "mod_audio_fork is not loaded"),
    ("malformed XML", "dialplan/public.xml", '<action application="answer"/>', '<action application=answer/>',
     "dialplan/public.xml", "application=answer", "malformed XML"),
    ("api-expansion on", "freeswitch/autoload_configs/switch.conf.xml",
     '<param name="api-expansion" value="false"/>', '<param name="api-expansion" value="true"/>',
     "freeswitch/autoload_configs/switch.conf.xml", '<configuration name="switch.conf"', "api-expansion"),
    ("vanilla ESL password", "freeswitch/autoload_configs/event_socket.conf.xml",
     'value="$${vb_esl_password}"', 'value="ClueCon"', "freeswitch/autoload_configs/event_socket.conf.xml",
     'value="ClueCon"', "default secret"),
    ("unknown ACL", "freeswitch/sip_profiles/external.xml", '<param name="apply-inbound-acl" value="pbx"/>',
     '<param name="apply-inbound-acl" value="pbxs"/>', "freeswitch/sip_profiles/external.xml", '"pbxs"',
     "ACL list 'pbxs' is not defined"),
    ("api function in dialplan", "dialplan/public.xml", 'field="${sip_authorized}"',
     'field="${acl(${network_addr} carriers)}"', "dialplan/public.xml", "${acl(", "api-expansion is off"),
    ("unset global", "dialplan/outbound.xml", "$${vb_outbound_ring_timeout}", "$${vb_ring_timeout}",
     "dialplan/outbound.xml", "$${vb_ring_timeout}", "is not set"),
    ("line dropped by preprocessor", "dialplan/transfer.xml", "<include>", "<include><!-- x -->",
     "dialplan/transfer.xml", "<include>", "drops this whole line"),
    ("exec instruction", "freeswitch/vars.xml", '<X-PRE-PROCESS cmd="set" data="vb_directory_domain=voxbridge"/>',
     '<X-PRE-PROCESS cmd="set" data="vb_directory_domain=voxbridge"/>\n  <X-PRE-PROCESS cmd="exec" data="id"/>',
     "freeswitch/vars.xml", 'cmd="exec"', "exec runs a shell command"),
    ("half instruction", "dialplan/transfer.xml", '<X-PRE-PROCESS cmd="set"', 'x <X-PRE-PROCESS cmd="set"',
     "dialplan/transfer.xml", 'x <X-PRE-PROCESS', "text beside an X-PRE-PROCESS instruction is lost"),
    ("unknown gateway", "dialplan/outbound.xml", 'data="sofia/gateway/${vb_gateway}/+$1"',
     'data="sofia/gateway/nosuchgw/+$1"', "dialplan/outbound.xml", "nosuchgw", "unknown gateway 'nosuchgw'"),
]


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_copy_is_reported_at_its_line(tree, case):
    _, relative, old, new, where, needle, message = case
    tree.edit(relative, old, new)
    problems = tree.check()
    line = _line_of(tree, where, needle)
    expected = f"{where}:{line}: "
    assert any(p.startswith(expected) and message in p for p in problems), problems


def test_socket_address_from_vars_must_match_the_app(tree):
    # vars.xml pins an address instead of taking VOXBRIDGE_SOCKET_ADDRESS from the environment
    tree.edit("freeswitch/vars.xml", 'data="vb_socket_address=$VOXBRIDGE_SOCKET_ADDRESS"',
              'data="vb_socket_address=127.0.0.1:9000"')
    tree.edit("freeswitch/vars.xml", 'cmd="env-set" data="vb_socket_address', 'cmd="set" data="vb_socket_address')
    problems = tree.check()
    assert any("dialplan/public.xml" in p and "'127.0.0.1:9000'" in p for p in problems), problems


def test_missing_glob_directory_is_fine(tree):
    (tree.conf / "acl.d" / ".gitignore").unlink()
    tree.conf.joinpath("acl.d").rmdir()
    assert tree.check() == []


def test_bad_cidr_in_generated_acl(tree):
    tree.write("freeswitch/acl.d/vb_acl_x.xml",
               '<include>\n  <list name="vb_acl_x" default="deny">\n'
               '    <node type="allow" cidr="10.0.0.300/24"/>\n  </list>\n</include>\n')
    assert any(p.startswith("freeswitch/acl.d/vb_acl_x.xml:3: ") and "not a CIDR" in p for p in tree.check())


def test_injection_attempt_in_hand_written_gateway(tree):
    # What a naive generator writes for password  x"/><param name="proxy" value="evil.example  and a
    # second gateway smuggled in; fsconf.provision refuses such values, check-config catches the file.
    name = "vb_gw_" + "ab" * 16
    tree.write(f"freeswitch/sip_profiles/external/{name}.xml",
               f'<include>\n  <gateway name="{name}">\n'
               '    <param name="proxy" value="pbx.example.com"/>\n'
               '    <param name="username" value="u"/>\n'
               '    <param name="password" value="x"/><param name="proxy" value="evil.example"/>\n'
               '  </gateway>\n'
               '  <gateway name="hijack">\n'
               '    <param name="proxy" value="evil.example"/>\n'
               '    <param name="username" value="$${vb_esl_password}"/>\n'
               '  </gateway>\n</include>\n')
    problems = tree.check()
    where = f"freeswitch/sip_profiles/external/{name}.xml"
    assert any(p.startswith(f"{where}:5: ") and "param 'proxy' repeated" in p for p in problems), problems
    assert any(p.startswith(f"{where}:7: ") and "defines gateway 'hijack'" in p for p in problems), problems
    assert any(p.startswith(f"{where}:9: ") and "global variable" in p for p in problems), problems


def test_duplicate_user_alias(tree):
    for n in (1, 2):
        tree.write(f"freeswitch/directory/voxbridge/vb_user_{n}.xml",
                   f'<include>\n  <user id="vb_user_{n}" number-alias="pbx">\n'
                   '    <params><param name="password" value="abc"/></params>\n  </user>\n</include>\n')
    assert any(p.startswith("freeswitch/directory/voxbridge/vb_user_2.xml:2: ") and "'pbx' already used" in p
               for p in tree.check())


def test_generated_dir_outside_the_tree(tree, tmp_path):
    from fsconf import provision
    from fsconf.check import check_config
    generated = tmp_path / "generated"
    account = "01234567-89ab-cdef-0123-456789abcdef"
    provision.write_files(generated, provision.account_files(account, sip_server="pbx.example.com",
                                                             allowed_ips="10.1.0.0/16"))
    tree.edit("dialplan/outbound.xml", 'data="sofia/gateway/${vb_gateway}/+$1"',
              f'data="sofia/gateway/{provision.gateway_name(account)}/+$1"')
    assert any("unknown gateway" in str(p) for p in check_config(tree.conf, tree.dialplan, "127.0.0.1:8084",
                                                                  env={}))
    assert check_config(tree.conf, tree.dialplan, "127.0.0.1:8084", env={}, generated_dir=generated) == []
    (generated / "acl.d" / "vb_acl_bad.xml").write_text("<include>\n  <list name='x'>\n</include>\n")
    problems = [str(p) for p in check_config(tree.conf, tree.dialplan, "127.0.0.1:8084", env={},
                                             generated_dir=generated)]
    assert any("acl.d/vb_acl_bad.xml:3: malformed XML" in p for p in problems), problems


def _esl_password_line(tree) -> str:
    return "freeswitch/autoload_configs/event_socket.conf.xml:" + str(
        _line_of(tree, "freeswitch/autoload_configs/event_socket.conf.xml", 'name="password"'))


def test_empty_esl_password_from_the_environment_is_refused(tree):
    from fsconf.check import check_config
    problems = [str(p) for p in check_config(tree.conf, tree.dialplan, "127.0.0.1:8084",
                                             env={"FREESWITCH_ESL_PASSWORD": ""})]
    assert any(p.startswith(_esl_password_line(tree) + ": ") and "falls back to ClueCon" in p
               for p in problems), problems


def test_esl_password_global_set_to_nothing_is_refused(tree):
    tree.edit("freeswitch/vars.xml", '<X-PRE-PROCESS cmd="env-set" data="vb_esl_password=$FREESWITCH_ESL_PASSWORD"/>',
              '<X-PRE-PROCESS cmd="set" data="vb_esl_password="/>')
    assert any(p.startswith(_esl_password_line(tree) + ": ") and "ESL password is empty" in p for p in tree.check())


def test_unset_esl_password_is_refused_when_checking_the_runtime_environment(tree):
    from fsconf.check import check_config
    env = {"VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:8084"}
    assert check_config(tree.conf, tree.dialplan, env=env) == []   # filled in at deploy time
    problems = [str(p) for p in check_config(tree.conf, tree.dialplan, env=env, runtime_env=True)]
    assert any(p.startswith(_esl_password_line(tree) + ": ") and "$FREESWITCH_ESL_PASSWORD, which is not set" in p
               for p in problems), problems
    assert check_config(tree.conf, tree.dialplan, env={**env, "FREESWITCH_ESL_PASSWORD": "x" * 16},
                        runtime_env=True) == []


@pytest.mark.parametrize("value", ["ClueCon", "cluecon"])
def test_literal_cluecon_esl_password_is_refused(tree, value):
    tree.edit("freeswitch/autoload_configs/event_socket.conf.xml", 'value="$${vb_esl_password}"', f'value="{value}"')
    assert any(p.startswith(_esl_password_line(tree) + ": ") and "ClueCon" in p for p in tree.check())


def test_missing_esl_password_param_is_refused(tree):
    tree.edit("freeswitch/autoload_configs/event_socket.conf.xml",
              '<param name="password" value="$${vb_esl_password}"/>', "")
    where = "freeswitch/autoload_configs/event_socket.conf.xml:" + str(
        _line_of(tree, "freeswitch/autoload_configs/event_socket.conf.xml", '<configuration name='))
    assert any(p.startswith(where + ": ") and "no password param" in p for p in tree.check())


SECURITY = [
    ("unknown module", "freeswitch/autoload_configs/modules.conf.xml", '<load module="mod_sofia"/>',
     '<load module="mod_sofia"/>\n    <load module="mod_sofia_typo"/>', "freeswitch/autoload_configs/modules.conf.xml",
     "mod_sofia_typo", "unknown module 'mod_sofia_typo'"),
    ("auth-calls off", "freeswitch/sip_profiles/external.xml", '<param name="auth-calls" value="true"/>',
     '<param name="auth-calls" value="false"/>', "freeswitch/sip_profiles/external.xml", '<profile name="external"',
     'auth-calls "true"'),
    ("auth-calls missing", "freeswitch/sip_profiles/external.xml", '<param name="auth-calls" value="true"/>', "",
     "freeswitch/sip_profiles/external.xml", '<profile name="external"', 'auth-calls "true"'),
    ("event socket without ACL", "freeswitch/autoload_configs/event_socket.conf.xml",
     '<param name="apply-inbound-acl" value="esl_clients"/>', "", "freeswitch/autoload_configs/event_socket.conf.xml",
     '<configuration name="event_socket.conf"', "no apply-inbound-acl"),
    ("no RTP timer", "freeswitch/sip_profiles/external.xml", '<param name="rtp-timer-name" value="soft"/>', "",
     "freeswitch/sip_profiles/external.xml", '<profile name="external"', "rtp-timer-name"),
    ("api-expansion missing", "freeswitch/autoload_configs/switch.conf.xml",
     '<param name="api-expansion" value="false"/>', "", "freeswitch/autoload_configs/switch.conf.xml",
     '<configuration name="switch.conf"', "api-expansion"),
]


@pytest.mark.parametrize("case", SECURITY, ids=[c[0] for c in SECURITY])
def test_missing_security_setting_is_reported_at_its_line(tree, case):
    _, relative, old, new, where, needle, message = case
    assert tree.check() == []
    tree.edit(relative, old, new)
    expected = f"{where}:{_line_of(tree, where, needle)}: "
    problems = tree.check()
    assert any(p.startswith(expected) and message in p for p in problems), problems


def test_external_profile_without_any_inbound_acl_is_reported(tree):
    for name in ("carriers", "pbx", "vb_accounts"):
        tree.edit("freeswitch/sip_profiles/external.xml", f'<param name="apply-inbound-acl" value="{name}"/>', "")
    where = "freeswitch/sip_profiles/external.xml:" + str(
        _line_of(tree, "freeswitch/sip_profiles/external.xml", '<profile name="external"'))
    assert any(p.startswith(where + ": ") and "no apply-inbound-acl" in p for p in tree.check())


def _platform_trunk(tree, name: str) -> None:
    tree.write(f"freeswitch/sip_profiles/external/{name}.xml",
               f'<include>\n  <gateway name="{name}">\n    <param name="proxy" value="sip.carrier.example"/>\n'
               '    <param name="username" value="voxbridge"/>\n    <param name="register" value="false"/>\n'
               '  </gateway>\n</include>\n')


def test_outbound_gateway_must_name_an_existing_gateway(tree):
    where = "dialplan/outbound.xml:" + str(_line_of(tree, "dialplan/outbound.xml",
                                                     'data="vb_gateway=$${vb_outbound_fallback_gateway}"'))
    problems = tree.check(OUTBOUND_GATEWAY="carrier_default")
    assert any(p.startswith(where + ": ") and "vb_gateway 'carrier_default' (OUTBOUND_GATEWAY" in p
               for p in problems), problems
    _platform_trunk(tree, "carrier_default")
    assert tree.check(OUTBOUND_GATEWAY="carrier_default") == []
    assert any("'carrier_dflt'" in p for p in tree.check(OUTBOUND_GATEWAY="carrier_dflt"))
    assert tree.check(OUTBOUND_GATEWAY="") == []   # no platform trunk: calls need an org gateway


def test_known_module_table_covers_what_the_image_builds():
    import re

    from fsconf.modules import KNOWN_MODULES
    built = re.findall(r"\b[a-z_]+/(mod_[a-z0-9_]+)", (REPO / "freeswitch/Dockerfile").read_text())
    assert built and set(built) <= KNOWN_MODULES
    assert "mod_sofia_typo" not in KNOWN_MODULES and "mod_audio_fork" in KNOWN_MODULES
