"""The app's commands as an operator runs them: migrate, create-org, serve."""
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(args, env, timeout=60):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FREESWITCH_", "DATABASE_URL"))}
    return {**env, "DATABASE_URL": f"sqlite:///{tmp_path}/vb.db", **extra}


def test_migrate_is_idempotent(tmp_path):
    from models.migrations import STEPS

    env = _env(tmp_path)
    assert f"applied: {[s.version for s in STEPS]}" in run(["migrate"], env).stdout
    assert "applied: nothing" in run(["migrate"], env).stdout


def test_bad_configuration_refuses_to_start(tmp_path):
    result = run(["migrate"], _env(tmp_path, API_PORT="eighty"))
    assert result.returncode == 2 and "API_PORT" in result.stderr


def test_serve_answers_with_a_created_key_and_queues_a_call(tmp_path):
    env = _env(tmp_path, API_PORT="0")
    created = run(["create-org", "Acme", "--minutes", "5"], env)
    key = created.stdout.split("store it now): ")[1].split()[0]
    port_file = tmp_path / "out.txt"
    with open(port_file, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in port_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        url = port_file.read_text().split("listening on ")[1].split()[0]
        health = json.loads(urllib.request.urlopen(url + "/health", timeout=5).read())
        assert health["database"] == "ok" and health["telephony"] == "not_configured"

        def call(method, path, body=None):
            data = json.dumps(body).encode() if body else None
            request = urllib.request.Request(url + path, method=method, data=data,
                                             headers={"Authorization": f"Bearer {key}",
                                                      "Content-Type": "application/json"})
            return json.loads(urllib.request.urlopen(request, timeout=5).read())

        call("POST", "/v1/agents", {"name": "Welcome", "direction": "outbound"})
        queued = call("POST", "/v1/calls/outbound", {"to": "+14155550123"})
        assert queued["status"] == "queued"
        time.sleep(1.5)  # a few dispatcher polls: with no telephony the call must stay queued
        assert call("GET", f"/v1/calls/{queued['id']}")["status"] == "queued"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "Telephony worker not configured — call remains queued" in port_file.read_text()


def test_serve_with_two_api_workers_on_postgresql(postgres_url, tmp_path):
    """Both processes answer on the shared socket; the parent stops its worker on SIGTERM."""
    env = {**_env(tmp_path, API_PORT="0", API_WORKERS="2"), "DATABASE_URL": postgres_url}
    out_path = tmp_path / "out.txt"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in out_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        url = out_path.read_text().split("listening on ")[1].split()[0]
        for _ in range(20):
            assert json.loads(urllib.request.urlopen(url + "/health", timeout=5).read())["database"] == "ok"
        workers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "app.py serve"], capture_output=True,
                                 text=True).stdout.split()  # API workers, not the offline recognizer's pool
        assert len(workers) == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True).returncode == 1


def test_serve_refuses_more_connections_than_postgresql_gives(tmp_path):
    env = {**_env(tmp_path, API_WORKERS="4"), "DATABASE_URL": "postgresql://voxbridge@127.0.0.1:1/voxbridge"}
    for setting in ("DATABASE_POOL_SIZE", "DATABASE_MAX_CONNECTIONS"):  # the defaults (bin/test lowers the pool)
        env.pop(setting, None)
    result = run(["serve"], env)
    assert result.returncode == 2
    assert "API_WORKERS=4 processes x DATABASE_POOL_SIZE=40 = 160 connections" in result.stderr
    assert "DATABASE_MAX_CONNECTIONS=100" in result.stderr


def test_check_config_passes_on_the_shipped_tree_and_names_problems(tmp_path):
    import shutil

    env = _env(tmp_path)
    ok = run(["check-config"], env)
    assert ok.returncode == 0, ok.stdout
    assert "outbound rules" in ok.stdout and "transfer-refer" in ok.stdout   # which rules apply on which path
    broken = tmp_path / "dialplan"
    shutil.copytree(ROOT / "dialplan", broken)
    public = broken / "public.xml"
    public.write_text(public.read_text().replace('expression="', 'expression="(', 1))
    bad = run(["check-config", "--dialplan", str(broken)], env)
    assert bad.returncode == 1 and "public.xml:" in bad.stdout


def test_check_config_reads_gateways_from_the_conf_dir_it_is_given(tmp_path):
    """Regression: --conf DIR read the generated folders (gateways) from FREESWITCH_CONF_DIR, so a gateway
    defined in DIR was reported missing."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "freeswitch", conf)
    (conf / "sip_profiles" / "external" / "carrier_x.xml").write_text(
        '<include>\n  <gateway name="carrier_x">\n    <param name="proxy" value="198.51.100.7"/>\n'
        '    <param name="username" value="voxbridge"/>\n    <param name="register" value="false"/>\n'
        '  </gateway>\n</include>\n')
    env = _env(tmp_path, OUTBOUND_GATEWAY="carrier_x", FREESWITCH_CONF_DIR=str(ROOT / "freeswitch"))
    result = run(["check-config", "--conf", str(conf)], env)
    assert result.returncode == 0, result.stdout
    missing = run(["check-config"], env)   # the shipped tree has no carrier_x: still found missing there
    assert missing.returncode == 1 and "'carrier_x'" in missing.stdout


@pytest.mark.parametrize("url", ["sqlite://var/x.db", "sqlite:", "sqlite:///"])
def test_a_sqlite_url_that_names_no_file_is_a_config_error(tmp_path, url):
    result = run(["migrate"], {**_env(tmp_path), "DATABASE_URL": url})
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "three slashes" in result.stderr
    assert "Traceback" not in result.stderr


def test_open_database_refuses_a_two_slash_sqlite_url():
    from config import ConfigError
    from models.base import sqlite_path

    with pytest.raises(ConfigError, match="DATABASE_URL"):
        sqlite_path("sqlite://var/x.db")
    assert sqlite_path("sqlite:///var/x.db") == "var/x.db"
    assert sqlite_path("sqlite:////srv/x.db") == "/srv/x.db"


def _key_of(stdout):
    return stdout.split("store it now): ")[1].split()[0]


def _org_row(env, name):
    """Read the organization back from the command's database, as another process would."""
    from models import Organization, open_database

    db = open_database(env["DATABASE_URL"])
    try:
        return Organization.get(Organization.name == name)
    finally:
        db.close()


@pytest.mark.parametrize(("args", "flag"), [(["--caller-id", "12"], "--caller-id"),
                                            (["--caller-id", "+1 415 555 0123 ext. 5"], "--caller-id"),
                                            (["--webhook-url", "ftp://example.com/x"], "--webhook-url"),
                                            (["--webhook-url", "https://user:pw@example.com/"], "--webhook-url")])
def test_create_org_refuses_a_bad_caller_id_or_webhook_url_and_creates_nothing(tmp_path, args, flag):
    env = _env(tmp_path)
    result = run(["create-org", "Acme", *args], env)
    assert result.returncode == 2 and flag in result.stderr and "nothing was created" in result.stderr
    assert "API key" not in result.stdout
    run(["migrate"], env)
    from models import Organization, open_database

    db = open_database(env["DATABASE_URL"])
    try:
        assert Organization.select().count() == 0
    finally:
        db.close()


def test_create_org_stores_the_caller_id_in_e164(tmp_path):
    env = _env(tmp_path)
    result = run(["create-org", "Acme", "--caller-id", "(415) 555-0123", "--webhook-url",
                  "https://hooks.example.com/vb"], env)
    assert result.returncode == 0
    org = _org_row(env, "Acme")
    assert (org.default_caller_id, org.webhook_url) == ("+14155550123", "https://hooks.example.com/vb")


def test_issue_key_and_revoke_key_by_prefix_within_the_organization(tmp_path):
    from models import ApiKey, open_database

    env = _env(tmp_path)
    first = _key_of(run(["create-org", "Acme"], env).stdout)
    run(["create-org", "Other"], env)
    issued = run(["issue-key", "Acme", "--name", "ci"], env)
    assert issued.returncode == 0
    second = _key_of(issued.stdout)
    assert second != first and second not in run(["issue-key", "Acme"], env).stdout
    prefix = second.split("_")[2]
    wrong_org = run(["revoke-key", prefix, "--org", "Other"], env)
    assert wrong_org.returncode == 2 and "has no key with prefix" in wrong_org.stderr
    assert run(["revoke-key", "not-a-prefix", "--org", "Acme"], env).returncode == 2
    revoked = run(["revoke-key", f"vb_live_{prefix}", "--org", "Acme"], env)
    assert revoked.returncode == 0 and f"revoked key {prefix} (ci)" in revoked.stdout
    assert second not in revoked.stdout + revoked.stderr
    db = open_database(env["DATABASE_URL"])
    try:
        assert ApiKey.authenticate(second) is None
        assert ApiKey.authenticate(first) is not None
    finally:
        db.close()
    missing = run(["issue-key", "Nobody"], env)
    assert missing.returncode == 2 and "no organization" in missing.stderr


def test_settings_are_read_from_the_working_directorys_env_file_and_the_environment_wins(tmp_path):
    env = {k: v for k, v in _env(tmp_path).items() if k != "API_PORT"}
    (tmp_path / ".env").write_text("# operator settings\nAPI_PORT=eighty\nLOG_LEVEL=WARNING\n")

    def migrate(**extra):
        return subprocess.run([sys.executable, str(ROOT / "app.py"), "migrate"], cwd=tmp_path, env={**env, **extra},
                              capture_output=True, text=True, timeout=60)

    from_file = migrate()
    assert from_file.returncode == 2 and "API_PORT" in from_file.stderr and "'eighty'" in from_file.stderr
    overridden = migrate(API_PORT="8081")
    assert overridden.returncode == 0 and "schema up to date" in overridden.stdout


def test_serve_refuses_to_start_when_an_agents_provider_cannot_be_built(tmp_path):
    """An agent saved while OPENAI_API_KEY was set; the key is then removed from the deployment."""
    env = _env(tmp_path, API_PORT="0", OPENAI_API_KEY="", OPENAI_BASE_URL="")
    assert run(["migrate"], env).returncode == 0
    seed = ("from models import Agent, Organization, open_database\n"
            f"open_database('sqlite:///{tmp_path}/vb.db')\n"
            "org = Organization.create(id='org-1', name='Acme')\n"
            "Agent.create(id='agent-1', organization=org, name='Cloud', direction='outbound',"
            " llm={'provider': 'openai', 'model': 'm'})\n")
    assert subprocess.run([sys.executable, "-c", seed], cwd=ROOT, env=env, timeout=60).returncode == 0
    result = run(["serve"], env)
    assert result.returncode == 2
    assert "agent agent-1 ('Cloud', organization org-1): llm.provider openai" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr and "listening" not in result.stdout
