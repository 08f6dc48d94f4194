"""The caller's side of a Session: audio and keypresses in, speech events, STT results, committed caller turns.

A mixin of pipeline.session.Session (it uses the session's state and its reply/record methods); split out so each
file holds one job. Caller audio is processed inline so barge-in reacts on the very frame that confirms speech;
wall time with no frame is silence (mod_audio_fork sends nothing while the far end sends no RTP).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import gevent

from pipeline.frames import DTMF, SpeechStarted, SpeechStopped, TurnRecord
from pipeline.interfaces import ProviderError, STTEvent, STTFailed, Transcript, Turn, UtteranceEnd
from pipeline.latency import LatencyMarks
from pipeline.session_config import DTMF_DIGITS
from pipeline.speculation import Speculation
from pipeline.turn_end import Evidence, classify, ends_open, silence_needed

log = logging.getLogger("pipeline.session")


class CallerInput:
    # ----- caller input ----------------------------------------------------------------------------------------
    def push_audio(self, pcm: bytes) -> None:
        """Caller audio of any (even) length; raises AudioFormatError on garbage."""
        with self._audio_lock:
            frames = self.rechunker.push(pcm)
            self._fill_wire_gap(arriving_ms=20.0 * len(frames))
            for frame in frames:
                if self.ended:
                    return
                self._run_timers()
                self._on_frame(frame)

    def _fill_wire_gap(self, arriving_ms: float | None = None) -> None:
        """Silence for the wall time no frame covered (pipeline/wire_gap.py). arriving_ms: the audio just
        received; None from the ticker."""
        if self._wire.heard_at is None or self.ended:
            return
        now = self.now_ms()
        due = self._wire.silence_due(now, arriving_ms)
        if due:  # nearly always 0: the zero frame is only made for a gap
            zero = bytes(self.rechunker.size)
            for _ in range(due):
                if self.ended:
                    return
                self._on_frame(zero, heard_at=self._wire.fill_one())
        if arriving_ms is not None:
            self._wire.arrived(now)

    def push_dtmf(self, digit: str) -> None:
        """A keypad digit from the call (ESL DTMF event, or a {"dtmf": "5"} text frame on the socket)."""
        digit = str(digit).strip().upper()
        if self.ended or digit not in DTMF_DIGITS:
            return
        self.callbacks.on_event(DTMF(digit))
        if self._agent_active() and not self._interrupt_agent():
            if not self._closing:
                self._held_dtmf.append(digit)  # barge-in is off: the keypress counts once the line has played
            return
        self._dtmf.append(digit)
        self._dtmf_at = self.clock.now()
        self._last_activity = self.now_ms()
        if self._digits_complete(digit):  # "#", or the keypad question's terminator / length (pipeline/tools)
            self._commit_dtmf()

    def _on_frame(self, pcm: bytes, heard_at: float | None = None) -> None:
        """One 20 ms frame; heard_at: the session ms its audio ended (a gap's silence is processed late)."""
        self._frame_end_ms = self.now_ms() if heard_at is None else heard_at
        t_ms = self._audio_ms
        self._audio_ms += 20.0
        if self._ignoring_caller():
            # Keep the STT stream fed (and its clock aligned) with silence while the caller is not listened to.
            self.endpointer.reset()
            self._stt_send(bytes(len(pcm)))
            return
        self._stt_send(pcm)
        # The VAD and endpointer steps without AudioIn/VoicedAudio objects: two frozen dataclasses per frame
        # were ~10 % of a frame's CPU (bench/bench_session_frames.py).
        for event in self.endpointer.step(self.vad.voiced(pcm, self.sample_rate), t_ms):
            self._on_speech_event(event)
        self._maybe_speculate()

    # ----- smart end of turn and early generation ----------------------------------------------------------------
    def _evidence(self, voiced_ms: float, last_voiced_ms: float) -> Evidence | None:
        text = self._heard_so_far()
        if not text:
            return None
        return Evidence(text, self._heard_to_ms >= last_voiced_ms - 150.0, voiced_ms)

    def _heard_so_far(self) -> str:
        """The open turn's words: its finals, then the interims of what has no final yet."""
        interims = [text for _, (_, text) in sorted(self._interims.items())]
        return " ".join([*self._caller_pieces, *interims]).strip()

    def _end_silence_ms(self, voiced_ms: float, last_voiced_ms: float) -> float:
        """The endpointer asks on every quiet frame: the interim words so far decide (pipeline/turn_end.py)."""
        return silence_needed(self.turn_end, self._evidence(voiced_ms, last_voiced_ms))

    def _maybe_speculate(self) -> None:
        """A stable interim (it covers the last voiced frame, sounds complete, and the caller has been quiet
        early_llm_silence_ms): start the LLM on it now, before the end of the turn is decided."""
        if not self.config.early_llm or not self.endpointer.in_speech or self._closing or self._greeting.owed:
            return
        if self.endpointer.silence_ms < self.config.early_llm_silence_ms or self._dtmf:
            return
        evidence = self._evidence(self.endpointer.voiced_ms, self.endpointer.last_voiced_ms)
        if evidence is None or not evidence.covers_end or classify(evidence.text) != "complete":
            return
        if self._speculation is not None and self._speculation.matches(evidence.text):
            return
        self._drop_speculation()
        turns = [*self.history, Turn("caller", evidence.text)]
        self._speculation = Speculation(evidence.text, lambda: self._llm_stream(turns),
                                        lambda piece: self.tts.synthesize(piece, self.tts_rate),
                                        self.config.first_clause_words)
        self._speculated_at = len(self.history)  # what the early answer was asked with

    def _drop_speculation(self) -> None:
        """The caller went on (or said something else): the early answer is discarded, never heard."""
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            speculation.cancel()

    def _take_speculation(self, text: str) -> Speculation | None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation.matches(text) and len(self.history) == self._speculated_at:
            return speculation  # the same words, answered with the same conversation before them
        if speculation is not None:
            speculation.cancel()
        return None

    def _ignoring_caller(self) -> bool:
        return self._closing or (not self.config.barge_in and self._agent_active())

    def _on_speech_event(self, event: SpeechStarted | SpeechStopped) -> None:
        self.callbacks.on_event(event)
        now = self._frame_end_ms  # the frame's own time: caller turns are placed where they were said
        if isinstance(event, SpeechStarted):
            self._drop_speculation()  # the caller goes on: an answer to what they said so far is not wanted
            if self._agent_active():
                self._interrupt_agent()
            if not self._caller_pieces and self._await_final_until is None:
                self._caller_start_ms = now - (event.t_ms - event.onset_ms)
                self._caller_onset_audio_ms = event.onset_ms
            # A final still awaited now joins this turn: its words are committed with the caller's next words.
            self._await_final_until = self._final_grace_until = None
            self._reprompts = 0
            return
        self._last_voiced_audio_ms = self._caller_end_audio_ms = event.last_voiced_ms
        self._caller_end_ms = now - (event.t_ms - event.last_voiced_ms)
        self._last_activity = now
        if not event.end_of_turn:
            if not self._caller_pieces:
                return
        self._end_caller_turn()

    def _end_caller_turn(self) -> None:
        if self._turn_ended_at is None:
            self._turn_ended_at = self.now_ms()
        if self._stream is not None and not self._stream.closed:
            self._await_final_until = self.clock.now() + self.config.stt_final_timeout
            self._final_grace_until = self._await_final_until + self.config.stt_final_grace
            try:
                self._stream.finalize()
            except ProviderError as exc:
                self._stt_broke(exc)
        else:
            self._commit_caller()

    # ----- STT results -----------------------------------------------------------------------------------------
    def _stt_send(self, pcm: bytes) -> None:
        if self._stream is None:
            return
        try:
            self._stream.send(pcm)
        except ProviderError as exc:
            self._stt_broke(exc)

    def adopt_stt(self, stream, offset_ms: float, heard: str = "") -> Callable[[STTEvent], None]:
        """Take over a stream opened before this session started (answering-machine detection's), instead of
        opening one: the callee's first words ("Hello?", `heard` already final) are not lost and the recognizer
        is not started twice. offset_ms: session audio ms where the stream's time 0 is (negative). Returns the
        handler the stream's results are to be given to from now on."""
        self._adopted = (stream, heard.strip())

        def on_result(event: STTEvent) -> None:
            if stream is self._stream:
                self._on_stt(event, offset_ms)

        return on_result

    def _take_adopted(self):
        """The adopted stream, with the words it heard before this session recorded as the caller's first turn."""
        adopted, self._adopted = self._adopted, None
        if adopted is None:
            return None
        stream, heard = adopted
        if heard:
            self._record(TurnRecord("caller", heard, 0, 0))
        return stream

    def _open_stt(self):
        """A new STT stream. Its times start at 0 where the call's audio is now, so its results are shifted by
        that offset; results from a stream that has since been replaced are dropped (its failure, too)."""
        offset_ms = self._audio_ms
        opened: list = []

        def on_result(event) -> None:
            if opened and opened[0] is self._stream:
                self._on_stt(event, offset_ms)

        opened.append(self.stt.open(self.sample_rate, on_result=on_result))
        return opened[0]

    def _on_stt(self, event, offset_ms: float = 0.0) -> None:
        if self.ended:
            return
        if isinstance(event, STTFailed):
            self._stt_broke(event.error)
        elif isinstance(event, Transcript):
            self._on_transcript(event, offset_ms)
        elif isinstance(event, UtteranceEnd):
            self._stt_says_done()

    def _on_transcript(self, event: Transcript, offset_ms: float = 0.0) -> None:
        if not event.is_final:
            end_ms = offset_ms + event.end * 1000.0
            # Interims of a turn already committed (late) or of words before this session are no evidence.
            if event.text.strip() and not self._ignoring_caller() and end_ms > max(20.0, self._committed_to_ms):
                # An interim revises what was heard from its start on; earlier segments without a final stay.
                start_ms = offset_ms + event.start * 1000.0
                self._interims = {s: v for s, v in self._interims.items() if s < start_ms - 1.0}
                self._interims[start_ms] = (end_ms, event.text.strip())
                self._heard_to_ms = max(self._heard_to_ms, end_ms)
            return
        final_end_ms = offset_ms + event.end * 1000.0
        self._interims = {s: v for s, v in self._interims.items() if s >= final_end_ms - 1.0}
        if event.text.strip():
            self._heard_to_ms = max(self._heard_to_ms, final_end_ms)
        if offset_ms < 0 and event.text.strip() and offset_ms + event.end * 1000.0 <= 20.0:
            # Words said before this session began (during answering-machine detection), final only now: the
            # callee's first turn, recorded as such rather than joined to whatever they say next.
            self._record(TurnRecord("caller", event.text.strip(), 0, 0))
            return
        if event.text.strip() and not self._ignoring_caller():
            self._caller_pieces.append(event.text.strip())
            self._final_at = self.now_ms()
        covers_turn = offset_ms + event.end * 1000.0 >= self._last_voiced_audio_ms - 150.0
        if self._await_final_until is not None and (event.speech_final or covers_turn):
            self._commit_caller()
        elif event.speech_final:
            self._stt_says_done()

    def _turn_start_ms(self) -> float:
        # The turn's length in audio time, placed to end where it ended: frames that arrive in a burst (the
        # switch flushing what it buffered before the socket was up) all carry the burst's arrival time, so
        # the onset's own session time would put the start late, even after the end.
        if self._caller_onset_audio_ms is None or self._caller_end_audio_ms is None:
            return self._caller_start_ms
        spoken_ms = max(0.0, self._caller_end_audio_ms - self._caller_onset_audio_ms)
        return max(0.0, min(self._caller_start_ms, self._caller_end_ms - spoken_ms))

    def _stt_says_done(self) -> None:
        if self._await_final_until is not None:
            if self._caller_pieces:
                self._commit_caller()
            return
        if ends_open(self.turn_end, self._heard_so_far()):
            return  # "... and": the recognizer's pause is not the caller's end; the VAD's longer silence decides
        for stopped in self.endpointer.stt_end_of_utterance(self._audio_ms):
            self.callbacks.on_event(stopped)
            self._turn_ended_at = self.now_ms()
            self._caller_end_ms = self.now_ms() - (stopped.t_ms - stopped.last_voiced_ms)
            self._caller_end_audio_ms = stopped.last_voiced_ms
            self._last_activity = self.now_ms()
            if self._caller_pieces:
                self._commit_caller()
            else:
                self._end_caller_turn()

    def _stt_broke(self, error: ProviderError) -> None:
        log.warning("STT stream failed: %s", error)
        self._stt_failures += 1
        if self._stt_failures == 1:
            self._reopen_stt()  # one reconnect per call; when that fails too, _reopen_stt ends the call
            return
        self._fail("speech recognition failed")

    def _reopen_stt(self) -> bool:
        old, self._stream = self._stream, None
        if old is not None:
            gevent.spawn(old.close)
        try:
            self._stream = self._open_stt()
            return True
        except ProviderError as exc:
            log.warning("STT could not restart: %s", exc)
            self._fail("speech recognition failed")
            return False

    def _final_overdue(self) -> None:
        """The final text has not come in stt_final_timeout: commit what there is, or, with nothing yet, keep
        waiting up to stt_final_grace longer (a loaded recogniser is late, not silent; the turn is not lost)."""
        if self._caller_pieces or self._final_grace_until is None or self.clock.now() >= self._final_grace_until:
            self._commit_caller()
            return
        log.info("STT final overdue by %.1f s: still waiting for it", self.clock.now() - self._await_final_until
                 + self.config.stt_final_timeout)
        self._await_final_until, self._final_grace_until = self._final_grace_until, None

    def _commit_caller(self) -> None:
        text = " ".join(self._caller_pieces).strip()
        ended_at, self._turn_ended_at = self._turn_ended_at, None
        marks = LatencyMarks(voiced_end=self._caller_end_ms, turn_ended=ended_at, final_at=self._final_at)
        self._final_at = None
        self._caller_pieces, self._await_final_until, self._final_grace_until = [], None, None
        self._interims, self._heard_to_ms = {}, -1.0
        self._committed_to_ms = self._caller_end_audio_ms or 0.0
        early = self._take_speculation(text)
        if self.ended or self._closing:
            if early is not None:
                early.cancel()
            return
        if text:
            self._record(TurnRecord("caller", text, int(self._turn_start_ms()), int(self._caller_end_ms)))
        if self._greeting.owed:
            self._greet()  # the callee's "Hello?" (or a greeting they talked over) is answered by the greeting
        elif text:
            self._start_reply(since=ended_at, marks=marks, early=early)
            return
        if early is not None:
            early.cancel()

    def _commit_dtmf(self) -> None:
        self._drop_speculation()
        digits, self._dtmf = self._collected_digits(), []
        if not digits or self.ended or self._closing:
            return
        now = int(self.now_ms())
        self._record(TurnRecord("caller", digits, now, now, source="dtmf"))
        if self._greeting.owed:
            self._greet()
        else:
            self._start_reply()

