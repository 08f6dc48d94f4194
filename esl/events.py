"""Typed FreeSWITCH events parsed from text/event-json and text/event-plain frames.

Plain format: header values are URL-encoded one by one. We split the header block into lines FIRST and
decode each value on its own, so an encoded newline (%0A) stays inside its value and can never forge a
header (greenswitch decodes the whole event before splitting). A body follows its own blank line and is
kept byte for byte. JSON format: a CUSTOM event's body is the `_body` key.
"""
from __future__ import annotations

import codecs
import json
from urllib.parse import unquote

from esl.framing import Frame

try:  # orjson parses a 3 KB event several times faster; the standard library is the fallback
    import orjson

    def _loads(data: bytes | str) -> object:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data)  # same verdict for bad input; accepts what orjson is stricter about
except ImportError:  # pragma: no cover - orjson is in the requirements
    _loads = json.loads


class Event:
    """One FreeSWITCH event. name, subclass, unique_id and body are decoded up front; the full header dict
    of a plain event is built on first use of `headers` (get() reads single headers straight from the raw
    block), because most events are dispatched on their name alone and materializing ~150 headers is where
    the time goes."""

    __slots__ = ("name", "subclass", "unique_id", "body", "content_type", "_headers", "_raw")

    def __init__(self, name: str, headers: dict[str, str] | None, body: str | None = None,
                 subclass: str | None = None, unique_id: str | None = None,
                 content_type: str = "text/event-json", raw: str | None = None) -> None:
        self.name = name
        self.subclass = subclass
        self.unique_id = unique_id
        self.body = body
        self.content_type = content_type
        self._headers = headers
        self._raw = raw  # plain header block with a leading "\n", when headers are not parsed yet

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = parse_plain_headers(self._raw or "")
        return self._headers

    def __repr__(self) -> str:
        return f"Event({self.name!r}, subclass={self.subclass!r}, unique_id={self.unique_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and (self.name, self.headers, self.body) == (other.name, other.headers,
                                                                                       other.body)

    __hash__ = None  # mutable, compared by value

    @property
    def key(self) -> str:
        """Dispatch key: the subclass for CUSTOM events (mod_audio_fork::connect), else the event name."""
        return self.subclass if self.name == "CUSTOM" and self.subclass else self.name

    def get(self, header: str, default: str | None = None) -> str | None:
        if self._headers is None:
            value = _find(self._raw or "", header)
            return default if value is None else value
        value = self._headers.get(header, default)
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
    def hangup_cause_q850(self) -> int | None:
        value = self.variable("hangup_cause_q850")
        return int(value) if value and value.isdigit() else None

    @property
    def dtmf_digit(self) -> str | None:
        return self.get("DTMF-Digit")

    @property
    def application(self) -> str | None:
        """CHANNEL_EXECUTE(_COMPLETE): the application and its response (e.g. playback / FILE PLAYED)."""
        return self.get("Application")

    @property
    def application_response(self) -> str | None:
        return self.get("Application-Response")

    @property
    def application_data(self) -> str | None:
        """CHANNEL_EXECUTE(_COMPLETE): the application's argument (e.g. the file a playback plays)."""
        return self.get("Application-Data")

    @property
    def billmsec(self) -> int | None:
        value = self.variable("billmsec")
        return int(value) if value and value.isdigit() else None

    @property
    def read_rate(self) -> int | None:
        """The channel's read codec rate in Hz (variable_read_rate: 8000 for PCMU/PCMA), when the event says."""
        value = self.variable("read_rate")
        return int(value) if value and value.isdigit() else None

    @property
    def loopback_leg(self) -> str | None:
        """"A" or "B" on a loopback channel's legs (variable_loopback_leg), else None."""
        return self.variable("loopback_leg")

    @property
    def destination_number(self) -> str | None:
        """The number the caller dialed (Caller-Destination-Number)."""
        return self.get("Caller-Destination-Number")

    @property
    def caller_id_number(self) -> str | None:
        return self.get("Caller-Caller-ID-Number")

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
    headers = _loads(data)
    if not isinstance(headers, dict):
        raise ValueError("event json is not an object")
    body = headers.pop("_body", None)
    return _make(headers, body, "text/event-json")


def _find(raw: str, key: str) -> str | None:
    """One header of a raw plain block ("\n" + lines). Encoded values hold no raw newline, so "\nKey: " can
    only match the start of a real header line; the last occurrence wins, as in the parsed dict."""
    pattern = "\n" + key + ": "
    at = raw.rfind(pattern)
    if at < 0:
        return None
    start = at + len(pattern)
    end = raw.find("\n", start)
    value = raw[start:] if end < 0 else raw[start:end]
    return url_decode(value) if "%" in value else value


def _slow_headers(block: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split("\n"):
        if not line:
            continue
        key, _, value = line.partition(": ")
        headers[key] = unquote(value) if "%" in value else value
    return headers


def url_decode(text: str) -> str:
    """Same result as urllib.parse.unquote, in C: every %XX becomes the escape \\xXX of codecs.escape_decode
    (backslashes doubled first so nothing else is interpreted); anything malformed falls back to unquote."""
    if "%" not in text:
        return text
    try:
        raw = codecs.escape_decode(text.encode("utf-8").replace(b"\\", b"\\\\").replace(b"%", b"\\x"))[0]
    except ValueError:
        return unquote(text)
    return raw.decode("utf-8", "replace")


def parse_plain_headers(block: str) -> dict[str, str]:
    """Header lines `Key: url-encoded value`; each value decoded on its own, after splitting lines.

    Fast path (C-level string operations, no per-line Python loop): encoded values contain neither a newline
    nor ": ", so splitting on both gives key/value pairs; the values, joined by newlines, are decoded in one
    call and split again. If any count does not line up (a raw ": " in a value, or a value that decodes to a
    newline) the exact per-line path runs instead, so the result is always the per-value decoding."""
    block = block.strip("\n")
    if not block:
        return {}
    lines = block.count("\n") + 1
    parts = block.replace("\n", ": ").split(": ")
    if len(parts) != 2 * lines:
        return _slow_headers(block)
    values = parts[1::2]
    joined = "\n".join(values)
    if "%" in joined:
        values = url_decode(joined).split("\n")
        if len(values) != lines:
            return _slow_headers(block)
    return dict(zip(parts[::2], values, strict=True))


def parse_plain(data: bytes | str) -> Event:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    block, sep, rest = text.partition("\n\n")
    raw = "\n" + block.strip("\n")
    # A body exists only when the event declares one (its own Content-Length); keep it intact.
    body = rest if sep and "\nContent-Length: " in raw else None
    name = _find(raw, "Event-Name") or ""
    subclass = _find(raw, "Event-Subclass") if name == "CUSTOM" else None
    return Event(name, None, body, subclass, _find(raw, "Unique-ID"), "text/event-plain", raw)


def from_frame(frame: Frame) -> Event | None:
    """The Event a frame carries, or None for frames that are not events (replies, log/data, notices)."""
    if frame.content_type == "text/event-json":
        return parse_json(frame.body)
    if frame.content_type == "text/event-plain":
        return parse_plain(frame.body)
    return None
