"""Keypad answers and tool steps in the scripted agent's questions (Agent.settings.questions).

A question may be answered with the keypad: {"key": "account", "text": "Enter your account number, then
pound.", "input": "dtmf", "max_digits": 8, "terminator": "#", "timeout_s": 5}. The digits pressed become the
caller's answer when the terminator is pressed, max_digits have been pressed, or timeout_s passes after the
last key. A step may instead call one of the agent's tools: {"key": "slot", "tool": "check_slot",
"arguments": {...}, "say": "The next free slot is {slot}."}: {name} is filled from the tool's JSON result.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.frames import Frame
from pipeline.tools.turns import tool_result_data

TERMINATORS = ("#", "*", "")
MAX_DIGITS_RANGE = (1, 32)
TIMEOUT_RANGE = (1.0, 30.0)
QUESTION_FIELDS = {"key", "text", "question", "type", "input", "max_digits", "terminator", "timeout_s", "tool",
                   "arguments", "say"}


@dataclass(frozen=True)
class CollectDigits(Frame):
    """The scripted agent's question wants keys: how the session groups them into one answer."""

    max_digits: int = 16
    terminator: str = "#"
    timeout_s: float = 5.0


def collect_from(question: dict[str, Any]) -> CollectDigits | None:
    if question.get("input") != "dtmf":
        return None
    return CollectDigits(max_digits=int(question.get("max_digits", 16)), terminator=str(question.get("terminator",
                         "#")), timeout_s=float(question.get("timeout_s", 5.0)))


def question_problems(question: Any, where: str, tool_names: set[str]) -> list[tuple[str, str]]:
    if not isinstance(question, dict):
        return []  # a plain string question: nothing keypad-related to check
    unknown = sorted(set(question) - QUESTION_FIELDS)
    if unknown:
        return [(f"{where}.{str(unknown[0])[:40]}", f"unknown question field {str(unknown[0])[:40]!r}")]
    problems = []
    if "tool" in question:
        if question["tool"] not in tool_names:
            problems.append((f"{where}.tool", f"tool {str(question['tool'])[:64]!r} is not one of the agent's tools"))
        if not isinstance(question.get("arguments", {}), dict):
            problems.append((f"{where}.arguments", "arguments must be an object"))
        if not isinstance(question.get("say", ""), str):
            problems.append((f"{where}.say", "say must be a string"))
    if question.get("input", "speech") not in ("speech", "dtmf"):
        problems.append((f"{where}.input", "input must be speech or dtmf"))
    max_digits = question.get("max_digits", 16)
    if isinstance(max_digits, bool) or not isinstance(max_digits, int) \
            or not MAX_DIGITS_RANGE[0] <= max_digits <= MAX_DIGITS_RANGE[1]:
        problems.append((f"{where}.max_digits", "max_digits must be an integer from 1 to 32"))
    if question.get("terminator", "#") not in TERMINATORS:
        problems.append((f"{where}.terminator", "terminator must be \"#\", \"*\" or \"\" (none)"))
    timeout = question.get("timeout_s", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]:
        problems.append((f"{where}.timeout_s", "timeout_s must be a number from 1 to 30"))
    return problems


_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]{0,63})\}(?!\})")  # {name}, never {{templating}}
FAILED_TOOL_TEXT = "Sorry, I couldn't look that up right now."


def tool_turn(turn: Any) -> tuple[str, dict[str, Any]] | None:
    """(tool name, JSON result) of a tool line (a session ToolTurn or a transcript entry), else None."""
    if isinstance(turn, dict):
        if turn.get("speaker") != "tool" or not isinstance(turn.get("tool"), dict):
            return None
        name, result = turn["tool"].get("name"), turn["tool"].get("result")
    else:
        if getattr(turn, "speaker", None) != "tool":
            return None
        name, result = getattr(turn, "name", None), getattr(turn, "result", None)
    return str(name or ""), tool_result_data(str(result or ""))


def render_result(say: str, result: dict[str, Any]) -> str:
    """The step's line with {name} filled from the tool's result; a failed or unfillable result apologises."""
    if result.get("ok") is False:
        return FAILED_TOOL_TEXT
    missing = [m for m in _PLACEHOLDER.findall(say) if not isinstance(result.get(m), str | int | float)]
    if missing:
        return FAILED_TOOL_TEXT
    return _PLACEHOLDER.sub(lambda m: str(result[m.group(1)])[:200], say)
