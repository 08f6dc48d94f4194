"""Typed FreeSWITCH events parsed from text/event-json and text/event-plain frames.

Plain format: header values are URL-encoded one by one. We split the header block into lines FIRST and
decode each value on its own, so an encoded newline (%0A) stays inside its value and can never forge a
header (greenswitch decodes the whole event before splitting). A body follows its own blank line and is
kept byte for byte. JSON format: a CUSTOM event's body is the `_body` key.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote

from esl.framing import Frame


@dataclass(slots=True)
class Event:
    name: str
    headers: dict[str, str]
    body: str | None = None
    subclass: str | None = None
    unique_id: str | None = None
    content_type: str = field(default="text/event-json")

    @property
    def key(self) -> str:
        """Dispatch key: the subclass for CUSTOM events (mod_audio_fork::connect), else the event name."""
        return self.subclass if self.name == "CUSTOM" and self.subclass else self.name

    def get(self, header: str, default: str | None = None) -> str | None:
        value = self.headers.get(header, default)
        return value if value is None or isinstance(value, str) else str(value)

    def variable(self, name: str, default: str | None = None) -> str | None:
        """Channel variable `name` (the `variable_<name>` header)."""
        return self.get("variable_" + name, default)

    def _int(self, header: str) -> int | None:
        value = self.get(header)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    @property
    def job_uuid(self) -> str | None:
        return self.get("Job-UUID")

    @property
    def hangup_cause(self) -> str | None:
        return self.get("Hangup-Cause") or self.variable("hangup_cause")

    @property
    def billsec(self) -> int | None:
        value = self.variable("billsec")
        return int(value) if value and value.isdigit() else None

    @property
    def duration(self) -> int | None:
        value = self.variable("duration")
        return int(value) if value and value.isdigit() else None

    @property
    def sip_term_status(self) -> str | None:
        return self.variable("sip_term_status")

    @property
    def call_id(self) -> str | None:
        """The VoxBridge call id the originate put on the channel (voxbridge_call_id)."""
        return self.variable("voxbridge_call_id")

    @property
    def core_uuid(self) -> str | None:
        return self.get("Core-UUID")

    @property
    def session_count(self) -> int | None:
        return self._int("Session-Count")

    @property
    def max_sessions(self) -> int | None:
        return self._int("Max-Sessions")

    @property
    def job_ok(self) -> bool:
        """BACKGROUND_JOB: the body starts with +OK."""
        return bool(self.body) and self.body.startswith("+OK")

    @property
    def job_result(self) -> str:
        """BACKGROUND_JOB body without the +OK/-ERR prefix and trailing newline (a uuid, or a cause)."""
        text = (self.body or "").strip()
        for prefix in ("+OK", "-ERR"):
            if text.startswith(prefix):
                return text[len(prefix):].strip()
        return text

    def json_body(self) -> object:
        """The body parsed as JSON (mod_audio_fork events carry JSON bodies); None when empty."""
        return json.loads(self.body) if self.body else None


def _make(headers: dict[str, str], body: str | None, content_type: str) -> Event:
    return Event(headers.get("Event-Name", ""), headers, body, headers.get("Event-Subclass"),
                 headers.get("Unique-ID"), content_type)


def parse_json(data: bytes | str) -> Event:
    headers = json.loads(data)
    if not isinstance(headers, dict):
        raise ValueError("event json is not an object")
    body = headers.pop("_body", None)
    return _make(headers, body, "text/event-json")


def parse_plain_headers(block: str) -> dict[str, str]:
    """Header lines `Key: url-encoded value`; each value decoded on its own, after splitting lines."""
    headers: dict[str, str] = {}
    for line in block.split("\n"):
        if not line:
            continue
        key, _, value = line.partition(": ")
        headers[key] = unquote(value) if "%" in value else value
    return headers


def parse_plain(data: bytes | str) -> Event:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    block, sep, rest = text.partition("\n\n")
    headers = parse_plain_headers(block)
    # A body exists only when the event declares one (its own Content-Length); keep it intact.
    body = rest if sep and "Content-Length" in headers else None
    return _make(headers, body, "text/event-plain")


def from_frame(frame: Frame) -> Event | None:
    """The Event a frame carries, or None for frames that are not events (replies, log/data, notices)."""
    if frame.content_type == "text/event-json":
        return parse_json(frame.body)
    if frame.content_type == "text/event-plain":
        return parse_plain(frame.body)
    return None
