"""The per-call conversation: caller audio in, turns out, the agent's voice back, with barge-in and fallbacks.

Data flows one way: PCM -> Rechunker -> VADProcessor -> Endpointer (+ STT) -> UserTurn -> LLM (streaming) ->
clauses -> TTS -> TTSAudio frames handed to `send` (the WebSocket connection). Control frames (Interrupt,
EndCall, Transfer) go the same way. Caller audio is processed inline in push_audio() so barge-in reacts on the
very frame that confirms speech; the reply (LLM + TTS) runs in its own greenlet that barge-in can kill.

The session is split by job, each a mixin of Session:
  recognition  pipeline/caller_input.py (audio and keys in, speech events, STT results, caller turns), with the
               smart end of turn (pipeline/turn_end.py) and early generation (pipeline/speculation.py);
  generation   pipeline/generation.py (LLM, TTS, playback, the agent's tools);
  activity     pipeline/activity.py (barge-in, dead air, the tick, re-prompts, limits, hang-up, transfer).
What a session is told is pipeline/session_config.py; when it greets is pipeline/greeting.py.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import gevent
import gevent.event
import gevent.greenlet
import gevent.lock

from observability.context import spawn
from pipeline.activity import FAILURES, Activity, DeadAir
from pipeline.audio import Rechunker
from pipeline.caller_input import CallerInput
from pipeline.clock import REAL_CLOCK, Clock
from pipeline.frames import Frame, TurnRecord
from pipeline.generation import AgentTurn, Generation
from pipeline.greeting import GreetingGate
from pipeline.interfaces import LLM, STT, TTS, ProviderError, Turn
from pipeline.session_config import DESTINATION, SessionCallbacks, SessionConfig
from pipeline.speculation import Speculation
from pipeline.tools.runner import ToolUse
from pipeline.turn_end import TurnEndSettings
from pipeline.vad import Endpointer, EndpointerConfig, VADProcessor, VoiceDetector, WebRtcVad
from pipeline.wire_gap import WireGap

__all__ = ["DESTINATION", "FAILURES", "DeadAir", "Session", "SessionCallbacks", "SessionConfig"]

log = logging.getLogger(__name__)


class Session(Generation, Activity, ToolUse, CallerInput):
    """One phone call's conversation. Drive it with start(), push_audio(), push_dtmf(), stop()."""

    def __init__(self, config: SessionConfig, stt: STT, llm: LLM, tts: TTS, send: Callable[[Frame], None],
                 callbacks: SessionCallbacks | None = None, sample_rate: int = 16000, clock: Clock = REAL_CLOCK,
                 vad: VoiceDetector | None = None):
        self.config, self.stt, self.llm, self.tts = config, stt, llm, tts
        self.send, self.callbacks, self.clock = send, callbacks or SessionCallbacks(), clock
        self.sample_rate = sample_rate
        self.tts_rate = config.tts_sample_rate or sample_rate
        self.rechunker = Rechunker(sample_rate, 20)
        self.vad = VADProcessor(vad or WebRtcVad(config.vad_aggressiveness))
        self.endpointer = Endpointer(EndpointerConfig(start_frames=config.start_frames,
                                                      end_silence_ms=config.end_silence_ms,
                                                      min_utterance_ms=config.min_utterance_ms),
                                     end_silence=self._end_silence_ms)
        self.turn_end = TurnEndSettings(default_ms=config.end_silence_ms, short_ms=config.end_silence_short_ms,
                                        long_ms=config.end_silence_long_ms, enabled=config.smart_turn)
        # The open turn's interims that have no final yet: start ms -> (end ms, text).
        self._interims: dict[float, tuple[float, str]] = {}
        self._heard_to_ms = -1.0  # audio ms the open turn's transcripts reach
        self._committed_to_ms = 0.0  # audio ms the last committed caller turn reached
        self._speculation: Speculation | None = None  # an early answer to the open turn's words
        self._early: Speculation | None = None  # the one the starting reply adopts
        self._reading_early: Speculation | None = None  # the one the running reply reads
        self._speculated_at = 0  # how many turns the history held when the early answer was asked for
        self.history: list[Turn] = []
        self.ended = False
        self.end_reason = ""
        self._stopped = gevent.event.Event()  # set once stop() has recorded the cut-off agent turn
        self._t0 = clock.now()
        self._audio_ms = 0.0  # position in the caller's audio stream
        self._stream = None
        self._stt_failures = 0
        self._reply: gevent.Greenlet | None = None
        self._agent: AgentTurn | None = None
        self._playing_until = 0.0  # clock ms when the audio sent so far will have finished playing
        self._progress_at = 0.0
        self._closing = False  # a goodbye is playing: no barge-in, no new turns
        self._pending_action: tuple | None = None  # ("end", reason) | ("transfer", destination, reason)
        self._caller_pieces: list[str] = []
        self._caller_start_ms = 0.0
        self._caller_onset_audio_ms: float | None = None  # the open caller turn's onset, in audio time
        self._caller_end_audio_ms: float | None = None  # its last voiced frame, in audio time
        self._caller_end_ms = 0.0
        self._final_at: float | None = None  # session ms the turn's latest final transcript arrived
        self._await_final_until: float | None = None
        self._last_voiced_audio_ms = 0.0
        self._last_activity = 0.0
        self._reprompts = 0
        self._dtmf: list[str] = []
        self._dtmf_at = 0.0
        self._held_dtmf: list[str] = []
        self._ticker: gevent.Greenlet | None = None
        self._watchdog: gevent.Greenlet | None = None
        self._llm_attempt = 1
        self._turn_ended_at: float | None = None  # session ms the caller's turn ended (dead air starts there)
        self._canned: dict[str, bytes] = {}  # fixed lines synthesised up front, playable with no TTS wait
        self._preparing: gevent.Greenlet | None = None
        self._greeting = GreetingGate(config.greeting_start, config.greeting_silence, config.reprompt_after,
                                      config.greeting_min_heard_ms)
        self._final_grace_until: float | None = None  # an overdue STT final is awaited until then
        # Caller audio comes from the socket's greenlet and, for gaps, from the ticker: one at a time, so the
        # STT stream never sees two writers (a provider's write may yield mid-frame).
        self._audio_lock = gevent.lock.RLock()
        self._wire = WireGap(config.wire_gap_ms)  # the last caller frame's arrival, gaps filled since (start())
        self._frame_end_ms = 0.0  # session ms the frame being processed ended
        # A stream opened before this session (answering-machine detection's) and the words it already heard.
        self._adopted: tuple | None = None

    # ----- lifecycle -------------------------------------------------------------------------------------------
    def now_ms(self) -> float:
        return (self.clock.now() - self._t0) * 1000.0

    def start(self) -> None:
        """Open the STT stream and speak the greeting (or let the LLM open the conversation)."""
        self._t0 = self.clock.now()
        try:
            self._stream = self._take_adopted() or self._open_stt()
        except ProviderError as exc:
            log.warning("STT could not start: %s", exc)
            self._stt_failures = 1
            if not self._reopen_stt():
                self._ticker = spawn(self._tick_loop)  # to hang up after the failure line
                return
        if self.ended:
            # stop() ran while the STT stream was opening (the caller hung up during start-up): nothing
            # may outlive the session, so close what start() just opened.
            gevent.spawn(self._stream.close)
            return
        taken_at = self.now_ms()
        self._wire.arrived(taken_at)  # audio is taken from now on; frames queued meanwhile are a backlog
        self._last_activity = taken_at  # quiet (before an "auto" greeting) counts from here too
        self._ticker = spawn(self._tick_loop)
        self._preparing = spawn(self._prepare_canned)
        if not self._greeting.owed:
            self._greet()

    def _greet(self) -> None:
        """Speak the greeting (or let the LLM open the conversation, with whatever the callee said so far)."""
        self._greeting.spoken()
        self._start_reply(text=self.config.greeting or None, kind="greeting")

    def stop(self, reason: str = "stream closed") -> None:
        """The call or its audio stream ended: stop everything, report a cut-off agent turn."""
        if self.ended:
            return
        self.ended, self.end_reason = True, reason
        try:
            self._drop_speculation()
            self._kill_reply()
            for helper in (self._preparing, self._watchdog):
                if helper is not None and helper is not gevent.getcurrent():
                    helper.kill(block=False)
            if self._agent is not None:
                now = self.now_ms()
                self._record_agent(min(now, self._playing_until), interrupted=now < self._playing_until)
        finally:
            self._stopped.set()
        if self._stream is not None:
            gevent.spawn(self._stream.close)
        if self._ticker is not None and self._ticker is not gevent.getcurrent():
            self._ticker.kill(block=False)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait for a stop() running in another greenlet (the audio stream closing as the call hangs up) to
        have recorded the cut-off agent turn; True once it has."""
        return self._stopped.wait(timeout)

    def _record(self, turn: TurnRecord) -> None:
        self.history.append(Turn(turn.speaker, turn.text))
        try:
            self.callbacks.on_turn(turn)
        except Exception:  # the transcript store failing must not take the call down
            log.exception("on_turn callback failed")

