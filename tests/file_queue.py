"""A pytest plugin that lets several pytest processes share one suite, a test file at a time.

bin/test starts N pytest processes with ``-p tests.file_queue`` and VOXBRIDGE_TEST_QUEUE set to an empty
directory. Every process collects the whole suite, then claims files in one agreed order (slowest first,
from tests/durations.json) by creating ``<queue>/<index>.claim`` with O_EXCL: the first process to
create it runs that file, the others skip it. A file is the unit because module fixtures and the
simulator servers they start stay within a file.

Why not pytest-xdist: its workers run on execnet's main-thread-only model, which fights gevent's monkey
patching (LoopExit and lost greenlets). Plain processes that each run ``python -m gevent.monkey`` are
the same runtime the product uses.

Each process writes ``<queue>/result-<pid>.json`` (items collected and run, seconds per file) so the
runner can check that every collected test ran in exactly one process.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import time
from collections import OrderedDict
from collections.abc import Iterator

import pytest

QUEUE_ENV = "VOXBRIDGE_TEST_QUEUE"
# Files that run one at a time across the processes: those that hold a real-time conversation through
# pocketsphinx (a starved recognizer misses a turn) and the headless-Chromium ones (the heaviest CPU users).
# The others run beside them. On 2 cores a browser beside two real-time conversations starved them.
EXCLUSIVE = frozenset({"tests/telephony/test_demo_call.py", "tests/pipeline/test_replay_real_captures.py",
                       "tests/webcall/test_talk_browser.py", "tests/console/test_console_browser.py"})
EXCLUSIVE_POLL_S = 0.2
WEIGHTS = pathlib.Path(__file__).resolve().parent / "durations.json"
DEFAULT_WEIGHT_S = 1.0


def _weights() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(WEIGHTS.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


class FileQueue:
    """Claims whole test files from a directory shared with the other pytest processes."""

    def __init__(self, queue_dir: pathlib.Path) -> None:
        self.queue_dir = queue_dir
        self.groups: OrderedDict[str, list[pytest.Item]] = OrderedDict()
        self.order: list[str] = []
        self.position = 0
        self.seconds: dict[str, float] = {}
        self.ran = 0
        self.collected = 0

    def load(self, items: list[pytest.Item]) -> None:
        for item in items:
            self.groups.setdefault(_file_of(item), []).append(item)
        weights = _weights()
        # Slowest first, then by name: every process computes the same order.
        self.order = sorted(self.groups, key=lambda f: (-weights.get(f, DEFAULT_WEIGHT_S), f))
        self.collected = len(items)

    def claim(self) -> str | None:
        while self.position < len(self.order):
            index, self.position = self.position, self.position + 1
            try:
                os.close(os.open(self.queue_dir / f"{index}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            return self.order[index]
        return None

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Holds the queue's one exclusive lock while an EXCLUSIVE file runs (polled: never blocks the hub)."""
        if name not in EXCLUSIVE:
            yield
            return
        with open(self.queue_dir / "exclusive.lock", "w") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(EXCLUSIVE_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write_result(self) -> None:
        result = {"collected": self.collected, "ran": self.ran, "files": len(self.order), "seconds": self.seconds}
        path = self.queue_dir / f"result-{os.getpid()}.json"
        path.write_text(json.dumps(result))


def pytest_configure(config: pytest.Config) -> None:
    queue_dir = os.environ.get(QUEUE_ENV)
    if queue_dir:
        config.pluginmanager.register(FileQueuePlugin(FileQueue(pathlib.Path(queue_dir))), "voxbridge-file-queue")


class FileQueuePlugin:
    def __init__(self, queue: FileQueue) -> None:
        self.queue = queue

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        if session.config.option.collectonly:
            return True
        self.queue.load(session.items)
        current = self.queue.claim()
        while current is not None:
            current = self._run_file(session, current)
        self.queue.write_result()
        return True

    def _run_file(self, session: pytest.Session, name: str) -> str | None:
        """Runs one file's items; claims the next file before the last item so that session fixtures
        see a following item and are not torn down between files. Returns the next claimed file."""
        with self.queue.exclusive(name):
            return self._run_items(session, name)

    def _run_items(self, session: pytest.Session, name: str) -> str | None:
        items = self.queue.groups[name]
        started = time.monotonic()
        following = None
        for i, item in enumerate(items):
            if i + 1 < len(items):
                nextitem = items[i + 1]
            else:
                following = self.queue.claim()
                nextitem = self.queue.groups[following][0] if following is not None else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            self.queue.ran += 1
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
        self.queue.seconds[name] = round(time.monotonic() - started, 2)
        return following
