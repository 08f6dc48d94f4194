"""`app.py create-org --email` makes the first console user: with --password it can sign in at once, without
it a one-time link is printed; bad input creates nothing."""
from tests.app.test_commands import _env, run


def test_create_org_with_email_prints_a_one_time_link(tmp_path):
    env = _env(tmp_path, API_PUBLIC_URL="https://voice.example.com")
    created = run(["create-org", "Acme", "--email", "Ana@Acme.test"], env)
    assert created.returncode == 0, created.stderr
    assert "console user ana@acme.test: one-time sign-in link" in created.stdout
    link = [line.strip() for line in created.stdout.splitlines() if "/console/sign-in/link/" in line][0]
    assert link.startswith("https://voice.example.com/console/sign-in/link/")
    taken = run(["add-user", "Acme", "--email", "ana@acme.test"], env)
    assert taken.returncode == 2 and "already exists" in taken.stderr


def test_create_org_with_a_password_and_add_user(tmp_path):
    env = _env(tmp_path)
    created = run(["create-org", "Acme", "--email", "ana@acme.test", "--password", "a long password"], env)
    assert created.returncode == 0, created.stderr
    assert "sign in at http://127.0.0.1:8080/console/sign-in" in created.stdout
    assert "a long password" not in created.stdout
    added = run(["add-user", "acme", "--email", "bo@acme.test", "--password", "another long one"], env)
    assert added.returncode == 0 and "bo@acme.test" in added.stdout


def test_bad_user_arguments_create_nothing(tmp_path):
    env = _env(tmp_path)
    short = run(["create-org", "Acme", "--email", "ana@acme.test", "--password", "short"], env)
    assert short.returncode == 2 and "at least 10 characters" in short.stderr and "nothing was created" in short.stderr
    bad = run(["create-org", "Acme", "--email", "not-an-email"], env)
    assert bad.returncode == 2 and "not an email address" in bad.stderr
    assert "Acme" not in run(["list-orgs"], env).stdout
