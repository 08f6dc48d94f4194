"""The per-call conversation: caller audio in, turns out, the agent's voice back, with barge-in and fallbacks.

Data flows one way: PCM -> Rechunker -> VADProcessor -> Endpointer (+ STT) -> UserTurn -> LLM (streaming) ->
sentences -> TTS -> TTSAudio frames handed to `send` (the WebSocket connection). Control frames (Interrupt,
EndCall, Transfer) go the same way. Caller audio is processed inline in push_audio() so barge-in reacts on the
very frame that confirms speech; the reply (LLM + TTS) runs in its own greenlet that barge-in can kill.

Playback position is estimated from the clock and the duration of the audio sent (mod_audio_fork plays files
through the call controller and reports nothing back), which is what truncates an interrupted agent turn.

The caller's side (audio and keys in, speech events, STT results, caller turns) is pipeline/caller_input.py;
what a session is told is pipeline/session_config.py; when it greets is pipeline/greeting.py.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
import gevent.greenlet
import gevent.lock

from observability.context import spawn
from pipeline.audio import Rechunker, duration_ms
from pipeline.caller_input import CallerInput
from pipeline.clock import REAL_CLOCK, Clock
from pipeline.frames import (
    EndCall,
    Frame,
    Interrupt,
    Transfer,
    TTSAudio,
    TurnRecord,
)
from pipeline.greeting import GreetingGate
from pipeline.interfaces import (
    LLM,
    STT,
    TTS,
    ProviderError,
    TextDelta,
    ToolCall,
    Turn,
)
from pipeline.latency import LatencyMarks
from pipeline.playback import PlayedSegments
from pipeline.sentences import SentenceAggregator
from pipeline.session_config import DESTINATION, SessionCallbacks, SessionConfig
from pipeline.tools.runner import MAX_TOOL_ROUNDS, ToolUse
from pipeline.vad import Endpointer, EndpointerConfig, VADProcessor, VoiceDetector, WebRtcVad

__all__ = ["DeadAir", "Session", "SessionCallbacks", "SessionConfig"]

log = logging.getLogger(__name__)

class DeadAir(gevent.GreenletExit):
    """Kills a reply whose providers stayed silent past the dead-air limit.

    A GreenletExit, not a ProviderError: the provider wrappers (ResilientLLM retries a ProviderError, and
    SDK-backed providers turn Exceptions into ProviderErrors) must not swallow it and wait a second time.
    """


# The reasons Session._fail gives: the pipeline broke, the agent did not choose to end the call.
FAILURES = frozenset({"speech recognition failed", "tts failed", "internal error", "provider failed",
                      "provider timed out"})


@dataclass
class _AgentTurn:
    segments: PlayedSegments = field(default_factory=PlayedSegments)
    kind: str = "reply"
    marks: LatencyMarks = field(default_factory=LatencyMarks)  # where this turn's latency went


class Session(ToolUse, CallerInput):
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
                                                      min_utterance_ms=config.min_utterance_ms))
        self.history: list[Turn] = []
        self.ended = False
        self.end_reason = ""
        self._t0 = clock.now()
        self._audio_ms = 0.0  # position in the caller's audio stream
        self._stream = None
        self._stt_failures = 0
        self._reply: gevent.Greenlet | None = None
        self._agent: _AgentTurn | None = None
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
        self._heard_at: float | None = None  # session ms the last caller frame arrived (stream ready: start())
        self._gap_filled_ms = 0.0  # silence already filled in since then
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
        self._heard_at = self.now_ms()  # audio is taken from now on; frames queued meanwhile are a backlog
        self._last_activity = self._heard_at  # quiet (before an "auto" greeting) counts from here too
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
        self._kill_reply()
        for helper in (self._preparing, self._watchdog):
            if helper is not None and helper is not gevent.getcurrent():
                helper.kill(block=False)
        if self._agent is not None:
            now = self.now_ms()
            self._record_agent(min(now, self._playing_until), interrupted=now < self._playing_until)
        if self._stream is not None:
            gevent.spawn(self._stream.close)
        if self._ticker is not None and self._ticker is not gevent.getcurrent():
            self._ticker.kill(block=False)

    def _record(self, turn: TurnRecord) -> None:
        self.history.append(Turn(turn.speaker, turn.text))
        try:
            self.callbacks.on_turn(turn)
        except Exception:  # the transcript store failing must not take the call down
            log.exception("on_turn callback failed")

    # ----- the agent's reply -----------------------------------------------------------------------------------
    def _agent_active(self) -> bool:
        replying = self._reply is not None and not self._reply.dead
        return replying or self.now_ms() < self._playing_until

    def _start_reply(self, text: str | None = None, kind: str = "reply", *, since: float | None = None,
                     attempt: int = 1, apologise: bool = False, marks: LatencyMarks | None = None) -> None:
        """Speak `text`, or let the LLM answer; `since` (session ms) is when the caller started waiting;
        `marks`: the caller turn's moments so far (its latency breakdown continues in this reply)."""
        self._kill_reply()
        now = self.now_ms()
        marks = marks or LatencyMarks()
        marks.mark("reply_started", now)
        self._agent = _AgentTurn(kind=kind, marks=marks)
        self._progress_at = now if since is None else min(since, now)
        self._llm_attempt = attempt
        self._reply = spawn(self._reply_task, text, apologise)
        self._watchdog = spawn(self._watch, self._reply, text)

    def _mark(self, name: str) -> None:
        """A moment of the running reply's latency breakdown (from its own greenlet only: a reply that was cut
        off must not mark the turn that replaced it)."""
        if self._agent is not None and self._reply is gevent.getcurrent():
            self._agent.marks.mark(name, self.now_ms())

    def _kill_reply(self) -> None:
        reply, self._reply = self._reply, None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and not watchdog.dead and watchdog is not gevent.getcurrent():
            watchdog.kill(block=False)
        if reply is not None and not reply.dead and reply is not gevent.getcurrent():
            reply.kill(block=True, timeout=1.0)

    def _reply_task(self, text: str | None, apologise: bool = False) -> None:
        try:
            if apologise:
                self._speak_sentence(self.config.apology_text)
            if text is not None:
                self._speak_fixed(text)
            else:
                self._generate()
        except gevent.GreenletExit:
            raise
        except ProviderError as exc:
            log.warning("could not speak: %s", exc)
            self._fail("tts failed")
        except Exception:
            log.exception("reply failed")
            self._fail("internal error")

    def _speak_fixed(self, text: str) -> None:
        try:
            self._speak_sentence(text)
        except ProviderError as exc:
            log.warning("TTS failed on a fixed line: %s", exc)
            if not self._closing:
                self._fail("tts failed")

    def _generate(self) -> None:
        while True:
            try:
                self._stream_llm()
                return
            except ProviderError as exc:
                log.warning("provider failed (attempt %d): %s", self._llm_attempt, exc)
                if self._llm_attempt >= 2 or self._closing:
                    break
                self._llm_attempt += 1
                try:
                    self._speak_sentence(self.config.apology_text)
                except ProviderError as again:
                    log.warning("could not apologise: %s", again)
        self._fail("provider failed")

    # ----- dead air ------------------------------------------------------------------------------------------
    def _watch(self, reply: gevent.Greenlet, text: str | None) -> None:
        """Sleep until the dead-air deadline (pushed back by every sign of progress); act when it passes."""
        limit = self.config.provider_timeout * 1000.0
        while not self.ended and self._reply is reply and not reply.dead:
            wait = max(self._progress_at, self._playing_until) + limit - self.now_ms()
            if wait <= 0:
                self._on_dead_air(reply, text)
                return
            self.clock.sleep(wait / 1000.0)

    def _on_dead_air(self, reply: gevent.Greenlet, text: str | None) -> None:
        log.warning("providers silent for %.1f s: apologising", self.config.provider_timeout)
        self._reply, self._watchdog = None, None
        reply.kill(DeadAir, block=False)  # lands wherever it waits; never in a socket write (see server.py)
        if self._agent is not None and self._agent.segments:
            self._record_agent(self._playing_until, interrupted=False)
        if self._closing:
            action = self._pending_action
            self._finish(action[1] if action and action[0] == "end" else "provider timed out")
        elif text is None and self._llm_attempt < 2:
            self._start_reply(kind="reply", attempt=self._llm_attempt + 1, apologise=True)
        else:
            self._fail("provider timed out")

    def _prepare_canned(self) -> None:
        """Synthesise the apology and failure lines now, so saying them never waits on a stalled provider."""
        for text in (self.config.apology_text, self.config.failure_text):
            try:
                self._canned[text] = b"".join(self.tts.synthesize(text, self.tts_rate))
            except ProviderError as exc:
                log.warning("could not prepare a fixed line: %s", exc)

    def _stream_llm(self, rounds: int = 0) -> None:
        aggregator = SentenceAggregator()
        tools: list[ToolCall] = []
        kwargs = {"tools": self.config.tools} if self.config.tools else {}
        for event in self.llm.stream(self.config.system_prompt, self.config.context, list(self.history), **kwargs):
            self._progress_at = self.now_ms()
            self._mark("llm_first")
            if isinstance(event, TextDelta):
                for sentence in aggregator.push(event.text):
                    self._speak_sentence(sentence)
            elif isinstance(event, ToolCall):
                tools.append(event)
            else:
                self._on_llm_control(event)  # e.g. a keypad question's digit collection (pipeline/tools)
        for sentence in aggregator.flush():
            self._speak_sentence(sentence)
        followup = self._run_agent_tools(tools)  # customer tools and the keypad: pipeline/tools/runner.py
        for tool in tools:
            self._on_tool(tool)
        if followup and rounds < MAX_TOOL_ROUNDS and not self._closing:
            self._stream_llm(rounds + 1)  # the model reads the tool's result and answers

    def _speak_sentence(self, text: str) -> None:
        canned = self._canned.get(text)
        if canned:
            self._progress_at = self.now_ms()
            if self.config.bidirectional:
                step = self.tts_rate // 10 * 2  # 100 ms pieces, paced like synthesised audio
                for i in range(0, len(canned), step):
                    self._play(canned[i:i + step], text if i == 0 else "")
            else:
                self._play(canned, text)
            return
        chunks = []
        self._mark("tts_requested")
        for chunk in self.tts.synthesize(text, self.tts_rate):
            self._progress_at = self.now_ms()
            self._mark("tts_first")
            if self.config.bidirectional:
                self._play(chunk, text if not chunks else "")
            chunks.append(chunk)
        if not self.config.bidirectional:
            self._play(b"".join(chunks), text)

    def _play(self, pcm: bytes, text: str) -> None:
        """Send audio and extend the playback estimate (paced in bidirectional mode so killAudio is effective)."""
        if not pcm and not text:
            return
        if self._reply is not gevent.getcurrent():
            return  # a reply cut off by barge-in or the dead-air watchdog: nothing more of it is heard
        if self.config.bidirectional:
            lead = self._playing_until - self.now_ms() - self.config.playback_lead_ms
            if lead > 0:
                self.clock.sleep(lead / 1000.0)
        now = self.now_ms()
        start = max(now, self._playing_until)
        self._playing_until = start + duration_ms(len(pcm), self.tts_rate)
        if self._agent is not None:
            self._agent.segments.add(start, self._playing_until, text)
        self.send(TTSAudio(pcm, self.tts_rate, text, stream=self.config.bidirectional))
        self._mark("delivered")  # handed to the socket writer: the switch gets it next (server.py never blocks)

    def _on_tool(self, tool: ToolCall) -> None:
        args = tool.arguments or {}
        if tool.name == "end_call":
            self._closing = True
            self._pending_action = ("end", str(args.get("reason") or "agent ended the call")[:200])
        elif tool.name == "transfer_call":
            destination = str(args.get("destination") or "")
            if not DESTINATION.fullmatch(destination):
                log.warning("refusing transfer to a malformed destination")
                self._speak_sentence(self.config.transfer_failed_text)
                return
            self._pending_action = ("transfer", destination, str(args.get("reason") or "")[:200])
        elif tool.name not in self._declared_tools():
            log.warning("unknown tool %r ignored", tool.name[:40])

    # ----- barge-in ----------------------------------------------------------------------------------------------
    def _interrupt_agent(self) -> bool:
        """Caller speech (or a keypress) while the agent talks. Returns False when barge-in is off."""
        if not self.config.barge_in or self._closing:
            return False
        now = self.now_ms()
        playing = now < self._playing_until
        reply = self._reply
        self._reply = None  # detached first: nothing more of it can be sent (see _play)
        if playing:
            # killAudio first, on this very frame: the reply's greenlet may take a while to die, and the
            # socket writer (pipeline/server.py) sends frames whole, in order, whatever is killed.
            self.send(Interrupt(now))
        self._reply = reply
        self._kill_reply()
        if playing:
            try:
                self.callbacks.break_playback()
            except Exception:
                log.exception("break_playback callback failed")
        if self._agent is not None and self._agent.kind == "greeting" and self._greeting_unheard(now):
            # Not heard: nothing of it goes into the history (the callee's words are not an answer to it),
            # and it is said again once the callee's turn is over.
            log.info("greeting cut after %.0f ms: it will be said again", self._heard_ms(now))
            self._agent = None
        elif self._agent is not None:
            self._record_agent(now, interrupted=True)
        self._playing_until = min(self._playing_until, now)
        self._pending_action = None
        return True

    def _heard_ms(self, now: float) -> float:
        segments = self._agent.segments if self._agent is not None else None
        return max(0.0, now - segments.start_ms) if segments else 0.0

    def _greeting_unheard(self, now: float) -> bool:
        return self._greeting.cut(self._heard_ms(now))

    def _record_agent(self, end_ms: float, interrupted: bool) -> None:
        agent, self._agent = self._agent, None
        if agent is None or not agent.segments:
            return
        text = agent.segments.played_text(end_ms) if interrupted else agent.segments.text()
        if text:
            self._record(TurnRecord("agent", text, int(agent.segments.start_ms), int(end_ms),
                                    interrupted=interrupted, latency=agent.marks.latency().as_dict()))

    # ----- timers ------------------------------------------------------------------------------------------------
    def _tick_loop(self) -> None:
        # A backup for when the caller's audio stalls; audio frames check the timers every 20 ms anyway.
        skipped = False
        while not self.ended:
            due = self.clock.now() + 0.1
            self.clock.sleep(0.1)
            if self.clock.now() - due > 0.05 and not skipped:
                # This process was stalled (CPU), not the wire quiet: let the socket hand over what queued
                # meanwhile before inferring any silence (one tick only: a process always late still fills).
                skipped = True
                self._run_timers()
                continue
            skipped = False
            self._check_timers()

    def _check_timers(self) -> None:
        """The tick: time passes whether frames come or not."""
        if not self.ended:
            with self._audio_lock:
                self._fill_wire_gap()
            self._run_timers()

    def _run_timers(self) -> None:
        if self.ended:
            return
        now = self.now_ms()
        if self._await_final_until is not None and self.clock.now() >= self._await_final_until:
            self._final_overdue()
        if self._dtmf and self.clock.now() - self._dtmf_at >= self._digit_gap():
            self._commit_dtmf()
        replying = self._reply is not None and not self._reply.dead
        if not replying and now >= self._playing_until:
            self._after_playback(now)
        self._check_limits(now, replying)

    def _after_playback(self, now: float) -> None:
        if self._agent is not None:
            self._record_agent(self._playing_until if self._agent.segments else now, interrupted=False)
            self._last_activity = max(now, self._playing_until)
        action, self._pending_action = self._pending_action, None
        if action and action[0] == "end" and now < self._playing_until + self.config.hangup_grace_ms:
            # A real switch starts each file late (mod_audio_fork's lead frames, the Event Socket round trip):
            # hanging up on our own estimate would cut the goodbye's last words.
            self._pending_action = action
            return
        held, self._held_dtmf = self._held_dtmf, []
        if held and not action and not self._closing:
            for digit in held:
                self.push_dtmf(digit)
            return
        if action and action[0] == "end":
            self._finish(action[1])
        elif action and action[0] == "transfer":
            self._transfer(action[1], action[2])

    def _check_limits(self, now: float, replying: bool) -> None:
        if self.ended:
            return
        limit = self.config.max_duration * 1000
        if now >= limit and not self._closing:
            self._interrupt_agent()
            self._say_goodbye(self.config.max_duration_text, "max duration reached")
        elif now >= limit + (self.config.provider_timeout + 30) * 1000:
            self._finish("max duration reached")  # the goodbye itself never finished: hard stop
        idle = not replying and now >= self._playing_until and not self.endpointer.in_speech
        idle = idle and self._await_final_until is None and not self._dtmf and not self._closing
        if idle and self._greeting.owed:
            if self._greeting.due(now - self._last_activity):
                self._greet()
            return
        if idle and now - self._last_activity >= self.config.reprompt_after * 1000:
            self._last_activity = now
            if self._reprompts >= self.config.max_reprompts:
                self._say_goodbye(self.config.silence_goodbye, "caller silent")
            else:
                self._reprompts += 1
                self._start_reply(text=self.config.reprompt_text, kind="reprompt")

    def _say_goodbye(self, text: str, reason: str) -> None:
        self._closing = True
        self._start_reply(text=text, kind="goodbye")
        self._pending_action = ("end", reason)

    def _fail(self, reason: str) -> None:
        """Give up cleanly: say so if the TTS still works, then hang up (never dead air)."""
        if self._closing or self.ended:
            self._finish(reason)
            return
        self._closing = True
        self._pending_action = ("end", reason)
        current = gevent.getcurrent()
        if self._reply is current:
            try:
                self._speak_sentence(self.config.failure_text)
            except ProviderError:
                log.warning("could not say the failure line")
        else:
            self._start_reply(text=self.config.failure_text, kind="goodbye")

    def _transfer(self, destination: str, reason: str) -> None:
        try:
            accepted = bool(self.callbacks.transfer_call(destination, reason))
        except Exception:
            log.exception("transfer_call callback failed")
            accepted = False
        if not accepted:
            self._start_reply(text=self.config.transfer_failed_text, kind="reply")
            return
        self.send(Transfer(destination, reason))
        self.stop("transferred")

    def _finish(self, reason: str) -> None:
        if self.ended:
            return
        if self._agent is not None:
            # Recorded before the hang-up is asked for: the call's end (call.ended) must not race the last turn.
            now = self.now_ms()
            self._record_agent(min(now, self._playing_until), interrupted=now < self._playing_until)
        try:
            self.callbacks.end_call(reason)
        except Exception:
            log.exception("end_call callback failed")
        self.send(EndCall(reason))
        self.stop(reason)
