"""An OpenAI-compatible chat-completions server: POST /v1/chat/completions, SSE streaming or plain JSON.

Streams exactly like the real API: `data: {chat.completion.chunk}` events (role first, content deltas, tool_calls
deltas with the id/name first and the JSON arguments in fragments, a final chunk with finish_reason), then
`data: [DONE]`. Replies are scripted per request; each request may carry a Fault.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from tests.fakes.http import FakeHTTPServer, Request, Writer


@dataclass
class ChatReply:
    text: str = ""
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)
    fragment: int = 8  # argument JSON is streamed in pieces of this many characters


class FakeOpenAI(FakeHTTPServer):
    def __init__(self, api_key: str = "sk-test", model: str = "fake-gpt"):
        super().__init__()
        self.api_key = api_key
        self.model = model
        self.replies: list[ChatReply] = []  # one per request; when empty, echo the last user message

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def handle(self, request: Request, writer: Writer) -> None:
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return writer.send_body(404, _error("Not found", "invalid_request_error"))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return writer.send_body(401, _error("Incorrect API key provided.", "invalid_request_error",
                                                "invalid_api_key"))
        if writer.fault.status:
            return writer.send_body(writer.fault.status, _error("The server had an error.", "server_error"))
        body = request.json()
        reply = self.replies.pop(0) if self.replies else ChatReply(text=_echo(body))
        if body.get("stream"):
            return self._stream(body, reply, writer)
        return writer.send_body(200, json.dumps(self._completion(body, reply)).encode())

    def _completion(self, body: dict, reply: ChatReply) -> dict:
        message: dict = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                                      "function": {"name": n, "arguments": json.dumps(a)}}
                                     for i, (n, a) in enumerate(reply.tool_calls)]
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}

    def _stream(self, body: dict, reply: ChatReply, writer: Writer) -> None:
        writer.start_chunked(200, "text/event-stream; charset=utf-8")
        chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())

        def event(delta: dict, finish: str | None = None) -> None:
            chunk = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                     "model": body.get("model", self.model), "system_fingerprint": "fp_fake",
                     "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            writer.chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        event({"role": "assistant", "content": "", "refusal": None})
        words = reply.text.split(" ") if reply.text else []
        for i, word in enumerate(words):
            event({"content": word if i == 0 else " " + word})
        for index, (name, arguments) in enumerate(reply.tool_calls):
            event({"tool_calls": [{"index": index, "id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                                   "function": {"name": name, "arguments": ""}}]})
            raw = json.dumps(arguments)
            for start in range(0, len(raw), reply.fragment):
                event({"tool_calls": [{"index": index, "function": {"arguments": raw[start:start + reply.fragment]}}]})
        event({}, "tool_calls" if reply.tool_calls else "stop")
        writer.chunk(b"data: [DONE]\n\n")
        writer.end_chunked()


def _echo(body: dict) -> str:
    users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
    return f"You said: {users[-1]}." if users else "Hello."


def _error(message: str, kind: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
