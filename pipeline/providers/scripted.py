"""The offline default "LLM": a deterministic agent that follows the agent's script.

Greeting, then each question in order, then the closing line and an end_call tool call. The caller's answers are
captured per question key for post-call analysis. Its state is derived from the turns it is given (not kept
between calls), so one instance can serve many calls and a truncated or repeated turn cannot desynchronise it.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.providers.errors import ProviderConfigError
from pipeline.providers.llm import DEFAULT_TOOLS, LLM, LLMEvent, TextDelta, ToolCall, is_caller, turn_fields
from pipeline.tools.digits import CollectDigits, collect_from, render_result, tool_turn

_YES_PHRASES = ("of course", "no problem", "not a problem", "that's right", "that is right", "sounds good",
                "go ahead", "why not", "i do", "i will", "i can", "yes please")
_NO_PHRASES = ("not really", "don't think so", "do not think so", "no thanks", "no thank you", "not interested",
               "rather not", "i don't", "i do not", "i can't", "i cannot", "i won't", "not now")
_YES = {"yes", "yeah", "yep", "yup", "yea", "ya", "sure", "correct", "right", "ok", "okay", "absolutely",
        "definitely", "certainly", "confirm", "confirmed", "affirmative", "indeed", "fine", "great", "perfect",
        "alright", "agreed", "exactly"}
_NO = {"no", "nope", "nah", "not", "don't", "dont", "never", "negative", "cancel", "wrong", "incorrect", "can't",
       "cannot", "won't", "decline"}
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_TYPES = ("boolean", "string", "number", "integer")


def interpret_yes_no(text: str) -> bool | None:
    """Loose yes/no: phrases first ("no problem" is a yes), then the first yes/no word; DTMF 1 = yes, 2 = no."""
    lowered = " " + re.sub(r"[^a-z0-9' ]+", " ", text.lower()) + " "
    if lowered.strip() in ("1", "2"):
        return lowered.strip() == "1"
    hits = [(lowered.find(f" {p} "), True) for p in _YES_PHRASES if f" {p} " in lowered]
    hits += [(lowered.find(f" {p} "), False) for p in _NO_PHRASES if f" {p} " in lowered]
    if hits:
        return min(hits)[1]
    for word in lowered.split():
        if word in _YES:
            return True
        if word in _NO:
            return False
    return None


def interpret_number(text: str) -> float | None:
    match = re.search(r"-?\d+(?:\.\d+)?", text)
    if match:
        return float(match.group())
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in _NUMBER_WORDS:
            return float(_NUMBER_WORDS[word])
    return None


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    type: str = "string"
    options: dict[str, Any] = field(default_factory=dict, compare=False)  # keypad input or a tool step

    @property
    def tool(self) -> str | None:
        return self.options.get("tool")

    @property
    def collect(self) -> CollectDigits | None:
        return collect_from(self.options)

    def interpret(self, answer: str) -> tuple[bool, Any]:
        """(understood, value) for the caller's answer to this question."""
        if self.type == "boolean":
            value = interpret_yes_no(answer)
            return value is not None, value
        if self.type in ("number", "integer"):
            number = interpret_number(answer)
            if number is None:
                return False, None
            return True, int(number) if self.type == "integer" else number
        cleaned = answer.strip()
        return bool(cleaned), cleaned


@dataclass
class ScriptState:
    index: int = 0
    retries: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    last_understood: bool = True
    after_tool: str | None = None  # a tool step just returned: its line is said next

    @property
    def started(self) -> bool:
        return self.index > 0 or self.retries > 0


class ScriptedAgent(LLM):
    name = "scripted"

    def __init__(self, greeting: str = "", questions: Sequence[Question] = (), closing: str = "",
                 acknowledgement: str = "Thank you.", reprompt: str = "Sorry, I didn't catch that.",
                 max_retries: int = 1):
        self.greeting = greeting.strip()
        self.questions = list(questions)
        self.closing = closing.strip() or "Thank you for your time. Goodbye."
        self.acknowledgement = acknowledgement
        self.reprompt = reprompt
        self.max_retries = max_retries

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ScriptedAgent:
        """settings: greeting, questions [{key, text, type?}], closing, optional analysis_schema to infer types."""
        schema_props = ((settings.get("analysis_schema") or {}).get("properties") or {})
        questions = []
        for i, raw in enumerate(settings.get("questions") or []):
            if isinstance(raw, str):
                raw = {"key": f"q{i + 1}", "text": raw}
            key = str(raw.get("key") or f"q{i + 1}")
            text = str(raw.get("text") or raw.get("question") or "").strip()
            options = {k: raw[k] for k in ("tool", "arguments", "say", "input", "max_digits", "terminator",
                                           "timeout_s") if k in raw}
            if "tool" in options:
                questions.append(Question(key=key, text="", options=options))
                continue
            if not text:
                raise ProviderConfigError(f"question {key!r} has no text", provider=cls.name)
            qtype = raw.get("type") or (schema_props.get(key) or {}).get("type") or "string"
            if qtype not in _TYPES:
                raise ProviderConfigError(f"question {key!r} has unsupported type {qtype!r}", provider=cls.name)
            questions.append(Question(key=key, text=text, type=qtype, options=options))
        return cls(greeting=str(settings.get("greeting") or ""), questions=questions,
                   closing=str(settings.get("closing") or ""), max_retries=int(settings.get("max_retries", 1)))

    def replay(self, turns: Sequence[Any]) -> ScriptState:
        """Walk the caller's turns through the script to find where the conversation is."""
        state = ScriptState()
        for turn in _after_agent_spoke(turns):
            speaker, text = turn_fields(turn)
            current = self.questions[state.index] if state.index < len(self.questions) else None
            called = tool_turn(turn)
            if called is not None:
                if current is not None and current.tool == called[0]:
                    state.after_tool = render_result(str(current.options.get("say") or ""), called[1])
                    state.index += 1
                continue
            if speaker in ("agent", "assistant") or (is_caller(speaker) and text.strip()):
                state.after_tool = None
            if not is_caller(speaker) or not text.strip() or current is None or current.tool:
                continue
            question = current
            understood, value = question.interpret(text)
            state.last_understood = understood
            if understood:
                state.answers[question.key] = value
            if understood or state.retries >= self.max_retries:
                state.index += 1
                state.retries = 0
            else:
                state.retries += 1
        return state

    def answers(self, turns: Sequence[Any]) -> dict[str, Any]:
        """The caller's answers captured per question key (unanswered questions are absent)."""
        return self.replay(turns).answers

    def reply(self, turns: Sequence[Any]) -> tuple[str, bool]:
        """(text to say, whether to end the call after it)."""
        text, end, _question = self.step(turns)
        return text, end

    def step(self, turns: Sequence[Any]) -> tuple[str, bool, Question | None]:
        """(text to say, whether to end the call after it, the question it asks: a tool step or keypad input)."""
        state = self.replay(turns)
        if state.after_tool is not None:
            if state.index >= len(self.questions):
                return " ".join(p for p in (state.after_tool, self.closing) if p), True, None
            question = self.questions[state.index]
            return " ".join(p for p in (state.after_tool, question.text) if p), False, question
        answers = _after_agent_spoke(turns)
        caller_spoke = any(is_caller(turn_fields(t)[0]) and turn_fields(t)[1].strip() for t in answers)
        agent_spoke = any(turn_fields(t)[0] in ("agent", "assistant") for t in turns)
        if not caller_spoke or not agent_spoke:
            opening = "" if agent_spoke else self.greeting
            first = self.questions[0].text if self.questions else ""
            if not first and agent_spoke and not (self.questions and self.questions[0].tool):
                first = self.greeting
            return " ".join(p for p in (opening, first) if p), False, self.questions[0] if self.questions else None
        if state.index >= len(self.questions):
            lead = self.acknowledgement if self.questions and state.last_understood else ""
            return " ".join(p for p in (lead, self.closing) if p), True, None
        question = self.questions[state.index]
        acknowledged = state.last_understood and state.started
        lead = self.reprompt if state.retries else (self.acknowledgement if acknowledged else "")
        return " ".join(p for p in (lead, question.text) if p), False, question

    def stream(self, system_prompt: str, context: Mapping[str, Any] | None, turns: Sequence[Any],
               tools: Sequence[dict] = DEFAULT_TOOLS) -> Iterator[LLMEvent]:
        text, end, question = self.step(turns)
        if question is not None and question.collect is not None:
            yield question.collect  # first: keys pressed over the question already count as its answer
        # Word-sized deltas, like a real model, so downstream sentence splitting behaves the same.
        for i, word in enumerate(text.split(" ") if text else []):
            yield TextDelta(word if i == 0 else " " + word)
        tool_names = {(t.get("function") or {}).get("name") for t in tools}
        if question is not None and question.tool in tool_names:
            yield ToolCall(name=question.tool, arguments=dict(question.options.get("arguments") or {}),
                           id=f"scripted-{question.key}")
        if end and "end_call" in tool_names:
            yield ToolCall(name="end_call", arguments={"reason": "script complete"}, id="scripted-end")

    def complete_json(self, system_prompt: str, user_text: str) -> dict:
        raise ProviderConfigError("the scripted agent has no free-form JSON mode; use answers(turns)",
                                  provider=self.name)


def _after_agent_spoke(turns: Sequence[Any]) -> list[Any]:
    """The turns from the agent's first one on: what a callee says before the agent has said anything (the
    "Hello?" of picking up) answers no question. Caller turns alone (no agent turn given) are all answers."""
    for i, turn in enumerate(turns):
        # A tool line counts as the agent acting: its turn is recorded once its speech has played, after it.
        if turn_fields(turn)[0] in ("agent", "assistant", "tool"):
            return list(turns[i:])
    return list(turns)
