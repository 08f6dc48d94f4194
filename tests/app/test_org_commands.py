"""Organization names are unique: create-org refuses a taken name, issue-key finds one by name, list-orgs."""
from tests.app.test_commands import _env, run


def _key_of(stdout: str) -> str:
    return stdout.split("store it now): ")[1].split()[0]


def test_create_org_refuses_a_name_taken_in_another_case_and_issue_key_finds_it(tmp_path):
    env = _env(tmp_path)
    first = run(["create-org", "Acme"], env)
    assert first.returncode == 0
    again = run(["create-org", "  ACME "], env)
    assert again.returncode == 2 and "already exists" in again.stderr and "nothing was created" in again.stderr
    assert "API key" not in again.stdout
    issued = run(["issue-key", "acme", "--name", "ci"], env)
    assert issued.returncode == 0 and "(Acme)" in issued.stdout and _key_of(issued.stdout).startswith("vb_live_")
    listed = run(["list-orgs"], env)
    assert listed.returncode == 0
    rows = [line for line in listed.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 1 and rows[0].endswith("  Acme") and "0/1000" in rows[0]
    assert rows[0].split()[-2] == "2"  # two live keys: create-org's and issue-key's
    assert "whsec_" not in listed.stdout and "vb_live_" not in listed.stdout
