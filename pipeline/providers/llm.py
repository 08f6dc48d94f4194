"""The LLM interface: prompt + call context + conversation so far + tools in, text deltas and tool calls out."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Turn:
    """One line of the conversation. speaker: "agent" | "caller" | "system". Other shapes are accepted too."""

    speaker: str
    text: str


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    """A tool the model decided to call: end_call {reason?} or transfer_call {destination, reason?}."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""


LLMEvent = TextDelta | ToolCall

END_CALL = {
    "type": "function",
    "function": {
        "name": "end_call",
        "description": "Hang up the call politely once the conversation is finished or the caller asks to stop.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why the call ends."}},
            "required": [],
        },
    },
}
TRANSFER_CALL = {
    "type": "function",
    "function": {
        "name": "transfer_call",
        "description": "Transfer the caller to a human or another number when they ask for it or you cannot help.",
        "parameters": {
            "type": "object",
            "properties": {
                "destination": {"type": "string", "description": "Number or extension to transfer to."},
                "reason": {"type": "string"},
            },
            "required": ["destination"],
        },
    },
}
DEFAULT_TOOLS: tuple[dict, ...] = (END_CALL, TRANSFER_CALL)

_ROLES = {"agent": "assistant", "assistant": "assistant", "caller": "user", "user": "user", "system": "system"}


def turn_fields(turn: Any) -> tuple[str, str]:
    """(speaker, text) from a Turn, any object with .speaker/.text (or .role/.content), or such a dict."""
    if isinstance(turn, Mapping):
        speaker = turn.get("speaker") or turn.get("role") or ""
        text = turn.get("text") if turn.get("text") is not None else turn.get("content", "")
    else:
        speaker = getattr(turn, "speaker", None) or getattr(turn, "role", "")
        text = getattr(turn, "text", None)
        text = text if text is not None else getattr(turn, "content", "")
    return str(speaker).lower(), str(text or "")


def is_caller(speaker: str) -> bool:
    return _ROLES.get(speaker) == "user"


def to_chat_messages(system_prompt: str, context: Mapping[str, Any] | None, turns: Sequence[Any]) -> list[dict]:
    """OpenAI chat messages: the agent prompt, then the call's context as data (not instructions), then the turns."""
    system = system_prompt.strip() or "You are a helpful phone agent. Keep replies short and speakable."
    if context:
        # The context comes from the API caller; it is framed as data so it cannot pose as the agent's instructions.
        system += "\n\nCall context (JSON data supplied with the call):\n" + json.dumps(dict(context), default=str)
    messages = [{"role": "system", "content": system}]
    for turn in turns:
        speaker, text = turn_fields(turn)
        if speaker == "tool":
            # A tool call and its result (pipeline/tools/turns.py); a transcript's bare tool line is no message.
            messages += turn.messages() if callable(getattr(turn, "messages", None)) else []
            continue
        role = _ROLES.get(speaker, "user")
        if text.strip():
            messages.append({"role": role, "content": text})
    return messages


class LLM(ABC):
    """One instance per agent configuration; stream() is safe to call once per turn from any greenlet."""

    name = "llm"

    @abstractmethod
    def stream(
        self,
        system_prompt: str,
        context: Mapping[str, Any] | None,
        turns: Sequence[Any],
        tools: Sequence[dict] = DEFAULT_TOOLS,
    ) -> Iterator[LLMEvent]:
        """Yield TextDelta pieces of the reply as they arrive and ToolCall events once complete."""

    @abstractmethod
    def complete_json(self, system_prompt: str, user_text: str) -> dict:
        """One non-streaming answer that must be a JSON object (used by post-call analysis)."""
