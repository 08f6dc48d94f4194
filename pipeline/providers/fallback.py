"""What happens when a provider fails mid-call: retry, apologise, fall back offline, or end the call cleanly.

Wrappers around the interfaces, so the pipeline gets sensible behaviour without its own error branches:
- FallbackTTS: the cloud voice fails before any audio -> the same sentence in the offline voice (no dead air).
- ResilientLLM: a turn fails before any text -> retry once; still failing -> an apology line; after
  `max_failed_turns` failed turns in a row -> a goodbye line and end_call. Keep one per call (it counts failures).
Each takes `on_fallback(detail)`: a fallback that happens is reported (the call records it), never silent.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pipeline.providers.errors import ProviderError
from pipeline.providers.llm import DEFAULT_TOOLS, LLM, LLMEvent, TextDelta, ToolCall
from pipeline.providers.tts import TTS

log = logging.getLogger(__name__)
APOLOGY = "I'm sorry, I didn't get that. Could you say it again?"
GOODBYE = "I'm sorry, we are having technical difficulties. We will call you back. Goodbye."


Report = Callable[[str], None]


class FallbackTTS(TTS):
    def __init__(self, primary: TTS, fallback: TTS, on_fallback: Report | None = None):
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name}+{fallback.name}"
        self.on_fallback = on_fallback
        self._reported = False  # once per call: every later sentence would say the same

    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]:
        produced = False
        try:
            for chunk in self.primary.synthesize(text, sample_rate):
                produced = True
                yield chunk
            return
        except ProviderError as exc:
            if produced:  # half a sentence was played; repeating it in another voice would be worse
                raise
            log.warning("TTS %s failed, speaking with %s: %s", self.primary.name, self.fallback.name, exc)
            if self.on_fallback is not None and not self._reported:
                self._reported = True
                self.on_fallback(f"{self.primary.name} failed ({exc}); speaking with {self.fallback.name}")
        yield from self.fallback.synthesize(text, sample_rate)


class ResilientLLM(LLM):
    def __init__(self, primary: LLM, retries: int = 1, apology: str = APOLOGY, goodbye: str = GOODBYE,
                 max_failed_turns: int = 2, on_fallback: Report | None = None):
        self.primary = primary
        self.on_fallback = on_fallback
        self.name = primary.name
        self.retries, self.apology, self.goodbye = retries, apology, goodbye
        self.max_failed_turns = max_failed_turns
        self.failed_turns = 0
        self.last_error: ProviderError | None = None

    def stream(self, system_prompt: str, context: Mapping[str, Any] | None, turns: Sequence[Any],
               tools: Sequence[dict] = DEFAULT_TOOLS) -> Iterator[LLMEvent]:
        said = False
        for attempt in range(self.retries + 1):
            try:
                for event in self.primary.stream(system_prompt, context, turns, tools):
                    said = said or isinstance(event, TextDelta)
                    yield event
                self.failed_turns = 0
                return
            except ProviderError as exc:
                self.last_error = exc
                log.warning("LLM turn failed (attempt %d): %s", attempt + 1, exc)
                if said or not exc.retryable:
                    break
        self.failed_turns += 1
        lead = " " if said else ""
        if self.on_fallback is not None:
            self.on_fallback(f"{self.name} turn failed ({self.last_error}); "
                             f"{'goodbye' if self.failed_turns >= self.max_failed_turns else 'apology'} spoken")
        if self.failed_turns >= self.max_failed_turns:
            yield TextDelta(lead + self.goodbye)
            if any((t.get("function") or {}).get("name") == "end_call" for t in tools):
                yield ToolCall("end_call", {"reason": "provider failure"}, "fallback-end")
            return
        yield TextDelta(lead + self.apology)

    def complete_json(self, system_prompt: str, user_text: str) -> dict:
        return self.primary.complete_json(system_prompt, user_text)
