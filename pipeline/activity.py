"""What happens over time in a Session: barge-in, the dead-air watchdog, the tick, re-prompts, limits, hang-up.

A mixin of pipeline.session.Session (it uses the session's state and its reply methods, pipeline/generation.py).
Playback position is estimated from the clock and the duration of the audio sent (mod_audio_fork reports nothing
back), which is what truncates an interrupted agent turn.
"""
from __future__ import annotations

import logging

import gevent

from pipeline.frames import EndCall, Interrupt, Transfer, TurnRecord
from pipeline.interfaces import ProviderError
from pipeline.wire_gap import woke_late

log = logging.getLogger("pipeline.session")


class DeadAir(gevent.GreenletExit):
    """Kills a reply whose providers stayed silent past the dead-air limit.

    A GreenletExit, not a ProviderError: the provider wrappers (ResilientLLM retries a ProviderError, and
    SDK-backed providers turn Exceptions into ProviderErrors) must not swallow it and wait a second time.
    """


# The reasons Session._fail gives: the pipeline broke, the agent did not choose to end the call.
FAILURES = frozenset({"speech recognition failed", "tts failed", "internal error", "provider failed",
                      "provider timed out"})


class Activity:
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
            if woke_late(due, self.clock.now()) and not skipped:
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
