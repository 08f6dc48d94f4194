"""Smart end of turn: how much silence ends the caller's turn, from what the STT heard so far and the VAD.

A fixed silence is either too slow after "Yes." or too quick after "I'd like to book a table for, um". The
evidence at hand while the caller is quiet:

- the interim transcript (what the recognizer heard so far) and whether it covers the caller's last voiced frame
  (a transcript that stops short of it is behind, and says nothing about how the turn ends);
- its last word: a conjunction, a filler ("um", "uh"), an article or a preposition leaves the phrase open;
  sentence-final punctuation (providers that punctuate interims) or a complete-sounding ending closes it;
- the VAD's voiced length: a very short voiced burst is usually a filler or a false start.

The policy maps that to one of three silences (per agent, SessionConfig): end_silence_short_ms after a
complete-sounding utterance, end_silence_long_ms after an open one, end_silence_ms when there is no evidence
(no interim yet, or it lags): today's fixed rule, so a recognizer without interims behaves as before.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Words after which a person usually goes on: conjunctions, fillers, articles, possessives, prepositions that
# want an object. Not verbs or pronouns ("Yes I can", "That's what I want", "So do I" are complete).
OPEN_ENDINGS = frozenset("""
and or but so because cause although though if unless until while whereas than
um umm uh uhh er erm hmm mm ah
the a an my your our their its
to of for with from at by about into onto between
i'm it's let's we're you're they're
""".split())
# "so" closes these ("I think so").
CLOSED_SO = frozenset("think hope guess believe suppose said told do did".split())
# Fillers that say nothing on their own: an utterance of only these is not a turn the agent answers yet.
FILLERS = frozenset("um umm uh uhh er erm hmm mm ah".split())
_WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class TurnEndSettings:
    """The three silences (ms) and what counts as a short burst of voice."""

    default_ms: int = 600
    short_ms: int = 300
    long_ms: int = 1200
    short_voiced_ms: int = 300  # a voiced burst this short (alone) is a filler or a false start: no short end
    enabled: bool = True


@dataclass(frozen=True)
class Evidence:
    """What is known while the caller is quiet."""

    text: str  # the interim (or final) transcript of the open turn so far
    covers_end: bool  # that transcript reaches the caller's last voiced frame
    voiced_ms: float  # how long the VAD heard voice in this utterance


def classify(text: str) -> str:
    """ "complete", "open" or "unknown" for the words heard so far."""
    stripped = text.strip()
    if not stripped:
        return "unknown"
    if stripped[-1] in ",;:-\u2014" or stripped.endswith("..."):
        return "open"  # a punctuating recognizer heard the phrase trail off
    words = _WORD.findall(stripped.lower())
    if not words:
        return "unknown"
    if words[-1] == "so" and len(words) > 1 and words[-2] in CLOSED_SO:
        return "complete"
    if words[-1] in OPEN_ENDINGS:
        return "open"
    if all(word in FILLERS for word in words):
        return "open"
    return "complete"


def silence_needed(settings: TurnEndSettings, evidence: Evidence | None) -> int:
    """Milliseconds of silence that end the turn, given the evidence (None: none yet)."""
    if not settings.enabled or evidence is None:
        return settings.default_ms
    kind = classify(evidence.text)
    if kind == "open":
        return max(settings.long_ms, settings.default_ms)  # an open phrase waits longer whether or not it lags
    if kind == "unknown" or not evidence.covers_end:
        return settings.default_ms
    if evidence.voiced_ms < settings.short_voiced_ms:
        return settings.default_ms
    return min(settings.short_ms, settings.default_ms)


def ends_open(settings: TurnEndSettings, text: str) -> bool:
    """True when the words end an open phrase: the STT's own end-of-utterance is not taken as the turn's end."""
    return settings.enabled and classify(text) == "open"
