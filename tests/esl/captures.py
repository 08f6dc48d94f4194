"""Helpers to load the real FreeSWITCH captures (tests/data/freeswitch/captures/*.jsonl)."""
from __future__ import annotations

import json
import pathlib

# Byte-exact captures from a real FreeSWITCH 1.10.12 + mod_audio_fork, kept as test data in the project
# (tests/data/freeswitch/README.md says where they come from): a clone needs nothing beside it.
CAPTURES = pathlib.Path(__file__).resolve().parents[1] / "data" / "freeswitch" / "captures"


def rows(name: str) -> list[dict]:
    with open(CAPTURES / f"{name}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def s2c(name: str) -> list[str]:
    return [r["data"] for r in rows(name) if r["dir"] == "s2c"]


def c2s(name: str) -> list[str]:
    return [r["data"] for r in rows(name) if r["dir"] == "c2s"]


def all_names() -> list[str]:
    """The ESL-socket captures (rows carry "dir"); the audio-fork speech captures are WebSocket
    recordings in another format (t/type/data) and have their own loader."""
    return sorted(p.stem for p in CAPTURES.glob("*.jsonl") if "dir" in rows(p.stem)[0])
