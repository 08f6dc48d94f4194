"""The agent's side of a Session: replies generated (LLM), spoken (TTS) and handed to the switch.

A mixin of pipeline.session.Session (it uses the session's state, clock and callbacks). A reply runs in its own
greenlet that barge-in can kill; the LLM's text is cut into speakable pieces as it streams, the first piece at
its first clause (pipeline/clauses.py) so the caller hears the agent before the LLM has finished a sentence.

Early generation (pipeline/speculation.py) may already have the LLM's answer to the caller's words when the
turn is committed: the reply then reads that answer instead of asking again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import gevent

from observability.context import spawn
from pipeline.audio import duration_ms
from pipeline.clauses import ClauseAggregator
from pipeline.frames import TTSAudio
from pipeline.interfaces import ProviderError, TextDelta, ToolCall
from pipeline.latency import LatencyMarks
from pipeline.playback import PlayedSegments
from pipeline.session_config import DESTINATION
from pipeline.speculation import Speculation
from pipeline.tools.runner import MAX_TOOL_ROUNDS

log = logging.getLogger("pipeline.session")


@dataclass
class AgentTurn:
    segments: PlayedSegments = field(default_factory=PlayedSegments)
    kind: str = "reply"
    marks: LatencyMarks = field(default_factory=LatencyMarks)  # where this turn's latency went


class Generation:
    # ----- the agent's reply -----------------------------------------------------------------------------------
    def _agent_active(self) -> bool:
        replying = self._reply is not None and not self._reply.dead
        return replying or self.now_ms() < self._playing_until

    def _start_reply(self, text: str | None = None, kind: str = "reply", *, since: float | None = None,
                     attempt: int = 1, apologise: bool = False, marks: LatencyMarks | None = None,
                     early: Speculation | None = None) -> None:
        """Speak `text`, or let the LLM answer; `since` (session ms) is when the caller started waiting;
        `marks`: the caller turn's moments so far (its latency breakdown continues in this reply);
        `early`: the LLM's answer already under way for exactly these words (pipeline/speculation.py)."""
        self._kill_reply()
        now = self.now_ms()
        marks = marks or LatencyMarks()
        marks.mark("reply_started", now)
        self._agent = AgentTurn(kind=kind, marks=marks)
        self._early = early
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
        early, self._reading_early = self._reading_early, None
        if early is not None:
            early.cancel()
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

    def _prepare_canned(self) -> None:
        """Synthesise the apology and failure lines now, so saying them never waits on a stalled provider."""
        for text in (self.config.apology_text, self.config.failure_text):
            try:
                self._canned[text] = b"".join(self.tts.synthesize(text, self.tts_rate))
            except ProviderError as exc:
                log.warning("could not prepare a fixed line: %s", exc)

    def _llm_stream(self, turns: list):
        kwargs = {"tools": self.config.tools} if self.config.tools else {}
        return self.llm.stream(self.config.system_prompt, self.config.context, turns, **kwargs)

    def _stream_llm(self, rounds: int = 0) -> None:
        aggregator = ClauseAggregator(first_clause_words=self.config.first_clause_words)
        tools: list[ToolCall] = []
        early, self._early = self._early, None  # an early answer serves the first round only (and one attempt)
        self._reading_early = early  # cancelled with this reply (barge-in, dead air): its LLM stops too
        events = early.replay() if early is not None else self._llm_stream(list(self.history))
        for event in events:
            self._progress_at = self.now_ms()
            self._mark("llm_first")
            if isinstance(event, TextDelta):
                for piece in aggregator.push(event.text):
                    early = self._say_piece(piece, early)
            elif isinstance(event, ToolCall):
                tools.append(event)
            else:
                self._on_llm_control(event)  # e.g. a keypad question's digit collection (pipeline/tools)
        for piece in aggregator.flush():
            early = self._say_piece(piece, early)
        followup = self._run_agent_tools(tools)  # customer tools and the keypad: pipeline/tools/runner.py
        for tool in tools:
            self._on_tool(tool)
        if followup and rounds < MAX_TOOL_ROUNDS and not self._closing:
            self._stream_llm(rounds + 1)  # the model reads the tool's result and answers

    def _say_piece(self, piece: str, early: Speculation | None) -> Speculation | None:
        """Say a piece of the LLM's text, with the early answer's audio when it is that answer's first piece;
        returns the early answer while its first piece is still to come (None after it)."""
        if early is not None and piece == early.first_piece:
            self._speak_sentence(piece, prepared=early.audio())
            return None
        self._speak_sentence(piece)
        return early

    def _speak_sentence(self, text: str, prepared=None) -> None:
        """Say one piece; `prepared`: its audio chunks, already being synthesised (an early answer's)."""
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
        for chunk in prepared if prepared is not None else self.tts.synthesize(text, self.tts_rate):
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
