"""Copies of the shipped FreeSWITCH tree for tests that break or extend it."""
import pathlib
import shutil
import uuid

import pytest

from fsconf.check import check_config
from fsconf.dialplan import Dialplan

REPO = pathlib.Path(__file__).resolve().parents[2]
CONF = REPO / "freeswitch"
DIALPLAN = REPO / "dialplan"
SOCKET = "127.0.0.1:8084"
ENV = {"VOXBRIDGE_SOCKET_ADDRESS": SOCKET, "OUTBOUND_GATEWAY": "carrier_default"}
# check-config sees the default deployment: no platform trunk (OUTBOUND_GATEWAY empty)
CHECK_ENV = {"VOXBRIDGE_SOCKET_ADDRESS": SOCKET, "OUTBOUND_GATEWAY": ""}


class Tree:
    """A writable copy: conf/ (freeswitch) and dialplan/ side by side, like the repository."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base = base
        self.conf = base / "freeswitch"
        self.dialplan = base / "dialplan"
        shutil.copytree(CONF, self.conf, symlinks=True)
        shutil.copytree(DIALPLAN, self.dialplan)

    def path(self, relative: str) -> pathlib.Path:
        return self.base / relative

    def edit(self, relative: str, old: str, new: str) -> None:
        target = self.path(relative)
        text = target.read_text()
        assert old in text, f"{old!r} not in {relative}"
        target.write_text(text.replace(old, new, 1))

    def write(self, relative: str, text: str) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def check(self, socket: str = SOCKET, **env: str) -> list[str]:
        return [str(p) for p in check_config(self.conf, self.dialplan, socket, env={**CHECK_ENV, **env})]

    def dialplan_model(self) -> Dialplan:
        return load_dialplan(self.conf, self.dialplan)


def load_dialplan(conf: pathlib.Path = CONF, dialplan: pathlib.Path = DIALPLAN) -> Dialplan:
    return Dialplan.load(conf, dialplan, env=dict(ENV))


@pytest.fixture
def tree(tmp_path) -> Tree:
    return Tree(tmp_path)


@pytest.fixture(scope="session")
def dialplan() -> Dialplan:
    return load_dialplan()


@pytest.fixture
def account_id() -> str:
    return str(uuid.UUID("0123456789abcdef0123456789abcdef"))
