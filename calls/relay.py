"""Call control for every API process: a loopback relay to the process that owns the ESL connections.

With API_WORKERS>1, app.py forks API-only children before it builds telephony: only the first
process holds the FreeSWITCH connections and the live calls (CallController.live), so only it can
hang up or transfer one. A child's hangup, cancel or transfer, and its readiness question, are
relayed to it: a small HTTP server on 127.0.0.1 in the owner, on an ephemeral port bound before the
fork, authenticated by a random secret made at each start that only the forked children know
(never in the environment, a file or a log). The owner validates every input again, each request
is bounded in size and time, and a child answers 503 when the owner does not answer.
"""
from __future__ import annotations

import hmac
import http.client
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import gevent.socket
from gevent.pywsgi import WSGIServer

from calls.call_control import CallNotControlled, TransferFailed
from esl.errors import EslError, EslNotConnected, EslTimeout
from models import Call, database

log = logging.getLogger(__name__)

AUTH_HEADER = "X-VoxBridge-Relay-Auth"
MAX_BODY_BYTES = 4096
# A hangup is one ESL command, a bridge transfer a few (uuid_setvar_dialplan per variable, then the
# transfer): the owner's answer is bounded by this many ESL command timeouts, plus a margin.
ESL_COMMANDS_PER_REQUEST = 10
CONNECT_TIMEOUT_S = 2.0
TRANSFER_MODES = frozenset({"bridge", "refer"})
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


class RelayUnavailable(Exception):
    """The process that controls calls did not answer: down, restarting, or slower than the bound."""


class RelayRefused(Exception):
    """The owner refused a relayed request (bad secret or input): a bug between processes, not the caller's."""


@dataclass(frozen=True)
class RelayAddress:
    """Where the owner listens, and the secret that proves a request comes from one of its children."""

    port: int
    secret: str = field(repr=False)
    host: str = "127.0.0.1"


def open_listener() -> tuple[gevent.socket.socket, RelayAddress]:
    """Bind the relay's socket (before forking, so every child knows the address) and make the secret."""
    listener = gevent.socket.socket(gevent.socket.AF_INET, gevent.socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener, RelayAddress(listener.getsockname()[1], secrets.token_urlsafe(32))


# ---- the owner's side ------------------------------------------------------------------------------
def _call_id(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 36:
        raise ValueError("call_id must be a call's id")
    if str(uuid.UUID(value)) != value:
        raise ValueError("call_id must be a call's id")
    return value


def _reason(value: Any) -> str:
    """The hang-up reason recorded on the call: short printable text (it is stored, never sent to FreeSWITCH)."""
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not value.isprintable():
        raise ValueError("reason must be 1 to 200 printable characters")
    return value


def _choice(value: Any, allowed: frozenset[str], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}")
    return value


def _e164(value: Any) -> str:
    if not isinstance(value, str) or not _E164.fullmatch(value):
        raise ValueError("to must be an E.164 number")
    return value


def _live_call(call_id: str) -> Call:
    call = Call.get_or_none(Call.id == call_id)
    if call is None:
        raise CallNotControlled(f"call {call_id} does not exist")
    return call


class RelayServer:
    """The owner's end: carries relayed requests out on the real call control."""

    def __init__(self, listener: gevent.socket.socket, address: RelayAddress, control: Any) -> None:
        self.address = address
        self.control = control
        self.server = WSGIServer(listener, self._app, log=None, error_log=log)

    def start(self) -> RelayServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(timeout=2)

    def _app(self, environ: dict, start_response) -> list[bytes]:
        status, body = self._handle(environ)
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def _handle(self, environ: dict) -> tuple[str, dict]:
        given = environ.get("HTTP_" + AUTH_HEADER.upper().replace("-", "_"), "")
        if not hmac.compare_digest(given.encode(), self.address.secret.encode()):
            return "403 Forbidden", {"error": "forbidden", "message": "bad relay secret"}
        route = (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        try:
            if route == ("GET", "/health"):
                return "200 OK", {"nodes": self.control.health()}
            if route not in (("POST", "/hangup"), ("POST", "/transfer")):
                return "404 Not Found", {"error": "not_found", "message": "no such relay route"}
            body = self._body(environ)
            with database.connection_context():
                if route[1] == "/hangup":
                    self.control.hangup(_live_call(_call_id(body.get("call_id"))),
                                        reason=_reason(body.get("reason")))
                    return "200 OK", {"ok": True}
                call = _live_call(_call_id(body.get("call_id")))
                self.control.transfer(call, _e164(body.get("to")), _choice(body.get("mode"), TRANSFER_MODES, "mode"))
                return "200 OK", {"ok": True}
        except ValueError as exc:
            return "400 Bad Request", {"error": "invalid", "message": str(exc)}
        except CallNotControlled as exc:
            return "409 Conflict", {"error": "not_controlled", "message": str(exc)}
        except TransferFailed as exc:
            return "409 Conflict", {"error": "transfer_failed", "message": str(exc), "reply": exc.reply}
        except EslError as exc:
            kind = "esl_timeout" if isinstance(exc, EslTimeout) else (
                "esl_not_connected" if isinstance(exc, EslNotConnected) else "esl_error")
            return "503 Service Unavailable", {"error": kind, "message": str(exc)}
        except Exception:
            log.exception("relayed call-control request failed")
            return "500 Internal Server Error", {"error": "internal", "message": "internal error; it has been logged"}

    @staticmethod
    def _body(environ: dict) -> dict:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ValueError("bad Content-Length") from None
        if not 0 < length <= MAX_BODY_BYTES:
            raise ValueError(f"body must be 1 to {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(environ["wsgi.input"].read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("body must be JSON") from None
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body


# ---- an API worker's side --------------------------------------------------------------------------
_ERRORS = {"esl_timeout": EslTimeout, "esl_not_connected": EslNotConnected, "esl_error": EslError,
           "not_controlled": CallNotControlled}


class RelayCallControl:
    """The call control of an API worker that does not own the ESL connections: same methods, relayed."""

    def __init__(self, address: RelayAddress, timeout_s: float) -> None:
        self.address = address
        self.timeout_s = timeout_s

    def hangup(self, call: Call, reason: str = "hung up through the API") -> None:
        self._request("POST", "/hangup", {"call_id": call.id, "reason": reason})

    def transfer(self, call: Call, target: str, mode: str) -> bool:
        self._request("POST", "/transfer", {"call_id": call.id, "to": target, "mode": mode})
        return True

    def health(self) -> list[dict[str, Any]]:
        return self._request("GET", "/health", None)["nodes"]

    def _request(self, method: str, path: str, payload: dict | None) -> dict:
        status, body = self._exchange(method, path, payload)
        if status == 200:
            return body
        kind, message = body.get("error"), str(body.get("message", ""))
        if kind == "transfer_failed":
            raise TransferFailed(str((payload or {}).get("call_id", "")), str(body.get("reply", "")))
        if kind in _ERRORS:
            raise _ERRORS[kind](message)
        raise RelayRefused(f"call-control relay answered {status}: {message}")

    def _exchange(self, method: str, path: str, payload: dict | None) -> tuple[int, dict]:
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {AUTH_HEADER: self.address.secret, "Content-Type": "application/json"}
        conn = http.client.HTTPConnection(self.address.host, self.address.port, timeout=CONNECT_TIMEOUT_S)
        try:
            conn.connect()
            conn.sock.settimeout(self.timeout_s)  # connected: now the owner's work is what we wait for
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read(1 << 20) or b"{}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # socket.timeout is an OSError: a request the owner may still carry out. Say so.
            raise RelayUnavailable(f"the call-control process did not answer {method} {path} "
                                   f"({type(exc).__name__}); it may or may not have been carried out") from None
        finally:
            conn.close()


def relay_timeout_s(esl_command_timeout_s: float) -> float:
    """How long an API worker waits for the owner: its ESL commands' worst case plus a margin."""
    return esl_command_timeout_s * ESL_COMMANDS_PER_REQUEST + 5


__all__ = ["RelayAddress", "RelayCallControl", "RelayRefused", "RelayServer", "RelayUnavailable", "open_listener",
           "relay_timeout_s"]
