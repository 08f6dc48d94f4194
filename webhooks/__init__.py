"""Signed webhooks: outbox (enqueue in the change's transaction), delivery worker, verification."""
from webhooks.outbox import EVENT_TYPES, enqueue
from webhooks.signing import SIGNATURE_HEADER, SignatureError, sign, verify

__all__ = ["EVENT_TYPES", "SIGNATURE_HEADER", "SignatureError", "enqueue", "sign", "verify"]
