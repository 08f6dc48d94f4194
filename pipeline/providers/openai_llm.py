"""Any OpenAI-compatible chat-completions endpoint (OpenAI, Groq, vLLM, Ollama...) through the openai SDK.

The SDK's sync client runs on its own HTTP stack (httpx2 since openai 3.x; elevenlabs and deepgram stay on
httpx), a sync socket transport that gevent's monkey patching makes cooperative, so a streaming reply only
blocks the greenlet reading it. Timeouts and transport errors are the SDK's own types (openai.Timeout,
openai.APITimeoutError, openai.APIConnectionError), never another HTTP library's: the SDK refuses those.
SDK retries are off: the pipeline decides whether to apologise and retry, and a hidden retry would only add
dead air.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import openai

from pipeline.providers.errors import ProviderError, ProviderTimeout
from pipeline.providers.llm import DEFAULT_TOOLS, LLM, LLMEvent, TextDelta, ToolCall, to_chat_messages

log = logging.getLogger(__name__)


class OpenAICompatibleLLM(LLM):
    name = "openai"

    def __init__(self, api_key: str, model: str, base_url: str = "", temperature: float = 0.3,
                 max_tokens: int = 300, timeout_s: float = 10.0, connect_timeout_s: float = 3.0):
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.base_url = base_url or None
        # read timeout = the longest silence allowed before the first token and between tokens.
        self._client = openai.OpenAI(api_key=api_key or "unused", base_url=self.base_url, max_retries=0,
                                     timeout=openai.Timeout(timeout_s, connect=connect_timeout_s))

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatibleLLM(base_url={self.base_url!r}, model={self.model!r})"

    def stream(self, system_prompt: str, context: Mapping[str, Any] | None, turns: Sequence[Any],
               tools: Sequence[dict] = DEFAULT_TOOLS) -> Iterator[LLMEvent]:
        request: dict[str, Any] = {
            "model": self.model, "messages": to_chat_messages(system_prompt, context, turns), "stream": True,
            "temperature": self.temperature, "max_tokens": self.max_tokens,
        }
        if tools:
            request["tools"] = list(tools)
        with _mapped_errors():
            stream = self._client.chat.completions.create(**request)
            yield from self._events(stream)

    def _events(self, stream) -> Iterator[LLMEvent]:
        calls: dict[int, dict[str, str]] = {}
        finished = False
        try:
            for chunk in stream:
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        yield TextDelta(delta.content)
                    for call in (delta.tool_calls or []) if delta is not None else []:
                        _merge_tool_delta(calls, call)
                    finished = finished or choice.finish_reason is not None
        finally:
            stream.close()
        if not finished:
            raise ProviderError("stream ended before the reply was finished", provider=self.name)
        for index in sorted(calls):
            yield _tool_call(calls[index])

    def complete_json(self, system_prompt: str, user_text: str) -> dict:
        with _mapped_errors():
            completion = self._client.chat.completions.create(
                model=self.model, temperature=0,
                messages=[{"role": "system", "content": system_prompt}, {"role": "user", "content": user_text}],
                response_format={"type": "json_object"})
        content = (completion.choices[0].message.content or "") if completion.choices else ""
        content = content.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise ProviderError(f"the model did not answer with JSON: {content[:80]!r}", provider=self.name) from exc
        if not isinstance(data, dict):
            raise ProviderError("the model's JSON is not an object", provider=self.name)
        return data


def _merge_tool_delta(calls: dict[int, dict[str, str]], delta) -> None:
    """Tool calls arrive in pieces keyed by index: id and name first, the JSON arguments in fragments."""
    entry = calls.setdefault(delta.index or 0, {"id": "", "name": "", "arguments": ""})
    if delta.id:
        entry["id"] = delta.id
    if delta.function is not None:
        entry["name"] += delta.function.name or ""
        entry["arguments"] += delta.function.arguments or ""


def _tool_call(entry: dict[str, str]) -> ToolCall:
    try:
        arguments = json.loads(entry["arguments"]) if entry["arguments"].strip() else {}
    except json.JSONDecodeError:
        log.warning("tool %s called with malformed arguments; ignoring them", entry["name"])
        arguments = {}
    return ToolCall(name=entry["name"], arguments=arguments if isinstance(arguments, dict) else {},
                    id=entry["id"])


class _mapped_errors:
    """Turn SDK/transport exceptions into ProviderError / ProviderTimeout (messages carry no secrets)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, ProviderError | GeneratorExit):
            return False
        if isinstance(exc, openai.APITimeoutError):
            raise ProviderTimeout("no answer in time", provider="openai") from exc
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            raise ProviderError(_status_message(exc), provider="openai", status=status,
                                retryable=status >= 500 or status == 429) from exc
        if isinstance(exc, openai.APIConnectionError | openai.APIError):
            raise ProviderError(f"connection failed: {type(exc.__cause__ or exc).__name__}",
                                provider="openai") from exc
        return False


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") or (body.get("error") or {}).get("message") if body else None
    return str(message or "request failed")[:200]
