"""Answer rules: what the far end does with a call, chosen by the destination number.

A rule matches the destination number with a regular expression (search, so "486$" means "ends in
486"). The first matching rule wins; without one the call answers at once.

JSON form (``--rules file``)::

    {"rules": [
      {"match": "486$", "outcome": "busy"},
      {"match": "408$", "outcome": "no_answer"},
      {"match": "^1555", "outcome": "answer", "after": 2, "hangup_after": 30, "audio": "hello.wav",
       "rtp": "suppress"}
    ]}
"""
from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    ANSWER = "answer"
    BUSY = "busy"  # USER_BUSY, SIP 486
    NO_ANSWER = "no_answer"  # rings until originate_timeout (or `after`), then NO_ANSWER
    REJECTED = "rejected"  # CALL_REJECTED, SIP 603
    UNALLOCATED = "unallocated"  # UNALLOCATED_NUMBER, SIP 404
    TEMPORARY_FAILURE = "temporary_failure"  # NORMAL_TEMPORARY_FAILURE, SIP 503


FAILURES = {
    Outcome.BUSY: ("USER_BUSY", 486),
    Outcome.NO_ANSWER: ("NO_ANSWER", 487),
    Outcome.REJECTED: ("CALL_REJECTED", 603),
    Outcome.UNALLOCATED: ("UNALLOCATED_NUMBER", 404),
    Outcome.TEMPORARY_FAILURE: ("NORMAL_TEMPORARY_FAILURE", 503),
}


@dataclass(frozen=True)
class Rule:
    match: str = ".*"
    outcome: Outcome = Outcome.ANSWER
    after: float = 0.0  # seconds of ringing before the outcome (answer or failure)
    hangup_after: float | None = None  # the far end hangs up this long after answer
    audio: str | None = None  # WAV the far end plays into the call; None is silence
    early_media: bool = False  # CHANNEL_PROGRESS_MEDIA instead of CHANNEL_PROGRESS while ringing
    # "continuous": the far end sends RTP all the time, silence included; "suppress": a carrier that suppresses
    # silence sends none while the far end is quiet, and mod_audio_fork then sends no frames (gaps of seconds).
    rtp: str = "continuous"
    # The far end's leg: "PCMU" (G.711 μ-law at 8 kHz, the common carrier codec) or "L16" (a wideband 16 kHz leg,
    # as G.722/Opus give: the offline recogniser's 16 kHz model mis-hears narrowband speech).
    codec: str = "PCMU"

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        re.compile(self.match)
        if self.rtp not in ("continuous", "suppress"):
            raise ValueError(f"rule {self.match!r}: rtp must be 'continuous' or 'suppress'")
        if self.codec not in ("PCMU", "L16"):
            raise ValueError(f"rule {self.match!r}: codec must be 'PCMU' or 'L16'")


@dataclass
class Rules:
    rules: list[Rule] = field(default_factory=list)
    default: Rule = field(default_factory=Rule)

    def pick(self, number: str) -> Rule:
        for rule in self.rules:
            if re.search(rule.match, number):
                return rule
        return self.default

    @classmethod
    def from_dict(cls, data: dict) -> Rules:
        rules = [Rule(**item) for item in data.get("rules", [])]
        default = Rule(**data["default"]) if "default" in data else Rule()
        return cls(rules, default)

    @classmethod
    def load(cls, path: str) -> Rules:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


def demo_rules() -> Rules:
    """The simulator's defaults for local runs: number suffixes pick the outcome."""
    return Rules([
        Rule(r"486$", Outcome.BUSY),
        Rule(r"487$|408$", Outcome.NO_ANSWER),
        Rule(r"603$", Outcome.REJECTED),
        Rule(r"404$", Outcome.UNALLOCATED),
        Rule(r"503$", Outcome.TEMPORARY_FAILURE),
    ])
