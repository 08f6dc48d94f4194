"""Which voice names each TTS provider accepts: checked when an agent is saved, not when a call is answered.

An agent's voice is `tts.voice_id` (ElevenLabs), `tts.voice`, or the agent's own `voice`, in that order
(pipeline.providers.registry.agent_provider_settings / build_tts). A voice the provider cannot use would
otherwise be found out only at answer time, when the call's voice session fails to start.

  espeak      <language>[+<variant>], both installed: the language one of `espeak-ng --voices`, the
              variant one of `espeak-ng --voices=variant` (e.g. en-us, en-gb-x-rp, de+f3, en-us+klatt).
  elevenlabs  a voice id: 20 letters and digits, as ElevenLabs issues them (21m00Tcm4TlvDq8ikWAM).
Any other voice field the provider does not use must still be a plain name (letters, digits, _ + -).
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
from typing import Any

ESPEAK_VOICE = re.compile(r"(?P<language>[a-z]{2,3}(?:-[a-z0-9]{1,8}){0,4})(?:\+(?P<variant>[A-Za-z0-9_-]{1,40}))?")
ELEVENLABS_VOICE_ID = re.compile(r"[A-Za-z0-9]{20}")
PLAIN_NAME = re.compile(r"[A-Za-z0-9_+-]{1,64}")


@functools.lru_cache(maxsize=2)
def _espeak_list(kind: str) -> frozenset[str] | None:
    """Names from `espeak-ng --voices[=variant]` (language codes and file names), or None without espeak-ng."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        return None
    argv = [binary, "--voices=variant" if kind == "variant" else "--voices"]
    try:
        listing = subprocess.run(argv, capture_output=True, timeout=10, check=False).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return None
    names: set[str] = set()
    for line in listing.splitlines()[1:]:  # Pty Language Age/Gender VoiceName File Other Languages
        columns = line.split()
        if len(columns) >= 5:
            file_name = columns[4].rsplit("/", 1)[-1]
            names.add(file_name if kind == "variant" else columns[1].lower())
            if kind != "variant":
                names.add(file_name.lower())
    return frozenset(names)


def espeak_voice_problem(voice: str) -> str | None:
    match = ESPEAK_VOICE.fullmatch(voice)
    if match is None:
        return "an espeak-ng voice is <language>[+<variant>], e.g. en-us or en-gb+f3"
    languages, variants = _espeak_list("language"), _espeak_list("variant")
    if languages is not None and match["language"] not in languages:
        return f"espeak-ng has no voice {match['language']!r} installed (see espeak-ng --voices)"
    if match["variant"] and variants is not None and match["variant"] not in variants:
        return f"espeak-ng has no variant {match['variant']!r} (see espeak-ng --voices=variant)"
    return None


def elevenlabs_voice_problem(voice: str) -> str | None:
    if ELEVENLABS_VOICE_ID.fullmatch(voice):
        return None
    return "an ElevenLabs voice id is 20 letters and digits, e.g. 21m00Tcm4TlvDq8ikWAM"


CHECKS = {"espeak": espeak_voice_problem, "elevenlabs": elevenlabs_voice_problem}


def voice_problem(agent_voice: Any, tts: Any) -> tuple[str, str] | None:
    """(field, why) for the first voice an agent cannot speak with, or None.

    `agent_voice` is the agent's `voice`, `tts` its tts settings (provider, voice, voice_id)."""
    tts = tts if isinstance(tts, dict) else {}
    fields = [("tts.voice_id", tts.get("voice_id")), ("tts.voice", tts.get("voice")), ("voice", agent_voice)]
    for field, value in fields:
        if value is not None and not isinstance(value, str):
            return field, f"{field} must be a string"
    provider = str(tts.get("provider") or "espeak").lower()
    # The field the provider really speaks with: espeak ignores voice_id, ElevenLabs takes it first.
    used = [(f, v) for f, v in fields if v and (provider != "espeak" or f != "tts.voice_id")]
    check = CHECKS.get(provider)
    if used and check is not None:
        field, value = used[0]
        why = check(value)
        if why:
            return field, f"{field} {value[:64]!r} is not a voice {provider} can use: {why}"
    for field, value in fields:
        if value and not PLAIN_NAME.fullmatch(value):
            return field, f"{field} {value[:64]!r} is not a voice name (letters, digits, _ + - only)"
    return None
