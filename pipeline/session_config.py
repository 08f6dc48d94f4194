"""What a Session is told: per-agent behaviour (SessionConfig) and the app's hooks (SessionCallbacks)."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.frames import Frame, TurnRecord
from pipeline.wire_gap import WIRE_GAP_MS

DESTINATION = re.compile(r"\+?[0-9A-Za-z*#._@-]{1,64}")  # matched whole (fullmatch): "$" admits a trailing newline
DTMF_DIGITS = set("0123456789*#ABCD")


@dataclass
class SessionConfig:
    """Per-agent behaviour. Times in seconds unless the name says ms."""

    system_prompt: str = ""
    context: dict | None = None
    greeting: str | None = None  # None: the LLM speaks first (the scripted agent greets from its script)
    barge_in: bool = True  # off for legal disclaimers: caller speech during playback is ignored
    vad_aggressiveness: int = 2
    start_frames: int = 3
    end_silence_ms: int = 600  # the end-of-turn silence when the words give no evidence (pipeline/turn_end.py)
    # Smart end of turn: a complete-sounding utterance ends after end_silence_short_ms of quiet, an open one
    # ("and", "um", "for the") only after end_silence_long_ms; smart_turn False: always end_silence_ms.
    smart_turn: bool = True
    end_silence_short_ms: int = 300
    end_silence_long_ms: int = 1200
    # Early generation (pipeline/speculation.py): the LLM starts on a stable interim transcript once the caller
    # has been quiet this long; cancelled and discarded if the caller goes on or the final words differ.
    early_llm: bool = True
    early_llm_silence_ms: int = 60
    first_clause_words: int = 2  # the reply's first piece is cut at a clause of this many words (0: sentences)
    min_utterance_ms: int = 200
    stt_final_timeout: float = 1.0  # how long to wait for the STT's final text once the turn ended
    reprompt_after: float = 8.0
    reprompt_text: str = "Are you still there?"
    max_reprompts: int = 2
    silence_goodbye: str = "I haven't heard anything, so I'll end the call now. Goodbye."
    max_duration: float = 600.0
    max_duration_text: str = "We have reached the time limit for this call. Thank you, goodbye."
    # The dead-air limit: from the end of the caller's turn (or the end of the last audio) to the next audio
    # the caller hears. Past it the agent apologises (pre-synthesised, so the apology itself costs no TTS time)
    # and tries the LLM once more; a second silence ends the call with failure_text.
    provider_timeout: float = 5.0
    apology_text: str = "Sorry, I had a problem there. Let me try again."
    failure_text: str = "Sorry, I'm having technical difficulties. Please call back later. Goodbye."
    transfer_failed_text: str = "Sorry, I couldn't transfer you right now."
    dtmf_gap: float = 1.5  # keypad digits pressed within this gap form one input ("#" sends at once)
    tts_sample_rate: int | None = None  # default: the call's rate
    bidirectional: bool = False  # stream PCM back over the socket instead of playAudio files
    playback_lead_ms: int = 200  # bidirectional: how far ahead of real time audio is sent
    hangup_grace_ms: int = 500  # after the last words' estimated end, before the agent hangs up
    tools: tuple = ()  # OpenAI tool schemas; empty -> the providers' DEFAULT_TOOLS
    # When the greeting is spoken (see pipeline/greeting.py): "immediate" at stream start; "auto" after the
    # callee's first utterance or greeting_silence of quiet, whichever comes first (what a person answering
    # does: "Hello?" first); "after_caller" only once the caller has spoken (or after reprompt_after of quiet).
    greeting_start: str = "immediate"
    greeting_silence: float = 1.2
    # A greeting cut by barge-in before this much of it played was not heard: it is said again after the
    # caller's turn instead of a reply (the callee's "Hello?" at answer must not swallow it).
    greeting_min_heard_ms: int = 500
    # mod_audio_fork sends nothing while the far end sends no RTP (silence suppression): wall time with no frame
    # is silence. Frames later than this are taken as a gap and filled with digital silence.
    wire_gap_ms: int = WIRE_GAP_MS
    # A final that has not come after stt_final_timeout is still awaited this much longer when the turn has
    # no text yet (the re-prompt waits meanwhile), so a slow recogniser's words still make the turn.
    stt_final_grace: float = 4.0
    # A customer tool still running after this long: the agent says tool_filler_text (pipeline/tools/runner.py).
    tool_filler_after: float = 1.0
    tool_filler_text: str = "One moment while I check that."


def _noop(*_args) -> None:
    return None


@dataclass
class SessionCallbacks:
    """What the app provides. All are called from the session's greenlets and must not block for long."""

    on_turn: Callable[[TurnRecord], None] = _noop
    break_playback: Callable[[], None] = _noop  # uuid_break <uuid> all through the call controller
    end_call: Callable[[str], None] = _noop  # hang up politely (reason)
    transfer_call: Callable[[str, str], bool] = lambda destination, reason: False  # -> accepted?
    on_event: Callable[[Frame], None] = _noop  # SpeechStarted/SpeechStopped etc., for logs and metrics
    # A customer tool by name with the model's arguments -> pipeline.tools.http.ToolResult (None: unavailable).
    run_tool: Callable[[str, dict], Any] = lambda name, arguments: None
    send_dtmf: Callable[[str], bool] = lambda digits: False  # validated keys -> uuid_send_dtmf; accepted?


