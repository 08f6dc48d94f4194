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
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True).returncode == 1


def test_check_config_passes_on_the_shipped_tree_and_names_problems(tmp_path):
    import shutil

    env = _env(tmp_path)
    ok = run(["check-config"], env)
    assert ok.returncode == 0, ok.stdout
    broken = tmp_path / "dialplan"
    shutil.copytree(ROOT / "dialplan", broken)
    public = broken / "public.xml"
    public.write_text(public.read_text().replace('expression="', 'expression="(', 1))
    bad = run(["check-config", "--dialplan", str(broken)], env)
    assert bad.returncode == 1 and "public.xml:" in bad.stdout


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
