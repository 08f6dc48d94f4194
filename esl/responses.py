"""Parsers for the api/response bodies the call controller relies on (shapes taken from the captures)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from esl.errors import EslCommandError


def uuid_exists(body: str) -> bool:
    """`uuid_exists` answers `true` / `false` with no newline; anything else is an error."""
    text = body.strip()
    if text in ("true", "false"):
        return text == "true"
    raise EslCommandError("uuid_exists", text)


def show_channels(body: str) -> list[dict[str, str]]:
    """Rows of `show channels as json`: `{"row_count": 0}` (with a space) when empty, else
    `{"row_count":N,"rows":[...]}`. The rows come from a database that lags and can keep ghost rows:
    confirm each with uuid_exists before trusting it."""
    text = body.strip()
    if text.startswith("-ERR"):
        raise EslCommandError("show channels", text)
    data = json.loads(text)
    rows = data.get("rows") or [] if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise EslCommandError("show channels", text[:200])
    return [row for row in rows if isinstance(row, dict)]


@dataclass(frozen=True, slots=True)
class ApiResult:
    ok: bool
    text: str  # without the +OK / -ERR prefix and surrounding whitespace


def api_result(body: str) -> ApiResult:
    """`+OK ...` / `-ERR ...` answers (uuid_kill, uuid_audio_fork, uuid_broadcast, BACKGROUND_JOB bodies)."""
    text = body.strip()
    if text.startswith("+OK"):
        return ApiResult(True, text[3:].strip())
    if text.startswith("-ERR"):
        return ApiResult(False, text[4:].strip())
    return ApiResult(False, text)
