"""The dependency lock (bin/lock): every package pinned with hashes and in step with the top level."""
import importlib.machinery
import importlib.util
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FILES = ("requirements-build.txt", "requirements.txt", "requirements-dev.txt",
         "requirements-build.lock", "requirements.lock", "requirements-dev.lock")


def _load_lock_module():
    loader = importlib.machinery.SourceFileLoader("voxbridge_bin_lock", str(ROOT / "bin" / "lock"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


lock = _load_lock_module()


@pytest.fixture
def tree(tmp_path):
    for name in FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_locks_are_current_and_every_package_has_hashes():
    assert lock.problems(ROOT) == []
    for name in ("requirements-build.lock", "requirements.lock", "requirements-dev.lock"):
        entries = lock.locked(ROOT / name)
        assert entries and all(hashes >= 1 for _, hashes in entries.values()), name


def test_transitive_packages_are_locked_too():
    runtime = lock.locked(ROOT / "requirements.lock")
    top = lock.top_level(ROOT / "requirements.txt")
    # openai's and elevenlabs' HTTP stacks are not named in requirements.txt, and are pinned all the same
    assert {"httpx", "httpx2", "pydantic", "greenlet"} <= set(runtime) - set(top)


def test_a_package_added_to_requirements_but_not_to_the_lock_fails_the_check(tree):
    with open(tree / "requirements.txt", "a") as fh:
        fh.write("tabulate==0.9.0\n")
    found = lock.problems(tree)
    assert any("requirements.lock lacks tabulate==0.9.0" in line for line in found), found
    assert any("requirements-dev.lock lacks tabulate==0.9.0" in line for line in found), found


def test_a_changed_pin_an_unpinned_line_and_a_hashless_entry_fail_the_check(tree):
    text = (tree / "requirements.txt").read_text().replace("peewee==3.17.9", "peewee==3.17.8")
    (tree / "requirements.txt").write_text(text + "requests\n")
    dev = (tree / "requirements-dev.lock").read_text()
    start = dev.index("ruff==")
    end = dev.index("\n", dev.index("--hash", start))
    (tree / "requirements-dev.lock").write_text(dev[:start] + "ruff==0.17.6\n" + dev[end + 1:])
    found = lock.problems(tree)
    assert any("'requests' is not pinned" in line for line in found), found
    assert any("requirements-dev.lock: ruff has no hash" in line for line in found), found
    (tree / "requirements.txt").write_text(text)
    assert any("requirements.lock has peewee==3.17.9, requirements.txt asks 3.17.8" in line
               for line in lock.problems(tree))


def test_the_check_runs_as_bin_setup_runs_it():
    done = subprocess.run([sys.executable, str(ROOT / "bin" / "lock"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_this_environment_is_exactly_the_locked_set():
    assert lock.installed_problems(sys.executable, ROOT) == []


def test_bin_setup_installs_from_the_locks_with_hashes():
    setup = (ROOT / "bin" / "setup").read_text()
    assert "bin/lock --check" in setup and "bin/lock --installed" in setup and "pip check" in setup
    assert "--require-hashes" in setup and "-r requirements-dev.lock" in setup and "-r requirements-build.lock" in setup
