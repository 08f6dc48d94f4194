"""The answering-machine gate: stands in front of an outbound call's session until the callee is known.

While the detector (pipeline/amd.py) decides, the agent says nothing: it must not talk over a greeting.
Then, by the agent's `machine_detection` policy:
- a person, or no decision by the timeout: the real session starts and the caller is greeted at once
  (they have said "Hello?" and are waiting);
- a machine, "hangup": the call ends without the agent speaking;
- a machine, "leave_message": the message is spoken once, after the beep (or after the greeting has been
  quiet for a while, or at the latest after `message_wait_ms`), then the call ends;
- a machine, "continue": the session starts once the greeting is over, told it reached a machine.
With an STT (`stt`, the call's own recognizer), the callee's words are heard during detection too
(pipeline/amd_words.py): a greeting's phrase decides "machine" at once; for a person the stream and what
it heard go on into the session.
The gate is a SessionLike (pipeline/server.py), so the audio fork server drives it like a session.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gevent

from pipeline.amd import HUMAN, MACHINE, UNKNOWN, AmdConfig, AmdDecision, MachineDetector, tone_frequency
from pipeline.amd_words import DetectionListener
from pipeline.audio import Rechunker, frame_bytes
from pipeline.clock import REAL_CLOCK, Clock
from pipeline.frames import EndCall, Frame, TTSAudio
from pipeline.interfaces import STT
from pipeline.server import SessionLike
from pipeline.vad import WebRtcVad
from pipeline.wire_gap import WireGap, woke_late

log = logging.getLogger(__name__)

MODES = ("off", "hangup", "leave_message", "continue")
FRAME_MS = 20


@dataclass(frozen=True)
class MachinePolicy:
    mode: str = "off"
    message: str | None = None  # leave_message: what to say (variables already filled in)
    timeout_ms: int = 5000  # no decision by then: treated as a person
    message_wait_ms: int = 20000  # the longest wait for a greeting's end before speaking anyway
    greeting_end_silence_ms: int = 1500  # no beep heard: the greeting is over after this much quiet

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"machine_detection mode must be one of {', '.join(MODES)}")
        if self.mode == "leave_message" and not (self.message or "").strip():
            raise ValueError("machine_detection leave_message needs a message")


StartSession = Callable[[str], SessionLike]  # answered_by -> a started-later session told what answered


class MachineDetectionGate:
    """Drives detection, then hands the call to the session or leaves the message. One per call."""

    def __init__(self, policy: MachinePolicy, sample_rate: int, start_session: StartSession,
                 send: Callable[[Frame], None], on_decision: Callable[[AmdDecision], None],
                 synthesize: Callable[[str, int], Iterable[bytes]] | None = None, clock: Clock = REAL_CLOCK,
                 detector: MachineDetector | None = None, end_call: Callable[[str], None] | None = None,
                 on_message: Callable[[str, float], None] | None = None, stt: STT | None = None):
        self.policy, self.sample_rate = policy, sample_rate
        self._start_session, self._send, self._on_decision = start_session, send, on_decision
        self._synthesize, self.clock = synthesize, clock
        self._end_call, self._on_message = end_call, on_message  # hang up (reason); the message said (text, ms)
        self.detector = detector or MachineDetector(AmdConfig(timeout_ms=policy.timeout_ms), WebRtcVad(2))
        self._chunks = Rechunker(sample_rate, FRAME_MS)
        self._vad = WebRtcVad(2)
        self.session: SessionLike | None = None
        self.decision: AmdDecision | None = None
        self.phase = "detecting"  # -> decided -> session | awaiting_greeting_end | leaving_message | ended
        self._heard_ms = 0  # audio pushed, in ms
        self._wire = WireGap()  # the last frame's arrival and the silence filled in since (ms of self.clock)
        self._waited_ms = 0  # awaiting_greeting_end: audio since the decision
        self._quiet_ms = 0
        self._tone_ms = 0
        self._ticker: gevent.Greenlet | None = None
        self._speaker: gevent.Greenlet | None = None
        self._ended = False
        self.listener = DetectionListener(stt, sample_rate) if stt is not None else None

    @property
    def ended(self) -> bool:
        return self.session.ended if self.session is not None else self._ended

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """The conversation's stop under way elsewhere has recorded its cut-off turn (Session.wait_stopped)."""
        return self.session.wait_stopped(timeout) if self.session is not None else True

    def start(self) -> None:
        if self.listener is not None:
            self.listener.open()  # before the clock starts: frames queued meanwhile are a backlog, not a gap
            if self._ended:  # the call ended while the recognizer was starting: it must not outlive the call
                self.listener.close()
                return
        self._wire.arrived(self.clock.now() * 1000)
        self._ticker = gevent.spawn(self._tick_forever)

    def push_audio(self, pcm: bytes) -> None:
        if self.session is not None:
            self.session.push_audio(pcm)
            return
        frames = self._chunks.push(pcm)
        self._fill_wire_gap(arriving_ms=FRAME_MS * len(frames))
        for frame in frames:
            if self.session is not None:  # decided on an earlier frame of this message: the rest is the call's
                self.session.push_audio(frame)
            else:
                self._frame(frame)

    def push_dtmf(self, digit: str) -> None:
        if self.session is not None:
            self.session.push_dtmf(digit)
        elif self.phase == "detecting":  # only a person presses keys
            self._decided(AmdDecision(HUMAN, self._heard_ms, f"pressed {digit}"))

    def hear(self, transcript: str) -> None:
        """A transcript of the callee's words so far (when a recognizer runs during detection)."""
        if self.phase == "detecting" and (decision := self.detector.hear(transcript)):
            self._decided(decision)

    def stop(self, reason: str = "stopped") -> None:
        self._ended = True
        if self.listener is not None:
            self.listener.close()  # a no-op once handed over: the session closes it then
        for greenlet in (self._ticker, self._speaker):
            if greenlet is not None:
                greenlet.kill(block=False)
        if self.session is not None:
            self.session.stop(reason)

    def tick(self) -> None:
        """Wall time without frames is silence on the wire (a carrier suppressing it): count it as such."""
        if self.session is None and not self._ended:
            self._fill_wire_gap()

    def _fill_wire_gap(self, arriving_ms: float | None = None) -> None:
        """Silence for the wall time no frame covered, by the session's rule (pipeline/wire_gap.py): zeros put in
        front of frames that merely queued would retune webrtcvad so a line's hum after them counts as voice (a
        person's "Speaking." classed a machine, seen under load). arriving_ms: the audio just received; None
        from the ticker."""
        now = self.clock.now() * 1000
        due = self._wire.silence_due(now, arriving_ms)
        silence = bytes(frame_bytes(self.sample_rate, FRAME_MS)) if due else b""  # made only for a gap
        for _ in range(due):
            if self.session is not None or self._ended:
                break
            self._wire.fill_one()
            self._frame(silence)
        if arriving_ms is not None:
            self._wire.arrived(now)

    def _tick_forever(self) -> None:
        skipped = False
        while not self._ended and self.session is None:
            due = self.clock.now() + 0.1
            self.clock.sleep(0.1)
            if woke_late(due, self.clock.now()) and not skipped:
                skipped = True  # the process stalled, not the wire: let the socket hand over what queued first
                continue
            skipped = False
            self.tick()

    def _frame(self, frame: bytes) -> None:
        self._heard_ms += FRAME_MS
        if self.phase == "detecting":
            if self.listener is not None:
                self.listener.send(frame)
            if decision := self.detector.push(frame, self.sample_rate):
                self._decided(decision)
            elif self.listener is not None and (words := self.listener.take_words()) is not None:
                self.hear(words)  # the words that came in meanwhile, decided here like every other decision
        elif self.phase == "awaiting_greeting_end":
            self._await_greeting_end(frame)

    def _decided(self, decision: AmdDecision) -> None:
        # Once only: recording the decision yields (a database write), and meanwhile the socket's next frame or
        # the ticker's silence reaches _frame, whose detector repeats its decision; a second pass would start a
        # second session (two greetings on one call).
        if self.phase != "detecting":
            return
        self.phase = "decided"
        self.decision = decision
        log.info("answered by %s after %d ms: %s", decision.answered_by, decision.at_ms, decision.reason)
        self._on_decision(decision)
        if decision.answered_by in (HUMAN, UNKNOWN):
            self._hand_over(decision.answered_by)
            return
        if self.listener is not None:
            self.listener.close()  # a machine's words are of no more use (a "continue" session opens its own)
        if self.policy.mode == "hangup":
            self._end("answering machine")
        else:
            self.phase = "awaiting_greeting_end"

    def _await_greeting_end(self, frame: bytes) -> None:
        """After a machine: wait for the beep to finish, or for the greeting to go quiet."""
        self._waited_ms += FRAME_MS
        if tone_frequency(frame, self.sample_rate, self.detector.config) is not None:
            self._tone_ms += FRAME_MS
            return
        beep_over = self._tone_ms >= self.detector.config.beep_ms
        self._tone_ms = 0
        self._quiet_ms = 0 if self._vad.is_speech(frame, self.sample_rate) else self._quiet_ms + FRAME_MS
        if beep_over or self._quiet_ms >= self.policy.greeting_end_silence_ms \
                or self._waited_ms >= self.policy.message_wait_ms:
            why = "beep" if beep_over else "quiet" if self._quiet_ms >= self.policy.greeting_end_silence_ms else "wait"
            log.info("greeting over (%s) after %d ms", why, self._waited_ms)
            if self.policy.mode == "leave_message":
                self.phase = "leaving_message"
                self._speaker = gevent.spawn(self._leave_message)
            else:
                self._hand_over(MACHINE)

    def _hand_over(self, answered_by: str) -> None:
        self.phase = "session"
        self.session = self._start_session(answered_by)
        if self.listener is not None:  # after a machine it is closed already ("continue" opens its own)
            self.listener.hand_over(self.session)  # a person's "Hello?" and the recognizer go on into the call
        self.session.start()

    def _leave_message(self) -> None:
        text = self.policy.message or ""
        played_ms = 0.0
        if self._synthesize is not None:
            first = True
            for pcm in self._synthesize(text, self.sample_rate):
                frame = TTSAudio(pcm, self.sample_rate, text if first else "")
                first = False
                self._send(frame)
                played_ms += frame.duration_ms
        if self._on_message is not None:
            self._on_message(text, played_ms)
        # Let it play out before the line drops: the switch starts a file late (its lead frames and the
        # Event Socket round trip), and the hang-up must not cut the message's last words.
        self.clock.sleep(played_ms / 1000 + 0.8)
        self._end("voicemail message left")

    def _end(self, reason: str) -> None:
        self.phase = "ended"
        self._ended = True
        if self._end_call is not None:
            try:
                self._end_call(reason)
            except Exception:
                log.exception("end_call callback failed")
        self._send(EndCall(reason))
