"""A tool call and its result as one line of the conversation.

In the session's history a ToolTurn becomes, for an OpenAI-compatible model, the assistant message that
called the tool and the tool message answering it (pipeline/providers/llm.py to_chat_messages); in the
transcript it is a "tool" line whose text is readable and whose `tool` object keeps name, arguments and the
(truncated) result.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TRANSCRIPT_ARGUMENTS_CHARS = 1_000
TRANSCRIPT_RESULT_CHARS = 1_000
TOOL_SPEAKER = "tool"


@dataclass(frozen=True)
class ToolTurn:
    name: str
    arguments: dict[str, Any]
    result: str  # what the model is given (JSON text)
    status: str = "ok"
    id: str = ""
    duration_ms: int = 0
    speaker: str = TOOL_SPEAKER
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return f"{self.name}({_short(json.dumps(self.arguments, default=str), 200)}) -> {_short(self.result, 300)}"

    def record(self) -> dict[str, Any]:
        """The transcript's `tool` object (also the call event's data)."""
        return {"name": self.name, "id": self.id, "status": self.status, "duration_ms": self.duration_ms,
                "arguments": _short(json.dumps(self.arguments, default=str), TRANSCRIPT_ARGUMENTS_CHARS),
                "result": _short(self.result, TRANSCRIPT_RESULT_CHARS)}

    def messages(self) -> list[dict[str, Any]]:
        """The OpenAI chat messages: the assistant's call, then the tool's answer."""
        call_id = self.id or f"call_{self.name}"
        return [{"role": "assistant", "content": None,
                 "tool_calls": [{"id": call_id, "type": "function",
                                 "function": {"name": self.name, "arguments": json.dumps(self.arguments)}}]},
                {"role": "tool", "tool_call_id": call_id, "content": self.result}]


def tool_result_data(result: str) -> dict[str, Any]:
    """The result as a JSON object when it is one ({} otherwise): what the scripted agent reads."""
    try:
        value = json.loads(result)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
