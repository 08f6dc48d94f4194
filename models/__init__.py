"""peewee models. `open_database(url)` binds them; `migrate()` creates and upgrades the schema."""
from models.agent import DIRECTIONS, Agent
from models.base import BaseModel, JSONField, database, is_postgres, new_id, open_database, utcnow
from models.call import (
    BUSY,
    CALL_DIRECTIONS,
    CALLING,
    CANCELED,
    COMPLETED,
    FAILED,
    FINAL_STATUSES,
    IN_PROGRESS,
    INBOUND,
    LIVE_STATUSES,
    NO_ANSWER,
    OUTBOUND,
    PENDING_STATUSES,
    QUEUED,
    RINGING,
    SCHEDULED,
    STATUSES,
    WEB,
    Call,
    CallEvent,
)
from models.console_user import ConsoleUser
from models.idempotency import IdempotencyRecord
from models.migrations import current_version, migrate
from models.number import PhoneNumber
from models.sip_account import TRANSPORTS, SipAccount
from models.tenancy import ApiKey, Organization
from models.webhook import WebhookAttempt, WebhookDelivery

__all__ = [
    "Agent", "ApiKey", "BaseModel", "Call", "CallEvent", "ConsoleUser", "IdempotencyRecord", "JSONField",
    "Organization",
    "PhoneNumber", "SipAccount", "TRANSPORTS", "WebhookAttempt", "WebhookDelivery", "DIRECTIONS", "STATUSES",
    "PENDING_STATUSES", "LIVE_STATUSES",
    "FINAL_STATUSES", "QUEUED", "SCHEDULED", "CALLING", "RINGING", "IN_PROGRESS", "COMPLETED", "FAILED",
    "NO_ANSWER", "BUSY", "CANCELED", "database", "is_postgres", "new_id", "open_database", "utcnow",
    "migrate", "current_version", "CALL_DIRECTIONS", "INBOUND", "OUTBOUND", "WEB",
]
