"""When the agent greets, and whether a greeting the callee talked over must be said again.

Most people answer the phone with "Hello?" before anything is played to them, and on a real outbound call that
word reaches the pipeline as the greeting starts. Greeting at once then has the callee barge into it before a
syllable was heard; the policy instead (per agent, `greeting_start`):
- "immediate": greet as the stream starts (inbound calls: the caller dialled and waits for us);
- "auto": greet once the callee's first utterance has ended, or after a short quiet (the callee who picks up
  and waits), whichever comes first - what human callers and other voice-agent platforms do on outbound calls;
- "after_caller": wait for the callee to speak first; after the re-prompt delay of quiet, greet anyway.
A greeting cut by barge-in before `min_heard_ms` of it played was not heard: it is owed again, and spoken after
the callee's turn in place of a reply (never silently lost, and the callee's "Hello?" is not an answer to
anything yet).
"""
from __future__ import annotations

GREETING_STARTS = ("auto", "immediate", "after_caller")


class GreetingGate:
    """Whether the greeting is still owed, and how much quiet makes it due."""

    def __init__(self, start: str, silence_s: float, fallback_s: float, min_heard_ms: float):
        if start not in GREETING_STARTS:
            raise ValueError(f"greeting_start must be one of {', '.join(GREETING_STARTS)}")
        self.owed = start != "immediate"
        self._silence_ms = silence_s * 1000.0
        self.wait_ms = fallback_s * 1000.0 if start == "after_caller" else self._silence_ms
        self.min_heard_ms = min_heard_ms

    def due(self, quiet_ms: float) -> bool:
        """True once the line has been quiet long enough to greet (the caller is not talking)."""
        return self.owed and quiet_ms >= self.wait_ms

    def spoken(self) -> None:
        self.owed = False

    def cut(self, heard_ms: float) -> bool:
        """The greeting was interrupted after heard_ms of it had played; True when it must be said again."""
        if heard_ms < self.min_heard_ms:
            self.owed, self.wait_ms = True, self._silence_ms
        return self.owed
