"""serve refuses to start while an active agent has a voice its TTS cannot speak (issue 12, #8): such an agent,
saved before voices were checked, would otherwise have every call answered and failed."""
import subprocess
import sys

from tests.app.test_commands import ROOT, _env, run


def test_serve_refuses_to_start_when_an_agents_voice_cannot_be_spoken(tmp_path):
    env = _env(tmp_path, API_PORT="0")
    assert run(["migrate"], env).returncode == 0
    seed = ("from models import Agent, Organization, open_database\n"
            f"open_database('sqlite:///{tmp_path}/vb.db')\n"
            "org = Organization.create(id='org-1', name='Acme')\n"
            "Agent.create(id='agent-1', organization=org, name='Old', direction='inbound', voice='zz')\n")
    assert subprocess.run([sys.executable, "-c", seed], cwd=ROOT, env=env, timeout=60).returncode == 0
    result = run(["serve"], env)
    assert result.returncode == 2 and "listening" not in result.stdout
    assert "agent agent-1 ('Old', organization org-1): voice 'zz' is not a voice espeak can use" in result.stderr
