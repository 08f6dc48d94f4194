"""bin/pytest-parallel and tests/file_queue.py: every collected test runs in exactly one process, a
failure anywhere fails the run and shows its report, and a process that dies is noticed."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _suite(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-p no:cacheprovider"\n')
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    return tmp_path


def _run_processes(suite: pathlib.Path, queue: pathlib.Path, count: int) -> list[subprocess.CompletedProcess]:
    env = dict(os.environ, VOXBRIDGE_TEST_QUEUE=str(queue), PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-p", "tests.file_queue", "-q", "--tb=short",
                               "-o", "console_output_style=classic", str(suite)],
                              cwd=suite, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(count)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, out) for p, out in zip(procs, outputs, strict=True)]


def test_processes_split_the_files_and_run_every_test_once(tmp_path):
    files = {f"test_f{i}.py": "".join(f"def test_{j}():\n    print('RAN f{i}.{j}')\n" for j in range(3))
             for i in range(6)}
    (tmp_path / "suite").mkdir()
    suite = _suite(tmp_path / "suite", files)
    queue = tmp_path / "queue"
    queue.mkdir()
    results = _run_processes(suite, queue, 3)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stdout for r in results]
    reports = [json.loads(p.read_text()) for p in queue.glob("result-*.json")]
    assert len(reports) == 3
    assert sum(r["ran"] for r in reports) == 18 and {r["collected"] for r in reports} == {18}
    claimed_files = [name for r in reports for name in r["seconds"]]
    assert sorted(claimed_files) == sorted(files)  # each file in one process only
    assert len(list(queue.glob("*.claim"))) == 6


def test_a_failure_in_one_process_fails_the_whole_run(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    _suite(suite, {"test_ok.py": "def test_ok():\n    pass\n",
                   "test_bad.py": "def test_bad():\n    assert 1 + 1 == 3, 'arithmetic broke'\n"})
    queue = tmp_path / "queue"
    queue.mkdir()
    results = _run_processes(suite, queue, 2)
    failing = [r for r in results if r.returncode != 0]
    assert len(failing) == 1 and "arithmetic broke" in failing[0].stdout


def test_the_runner_reports_totals_and_fails_on_a_failing_process(tmp_path):
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("pytest_parallel", str(ROOT / "bin" / "pytest-parallel"))
    spec = importlib.util.spec_from_loader("pytest_parallel", loader)
    runner = importlib.util.module_from_spec(spec)
    loader.exec_module(runner)
    log = tmp_path / "p.log"
    log.write_text("....F\nFAILED x::y\n1 failed, 4 passed, 1 skipped in 2.31s\n")
    assert runner.summary_of(log) == "1 failed, 4 passed, 1 skipped"
    log.write_text("========= 3 passed, 2 warnings in 0.10s =========\n")
    assert runner.summary_of(log) == "3 passed, 2 warnings"
    log.write_text("Fatal Python error: Segmentation fault\n")
    assert "died" in runner.summary_of(log)
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "result-1.json").write_text(json.dumps({"collected": 10, "ran": 6, "files": 2, "seconds": {"a": 1}}))
    problems, _ = runner.check_coverage(queue, 2)
    assert "1 process(es) did not finish their queue" in problems
    assert "6 tests ran, 10 were collected" in problems


def test_exclusive_files_run_one_at_a_time_across_processes(tmp_path):
    import fcntl

    from tests.file_queue import EXCLUSIVE, FileQueue

    name = sorted(EXCLUSIVE)[0]
    with FileQueue(tmp_path).exclusive(name):
        # Another process's attempt (a separate open file description) finds the lock held...
        with open(tmp_path / "exclusive.lock", "w") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except BlockingIOError:
                held = True
        assert held
        with FileQueue(tmp_path).exclusive("tests/app/test_config.py"):  # ...an ordinary file does not wait
            pass
    with open(tmp_path / "exclusive.lock", "w") as other:  # ...and it is free again once the file is done
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
