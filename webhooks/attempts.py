"""The log of each delivery's attempts, which GET /v1/webhook-deliveries shows: when, how long, and
the receiver's HTTP status or the error (an error never carries the signing secret: it is not in
the URL, and headers are not logged)."""
from __future__ import annotations

from models import WebhookAttempt


def log_attempt(delivery_id: str, status_code: int | None, error: str | None, duration_s: float | None) -> None:
    WebhookAttempt.create(delivery=delivery_id, status_code=status_code, error=(error or None) and error[:1000],
                          duration_ms=None if duration_s is None else round(duration_s * 1000))

