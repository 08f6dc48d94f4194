"""An agent's settings (Agent.settings): the keys something reads, their checks, and the pipeline's
SessionConfig built from them (turn-taking, barge-in, how the agent's voice returns, when it greets)."""
from __future__ import annotations

from typing import Any

from calls.machine_detection import check as check_machine_detection
from calls.tools import session_tools
from models import WEB, Agent, Call
from pipeline.greeting import GREETING_STARTS
from pipeline.providers.registry import OFFLINE
from pipeline.session import SessionConfig


def _number(settings: dict, key: str, default: float, low: float, high: float) -> float:
    """An agent setting clamped to a sane phone range; junk falls back to the default."""
    value = settings.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    if isinstance(value, bool) or number != number:  # bools and NaN are not numbers here
        return default
    return min(max(number, low), high)


def _text(settings: dict, key: str, default: str) -> str:
    value = settings.get(key)
    return value.strip()[:500] if isinstance(value, str) and value.strip() else default


# Every key of Agent.settings something reads: the pipeline (session_config), the scripted agent (its script)
# and the call controller (record). Anything else is a typo that would silently do nothing.
AGENT_SETTINGS: dict[str, tuple[type, ...]] = {
    "barge_in": (bool,), "vad_aggressiveness": (int,), "end_silence_ms": (int, float),
    "silence_reprompt_s": (int, float), "reprompt_text": (str,), "max_reprompts": (int,),
    "max_duration_s": (int, float), "provider_timeout_s": (int, float),
    "questions": (list,), "closing": (str,), "max_retries": (int,), "record": (bool,),
    "audio_return": (str,), "greeting_start": (str,), "machine_detection": (dict,),
    "smart_turn": (bool,), "end_silence_short_ms": (int, float), "end_silence_long_ms": (int, float),
    "early_llm": (bool,),
}
# Settings that take one of a few words. audio_return: how the agent's voice reaches the call. "stream" (the
# default) sends it as binary PCM frames over the audio fork's own socket (mod_audio_fork bidirectional
# streaming) as the TTS produces it: one route for the voice, and killAudio on the same socket is the one route
# for barge-in. "playaudio" (for a switch whose mod_audio_fork cannot stream back) sends each piece as a
# playAudio file that the controller plays with uuid_broadcast, and barge-in also needs uuid_break.
AUDIO_RETURN_PLAYAUDIO, AUDIO_RETURN_STREAM = "playaudio", "stream"
# greeting_start: when the agent greets (pipeline/greeting.py). "auto" (the default): on outbound calls after the
# callee's "Hello?" or a short quiet, on inbound calls at once; "immediate"; "after_caller".
AGENT_SETTING_CHOICES: dict[str, tuple[str, ...]] = {"audio_return": (AUDIO_RETURN_PLAYAUDIO, AUDIO_RETURN_STREAM),
                                                     "greeting_start": GREETING_STARTS}


def streams_audio(settings: Any) -> bool:
    """True unless the agent's settings ask for playAudio files: its voice goes back as binary frames."""
    return not (isinstance(settings, dict) and settings.get("audio_return") == AUDIO_RETURN_PLAYAUDIO)


def check_agent_settings(settings: Any) -> list[str]:
    """Problems with an agent's settings object (unknown keys, wrong types), each naming the key; [] if fine."""
    if not isinstance(settings, dict):
        return ["settings must be an object"]
    problems = []
    for key, value in settings.items():
        kinds = AGENT_SETTINGS.get(key)
        if kinds is None:
            problems.append(f"unknown setting {str(key)[:40]!r} (known: {', '.join(sorted(AGENT_SETTINGS))})")
        elif not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            problems.append(f"setting {key!r} must be {' or '.join(k.__name__ for k in kinds)}")
        elif key in AGENT_SETTING_CHOICES and value not in AGENT_SETTING_CHOICES[key]:
            problems.append(f"setting {key!r} must be one of {', '.join(AGENT_SETTING_CHOICES[key])}")
        elif key == "machine_detection":
            problems += check_machine_detection(value, "settings.machine_detection")
    return problems


def session_config(agent: Agent, call: Call, sample_rate: int, max_call_s: float,
                   provider_timeout_s: float = SessionConfig.provider_timeout) -> SessionConfig:
    """Turn-taking from agent.settings (barge_in, silence_reprompt_s, max_reprompts, max_duration_s,
    end_silence_ms, smart_turn, end_silence_short_ms, end_silence_long_ms, early_llm, vad_aggressiveness,
    reprompt_text, provider_timeout_s), clamped to ranges that work on a
    phone line; provider_timeout_s is the deployment's PROVIDER_TIMEOUT unless the agent overrides it.
    audio_return "stream" (the default) makes the session send its voice as binary frames (bidirectional)."""
    settings = agent.settings if isinstance(agent.settings, dict) else {}
    defaults = SessionConfig()
    scripted = str((agent.llm or {}).get("provider") or OFFLINE["llm"]).lower() == "scripted"
    return SessionConfig(
        system_prompt=agent.prompt or "",
        context=call.context if isinstance(call.context, dict) else {},
        # The scripted agent speaks its greeting and first question as one opening line; a fixed greeting
        # before it would leave the first question unasked.
        greeting=None if scripted else (agent.greeting or None),
        barge_in=settings.get("barge_in", True) is not False,
        vad_aggressiveness=int(_number(settings, "vad_aggressiveness", defaults.vad_aggressiveness, 0, 3)),
        end_silence_ms=int(_number(settings, "end_silence_ms", defaults.end_silence_ms, 200, 3000)),
        # Smart end of turn (pipeline/turn_end.py) and early generation (pipeline/speculation.py).
        smart_turn=settings.get("smart_turn", True) is not False,
        end_silence_short_ms=int(_number(settings, "end_silence_short_ms", defaults.end_silence_short_ms, 150, 3000)),
        end_silence_long_ms=int(_number(settings, "end_silence_long_ms", defaults.end_silence_long_ms, 200, 5000)),
        early_llm=settings.get("early_llm", True) is not False,
        reprompt_after=_number(settings, "silence_reprompt_s", defaults.reprompt_after, 2, 120),
        reprompt_text=_text(settings, "reprompt_text", defaults.reprompt_text),
        max_reprompts=int(_number(settings, "max_reprompts", defaults.max_reprompts, 0, 10)),
        max_duration=_number(settings, "max_duration_s", min(defaults.max_duration, max_call_s), 10, max_call_s),
        provider_timeout=_number(settings, "provider_timeout_s", provider_timeout_s, 1, 30),
        tts_sample_rate=sample_rate,
        # A browser (webcall/) plays what it is sent as it comes: there is no switch to play files for it.
        bidirectional=streams_audio(settings) or call.direction == WEB,
        greeting_start=greeting_start(settings, call),
        tools=session_tools(agent),  # customer tools and the keypad (calls/tools.py)
    )


def greeting_start(settings: dict, call: Call) -> str:
    """The session's greeting policy: "auto" waits for the callee on outbound calls only (an inbound caller
    dialled us and waits to be greeted)."""
    chosen = settings.get("greeting_start", "auto")
    if chosen not in GREETING_STARTS:
        chosen = "auto"
    if chosen == "auto":
        return "auto" if call.direction == "outbound" else "immediate"
    return chosen
