"""The Session's side of tools beyond end_call / transfer_call: customer HTTP tools and the keypad.

A mixin of pipeline.session.Session (it uses the session's clock, history, callbacks and speech), like
pipeline/caller_input.py. A customer tool runs in a greenlet of its own, not in the reply's: barge-in kills the
reply (the caller is heard at once) and a hang-up stops the session, but the request still finishes within its
timeout and its result is still recorded (transcript line, call event). While the reply waits for it, a filler
line is said once the tool has taken longer than tool_filler_after, and the dead-air watchdog is held off:
the tool's own timeout bounds the wait. The result then goes back to the model, which speaks the answer (or
apologises for a timeout or an error, which reach it as results too).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import gevent
import gevent.event

from pipeline.frames import TurnRecord
from pipeline.interfaces import ToolCall
from pipeline.tools.definitions import RESERVED, valid_dtmf
from pipeline.tools.digits import CollectDigits
from pipeline.tools.http import ToolResult, failure
from pipeline.tools.turns import TOOL_SPEAKER, ToolTurn

log = logging.getLogger("pipeline.session")

MAX_TOOL_ROUNDS = 3  # model -> tool -> model ... per caller turn: a model looping on tools is cut off
POLL_S = 0.05


class ToolUse:
    def _declared_tools(self) -> set[str]:
        return {(t.get("function") or {}).get("name") for t in self.config.tools or ()}

    def _run_agent_tools(self, tools: Sequence[ToolCall]) -> bool:
        """Run the keypad and customer tools among `tools`; True when a result must go back to the model."""
        followup = False
        declared = self._declared_tools()
        for tool in tools:
            if self.ended or tool.name not in declared or tool.name in ("end_call", "transfer_call"):
                continue
            if tool.name == "send_dtmf":
                self._press_keys(tool)
            elif tool.name not in RESERVED:
                followup = self._call_customer_tool(tool) or followup
        return followup and not self.ended and self._reply is gevent.getcurrent()

    def _press_keys(self, tool: ToolCall) -> None:
        """send_dtmf: only a plain keypad string reaches the switch. The model is not asked again (the far end
        answers the keys), but the call and its result go into the history so its next turn knows."""
        started = self.now_ms()
        digits = valid_dtmf((tool.arguments or {}).get("digits"))
        if digits is None:
            self._record_tool(tool, failure("refused", "digits must be 1-32 of 0-9 * # A-D and w/W pauses"), started)
            return
        # Sent and recorded in a greenlet of its own, as a customer tool is: a phone menu answers a key at once,
        # and its speech barging in kills this reply while the switch's reply to the keys is on its way; the
        # keys went regardless, so the line and the history must say so.
        gevent.spawn(self._send_keys, tool, digits, started).join()

    def _send_keys(self, tool: ToolCall, digits: str, started: float) -> None:
        try:
            sent = bool(self.callbacks.send_dtmf(digits))
        except Exception:
            log.exception("send_dtmf callback failed")
            sent = False
        result = ToolResult("ok", json.dumps({"ok": True, "sent": digits})) if sent else \
            failure("error", "the keys could not be sent")
        self._record_tool(tool, result, started)

    def _call_customer_tool(self, tool: ToolCall) -> bool:
        done = gevent.event.AsyncResult()
        started = self.now_ms()
        gevent.spawn(self._tool_worker, tool, done, started)
        filler_at = self.clock.now() + self.config.tool_filler_after
        filled = False
        while not done.ready():
            if not filled and self.clock.now() >= filler_at and self.config.tool_filler_text:
                filled = True
                self._speak_sentence(self.config.tool_filler_text)
                continue
            self._progress_at = self.now_ms()  # waiting on a tool bounded by its own timeout is not dead air
            self.clock.sleep(POLL_S)
        self._progress_at = self.now_ms()
        return True

    def _tool_worker(self, tool: ToolCall, done: gevent.event.AsyncResult, started: float) -> None:
        try:
            result = self.callbacks.run_tool(tool.name, dict(tool.arguments or {}))
        except Exception:
            log.exception("tool %s failed", tool.name[:64])
            result = failure("error", f"the {tool.name[:64]} tool failed")
        if not isinstance(result, ToolResult):
            result = failure("error", f"the {tool.name[:64]} tool is not available")
        try:
            self._record_tool(tool, result, started)
        finally:
            done.set(result)

    def _record_tool(self, tool: ToolCall, result: ToolResult, started: float) -> None:
        turn = ToolTurn(tool.name, dict(tool.arguments or {}), result.content, result.status, tool.id,
                        result.duration_ms)
        self.history.append(turn)
        record = TurnRecord(TOOL_SPEAKER, turn.text, int(started), int(self.now_ms()), source="tool",
                            data=turn.record())
        try:
            self.callbacks.on_turn(record)
        except Exception:
            log.exception("on_turn callback failed")

    # ----- keypad answers (a scripted question answered with keys: pipeline/tools/digits.py) -----------------
    _collect: CollectDigits | None = None

    def _on_llm_control(self, event: object) -> None:
        if isinstance(event, CollectDigits):
            self._collect = event

    def _digits_complete(self, digit: str) -> bool:
        collect = self._collect
        if collect is None:
            return digit == "#"
        if collect.terminator and digit == collect.terminator:
            return True
        return len(self._dtmf) >= collect.max_digits

    def _digit_gap(self) -> float:
        return self._collect.timeout_s if self._collect is not None else self.config.dtmf_gap

    def _collected_digits(self) -> str:
        """The keys pressed as one answer, without the terminator; the collection ends with it."""
        collect, self._collect = self._collect, None
        digits = "".join(self._dtmf)
        terminator = collect.terminator if collect is not None else "#"
        return digits[:-1] if terminator and digits.endswith(terminator) else digits
