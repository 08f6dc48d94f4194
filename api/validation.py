"""Reading and checking request bodies and fields."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import phonenumbers
from flask import request

from api.errors import ApiError, invalid
from calls.phone_text import plausible_phone_text


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 415/400 that says what is wrong."""
    if not request.mimetype or request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "body must be a JSON object")
    return body


def reject_unknown(body: dict[str, Any], allowed: set[str], schema: str | None = None) -> None:
    """422 for a field the request may not carry: read_only_field for one the OpenAPI `schema` marks readOnly
    (a response field such as id sent back), unknown_field for anything else."""
    unknown = sorted(set(body) - allowed)
    if unknown and schema is not None:
        from api.openapi import read_only

        sent = sorted(set(unknown) & read_only(schema))
        if sent:
            raise invalid(sent[0], f"{sent[0]} is read-only: the server sets it; leave it out of the request",
                          "read_only_field")
    if unknown:
        raise invalid(unknown[0], f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}",
                      "unknown_field")


def e164(value: Any, field: str, region: str) -> str:
    """Normalize a phone number to E.164 or raise 422 invalid_phone_number."""
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        raise invalid(field, f"{field} must be a phone number string", "invalid_phone_number")
    if not plausible_phone_text(value):
        raise invalid(field, f"{field} may hold only digits, an optional leading +, spaces and ( ) . -",
                      "invalid_phone_number")
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise invalid(field, f"{field} is not a phone number: {exc}", "invalid_phone_number") from None
    if parsed.extension:
        # E.164 has no extensions and a dial string must not carry one: say so, never drop it.
        raise invalid(field, f"{field} {value!r} has an extension; extensions cannot be dialed",
                      "invalid_phone_number")
    if not phonenumbers.is_valid_number(parsed):
        raise invalid(field, f"{field} {value!r} is not a valid phone number", "invalid_phone_number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def utc_datetime(value: Any, field: str) -> dt.datetime:
    """ISO 8601 with an explicit zone (Z or offset), returned as naive UTC."""
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be an ISO 8601 string such as 2026-01-31T15:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(field, f"{field} must be an ISO 8601 string such as 2026-01-31T15:00:00Z") from None
    if parsed.tzinfo is None:
        raise invalid(field, f"{field} must carry a time zone (use Z for UTC)")
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


def int_in(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(field, f"{field} must be an integer from {lo} to {hi}")
    return value


def optional_str(body: dict[str, Any], field: str, max_len: int, default: str | None = None) -> str | None:
    value = body.get(field, default)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise invalid(field, f"{field} must be a string of at most {max_len} characters")
    return value
