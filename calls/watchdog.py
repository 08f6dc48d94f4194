"""The watchdog: every ten seconds, close live calls that outlived their limits (ringing past the originate
timeout, or longer than MAX_CALL_DURATION), whatever the reason their end was missed. With several instances
each watches the calls of the nodes it owns, and the calls on no node yet."""
from __future__ import annotations

import datetime as dt
import logging

import gevent

from calls.call_control import CallControl
from calls.control_context import ControlContext
from calls.ending import AttemptEnd
from esl.errors import EslError
from models import LIVE_STATUSES, Call, database, utcnow

log = logging.getLogger(__name__)
WATCHDOG_INTERVAL_S = 10


class Watchdog:
    def __init__(self, ctx: ControlContext, ending: AttemptEnd, control: CallControl) -> None:
        self.ctx = ctx
        self.ending = ending
        self.control = control
        self._greenlet: gevent.Greenlet | None = None

    def run_pass(self) -> int:
        """Close calls that outlived their limits; how many were closed."""
        closed = 0
        now = utcnow()
        config = self.ctx.config
        ring_limit = dt.timedelta(seconds=config.originate_timeout_s + 60)
        call_limit = dt.timedelta(seconds=config.max_call_duration_s)
        with database.connection_context():
            # Web calls have no channel: their session's own limit (max_duration) and webcall/ end them.
            for call in Call.select().where(Call.status.in_(LIVE_STATUSES), Call.direction != "web"):
                if call.node and not self.ctx.ownership.owns(call.node):
                    continue  # its node's owner watches it (calls/ownership.py)
                started = call.answered_at or call.dialed_at or call.created_at
                limit = call_limit if call.answered_at else ring_limit
                if now - started <= limit:
                    continue
                live = self.ctx.calls.get(call.id)
                # Close the call first, then kill its channel: the kill's CHANNEL_HANGUP_COMPLETE may come
                # before the api reply, and it must find the call already ended as ALLOTTED_TIMEOUT.
                self.ending.end(call.id, "ALLOTTED_TIMEOUT", None, reason="watchdog: the call outlived its limit")
                if live is not None:
                    try:
                        self.control.kill(live, call.channel_uuid or call.id)
                    except EslError:
                        pass
                closed += 1
        return closed

    def _loop(self) -> None:
        while True:
            gevent.sleep(WATCHDOG_INTERVAL_S)
            try:
                self.run_pass()
            except Exception:
                log.exception("watchdog pass failed")

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill()
