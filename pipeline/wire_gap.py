"""Silence on a quiet wire, for the session and the answering-machine gate alike.

mod_audio_fork sends one frame per RTP packet and nothing while the far end sends no RTP (a carrier's silence
suppression), yet the caller is silent all that time: wall time no frame covered is filled with digital silence,
or the endpointer never hears a turn end and the audio clock falls behind.

Measured from the last frame's arrival (each frame ends when it arrives), and only past `gap_ms`. Frames that
arrive late in a burst after this process stalled are no gap: the ticker skips a tick it woke late for
(LATE_TICK_S), and an arrival only tops up a gap the ticker has already begun to fill. Silence put in front of
frames that merely queued would cut the caller's words apart, and it retunes webrtcvad's noise model so that a
line's hum after it counts as voice.
"""
from __future__ import annotations

FRAME_MS = 20.0
WIRE_GAP_MS = 100  # no frame for this long: the wire is quiet
LATE_TICK_S = 0.05  # a tick this late woke from a stalled process, not a quiet wire


class WireGap:
    """The last arrival and the silence filled in since; times in ms on the owner's clock."""

    def __init__(self, gap_ms: float = WIRE_GAP_MS) -> None:
        self.gap_ms = gap_ms
        self.heard_at: float | None = None  # None until the audio is taken (frames queued before are a backlog)
        self.filled_ms = 0.0

    def arrived(self, now_ms: float) -> None:
        """Audio arrived (or is taken from now on): the next gap is measured from here."""
        self.heard_at, self.filled_ms = now_ms, 0.0

    def silence_due(self, now_ms: float, arriving_ms: float | None = None) -> int:
        """How many frames of silence are owed now. arriving_ms: the audio just received (its span is not
        silence); None from the ticker."""
        if self.heard_at is None:
            return 0
        since_ms = now_ms - (arriving_ms or 0.0) - self.heard_at
        topping_up = arriving_ms is None or self.filled_ms > 0
        if not topping_up or since_ms < self.gap_ms:
            return 0
        return int((since_ms - self.filled_ms) // FRAME_MS)

    def fill_one(self) -> float:
        """One frame of silence put in; returns when its audio ended (ms on the owner's clock)."""
        self.filled_ms += FRAME_MS
        return (self.heard_at or 0.0) + self.filled_ms


def woke_late(due_s: float, now_s: float) -> bool:
    """Whether a tick due at `due_s` woke from a stalled process (then skip it once: let the socket hand over
    what queued meanwhile before inferring any silence)."""
    return now_s - due_s > LATE_TICK_S
