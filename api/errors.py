"""One JSON error shape for every failure: {"error": {"code", "message", "field"?}}."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def invalid(field: str, message: str, code: str = "invalid_field") -> ApiError:
    return ApiError(422, code, message, field)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 415: "unsupported_media_type"}


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response = jsonify(exc.body())
        response.status_code = exc.status
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = {413: "request body is larger than the allowed maximum"}.get(status, exc.description)
        # Werkzeug's own headers (405's Allow, RFC 9110 15.5.6) survive the JSON body; its Content-Type does not.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return _api_error(ApiError(status, _HTTP_CODES.get(status, "http_error"), message, headers=headers))

    _register_telephony(app, _api_error)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return _api_error(ApiError(500, "internal_error", "internal error; it has been logged"))


def _register_telephony(app: Flask, respond) -> None:
    """Call-control failures are the caller's to retry or act on, not internal errors."""
    from calls.call_control import CallNotControlled, TransferFailed
    from esl.errors import EslNotConnected, EslTimeout

    @app.errorhandler(EslNotConnected)
    @app.errorhandler(EslTimeout)
    def _telephony_down(exc: Exception):
        log.warning("telephony unavailable: %s", exc)
        return respond(ApiError(503, "telephony_unavailable",
                                "FreeSWITCH cannot be reached right now; the request was not carried out, retry later",
                                headers={"Retry-After": "5"}))

    @app.errorhandler(CallNotControlled)
    def _not_controlled(exc: CallNotControlled):
        return respond(ApiError(409, "call_not_controlled",
                                "the call is live but no channel of it is controlled by this service instance"))

    @app.errorhandler(TransferFailed)
    def _transfer_failed(exc: TransferFailed):
        return respond(ApiError(409, "transfer_failed", f"FreeSWITCH refused the transfer: {exc.reply.strip()[:200]}"))

    _register_dial_refused(app, respond)


def _register_dial_refused(app: Flask, respond) -> None:
    """A transfer target that breaks an outbound rule (calls/dialing.py): the caller's input, refused."""
    from calls.call_control import DialRefused

    @app.errorhandler(DialRefused)
    def _dial_refused(exc: DialRefused):
        return respond(ApiError(422, "destination_refused", f"{exc.refusal.reason} (rule {exc.refusal.rule})"))
