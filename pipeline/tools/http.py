"""One call to a customer's HTTP tool: signed like a webhook, SSRF-guarded, bounded in time and size.

The request carries {"tool", "arguments", "call_id", "agent_id"} as JSON (a GET sends the arguments as the
query string instead, still signed over the empty body) with `VoxBridge-Signature` computed with the
organization's webhook secret(s) exactly as webhooks/signing.py does, so the same verify() works. The
host is resolved once and the connection pinned to the checked address (webhooks/targets.py). Whatever
happens, the result is a ToolResult the model can read: a timeout or an error is data for it to apologise
about, never an exception in the voice pipeline.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import gevent
import urllib3

from pipeline.tools.definitions import HttpTool
from webhooks.signing import SIGNATURE_HEADER, sign
from webhooks.targets import Resolver, UnreachableTarget, UnsafeTarget, check_target, request_pinned

MAX_RESPONSE_BYTES = 16_384  # what is read from the endpoint
MAX_RESULT_CHARS = 4_000  # what the model is given (and the transcript keeps)


@dataclass(frozen=True)
class ToolResult:
    """status: "ok" | "timeout" | "error" | "refused"; content: what the model reads (JSON text)."""

    status: str
    content: str
    http_status: int | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def failure(status: str, message: str, http_status: int | None = None, duration_ms: int = 0) -> ToolResult:
    return ToolResult(status, json.dumps({"ok": False, "error": message}), http_status, duration_ms)


def call_http_tool(tool: HttpTool, arguments: Mapping[str, Any], secrets: str | Sequence[str], *,
                   call_id: str = "", agent_id: str = "", allow_private: bool = False,
                   resolve: Resolver | None = None, clock: Callable[[], float] = time.monotonic) -> ToolResult:
    """Call the tool once (no retry: a caller is waiting) and never take longer than its timeout."""
    started = clock()

    def elapsed() -> int:
        return int((clock() - started) * 1000)

    try:
        with gevent.Timeout(tool.timeout_s):
            return _call(tool, dict(arguments), secrets, call_id, agent_id, allow_private, resolve, elapsed)
    except gevent.Timeout:
        return failure("timeout", f"the {tool.name} service did not answer within {tool.timeout_s:g} s",
                       duration_ms=elapsed())


def _call(tool: HttpTool, arguments: dict[str, Any], secrets: str | Sequence[str], call_id: str, agent_id: str,
          allow_private: bool, resolve: Resolver | None, elapsed: Callable[[], int]) -> ToolResult:
    url, body = tool.url, None
    if tool.method == "GET":
        flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()}
        url += ("&" if "?" in url else "?") + urlencode(flat) if flat else ""
        signed = b""
    else:
        body = json.dumps({"tool": tool.name, "arguments": arguments, "call_id": call_id,
                           "agent_id": agent_id}, separators=(",", ":")).encode()
        signed = body
    headers = {**tool.headers, "Content-Type": "application/json", "User-Agent": "VoxBridge-Tools/1",
               SIGNATURE_HEADER: sign(secrets, signed), "VoxBridge-Call-Id": call_id,
               "VoxBridge-Tool": tool.name}
    try:
        target = check_target(url, allow_private, resolve)
        status, data, cut = request_pinned(target, tool.method, body, headers, tool.timeout_s, MAX_RESPONSE_BYTES)
    except UnsafeTarget as exc:
        return failure("refused", f"the {tool.name} service address is not allowed ({exc})", duration_ms=elapsed())
    except (urllib3.exceptions.HTTPError, UnreachableTarget, OSError) as exc:
        timed_out = isinstance(exc, urllib3.exceptions.TimeoutError)
        return failure("timeout" if timed_out else "error",
                       f"the {tool.name} service could not be reached ({type(exc).__name__})", duration_ms=elapsed())
    if not 200 <= status < 300:
        return failure("error", f"the {tool.name} service answered HTTP {status}", status, elapsed())
    return ToolResult("ok", _content(data, cut), status, elapsed())


def _content(data: bytes, cut: bool) -> str:
    """The response for the model: JSON as JSON (compact), anything else as text; cut to MAX_RESULT_CHARS."""
    text = data.decode("utf-8", "replace")
    try:
        text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        pass
    if cut or len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + " [truncated]"
    return text
