"""The dialer, the dispatcher's side: how many calls may start now, and dialing one claimed call.

Two steps. prepare(), ahead of the call's originate slot: its organization's limit, the dial rules, the route and
the originate command, and whether its last attempt's channel is still up (a refused call ends here and takes no
slot). dial(), in the slot: admits the call (the organization's limit, a live node), takes the slot, registers it
as live and sends the originate in a greenlet of its own; the BACKGROUND_JOB's -ERR ends the attempt, a +OK leaves
the call to its channel events (channel_events.py). Any instance dials on any node; when another instance owns the
node's events (calls/ownership.py), this one lets go of the call once the job has returned.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gevent

from calls import dialing
from calls.control_context import ControlContext
from calls.ending import AttemptEnd
from calls.limits import Pacer
from calls.routes import AccountNotProvisioned, OutboundRoutes
from calls.state import transition
from esl import commands
from esl.errors import EslError, EslNotConnected, UnsafeValue
from models import LIVE_STATUSES, QUEUED, Call, Organization, database, utcnow
from observability.context import call_context
from observability.metrics import count_dial

if TYPE_CHECKING:
    from calls.nodes import Node

log = logging.getLogger(__name__)
JOB_RESULT_GRACE_S = 0.25
# The dispatcher claims the calls whose originate slots come due within this many seconds and starts each in
# its slot: one claim per tenth of a second instead of one per slot (a claim costs milliseconds of database
# round trips, which at 100 calls/s would eat the process), and a claimed call waits at most this long.
PACE_AHEAD_S = 0.1


@dataclass
class Originate:
    """A claimed call checked and ready to leave: what takes a round trip is done before its originate slot, so
    the slot only sends (the rate a carrier counts is the slots', not the slots' plus a varying preparation)."""
    call: Call
    org_limit: int | None
    command: commands.ApiCall


class Dialer:
    def __init__(self, ctx: ControlContext, ending: AttemptEnd, routes: OutboundRoutes,
                 socket_target: Callable[[], str | None], clock: Callable[[], float] = time.monotonic) -> None:
        """socket_target: the app's socket address for FreeSWITCH, None when the socket server is not running."""
        self.ctx = ctx
        self.ending = ending
        self.routes = routes
        self.socket_target = socket_target
        self.pacer = Pacer(ctx.config.calls_per_second, clock=clock)

    def capacity(self) -> int:
        if not self.ctx.calls.reconciled:
            return 0  # until FreeSWITCH's live calls are re-adopted, the limits do not know them
        return min(self.ctx.calls.limits.free(), self.pacer.due(within=PACE_AHEAD_S), self.ctx.pool.capacity())

    def wait_time(self) -> float:
        """Seconds until the next originate slot: the dispatcher starts each claimed call in its slot."""
        return self.pacer.wait_time()

    def prepare(self, call: Call) -> Originate | None:
        """Everything a claimed call needs before it may leave, done ahead of its slot so that the slot only sends:
        its organization's limit, the dial rules, the route and the originate command, and whether a previous
        attempt's channel is still up. None: the call was ended here and is not dialed."""
        with call_context(call.id):
            try:
                with database.connection_context():
                    return self._prepare(call)
            except UnsafeValue as exc:
                with database.connection_context():
                    self._not_dialed(call, "INVALID_NUMBER_FORMAT", f"not dialed: {exc}")
            except AccountNotProvisioned as exc:
                with database.connection_context():
                    self._not_dialed(call, "NORMAL_TEMPORARY_FAILURE", str(exc))
            except EslError as exc:
                # The previous attempt's node did not answer uuid_exists: nothing was sent, and ringing twice is
                # worse than waiting, so the call goes back to the queue with its attempt unspent.
                log.warning("call %s: could not ask whether its previous channel is up: %s", call.id, exc)
                with database.connection_context():
                    self._defer(call, 5, "its previous attempt's node did not answer whether that channel is up")
            except Exception:
                self._raised(call, "preparing the originate")
            return None

    def dial(self, call: Call, originate: Originate | None = None) -> None:
        """Send a claimed call's originate now, in its slot (prepared first, in a greenlet of its own, if the caller
        did not prepare it)."""
        if originate is None:
            gevent.spawn(self._prepare_and_dial, call)
            return
        if not self.ctx.calls.limits.admits(call.organization_id, originate.org_limit):
            # The claim only takes calls of organizations with room, counting live calls in the database;
            # this catches the rare race (an inbound call admitted between the claim and now).
            self._defer(call, 1, "organization concurrent-call limit reached")
            return
        node = self.ctx.pool.pick()
        if node is None:
            self._defer(call, 5, "no FreeSWITCH node is available")
            return
        self.pacer.take()
        self.ctx.calls.register(call.id, call.organization_id, call.attempt, node.name)
        gevent.spawn(self._originate, node, originate)

    def _prepare_and_dial(self, call: Call) -> None:
        originate = self.prepare(call)
        if originate is not None:
            with database.connection_context():
                self.dial(call, originate)

    @staticmethod
    def _defer(call: Call, seconds: float, reason: str) -> None:
        """Give a claimed call back to the queue without spending its attempt."""
        count_dial("deferred")
        next_at = utcnow() + dt.timedelta(seconds=seconds)
        transition(call, QUEUED, reason=f"deferred: {reason}", attempt=call.attempt - 1, next_attempt_at=next_at)

    def _raised(self, call: Call, step: str) -> None:
        """An unexpected error in `step` (logged with its traceback) ends the attempt as a temporary failure."""
        count_dial("failed")
        log.exception("%s of call %s failed", step, call.id)
        with database.connection_context():
            self.ending.end(call.id, "NORMAL_TEMPORARY_FAILURE", None, reason="originate raised an error")

    def _not_dialed(self, call: Call, cause: str, reason: str) -> None:
        count_dial("not_dialed")
        log.warning("call %s not dialed: %s", call.id, reason)
        self.ending.end(call.id, cause, None, reason=reason)

    def _prepare(self, call: Call) -> Originate | None:
        org_limit = Organization.select(Organization.max_concurrent_calls).where(
            Organization.id == call.organization_id).scalar()
        refusal = dialing.check(call.to_number, self.routes.dial_rules)
        if refusal is not None:
            # Every path is checked here: a gateway originate never passes the dialplan's rules.
            self._not_dialed(call, refusal.cause, f"not dialed ({refusal.rule}): {refusal.reason}")
            return None
        if self._previous_channel_up(call):
            self._not_dialed(call, "NORMAL_TEMPORARY_FAILURE", "a channel for this call is still up; not dialing again")
            return None
        config = self.ctx.config
        gateway = self.routes.gateway(call)
        if gateway:
            # Customer gateways are vb_gw_<hex> (the builder's default pattern); the platform's own trunk
            # is the operator's OUTBOUND_GATEWAY, already validated by config, matched exactly.
            pattern = re.compile(re.escape(gateway)) if gateway == config.outbound_gateway else None
            dial = commands.gateway_dial(gateway, call.to_number, pattern)
        else:
            dial = commands.loopback_dial(call.to_number, config.outbound_context)
        command = commands.originate(
            dial, self._originate_target(call), origination_uuid=call.id, caller_id_number=call.from_number,
            caller_id_name_=self.routes.caller_name(call), timeout_s=config.originate_timeout_s, call_id=call.id,
            dialplan_vars=None if gateway else self.routes.dialplan_vars(call))
        return Originate(call, org_limit, command)

    def _previous_channel_up(self, call: Call) -> bool:
        """Whether a channel named after this call is still up where its last originate went (a previous attempt,
        or a reply that was lost): never ring twice. A call no originate has carried has no channel (the node is
        written before every originate leaves), so a first attempt asks nothing; nor does one whose node is down."""
        previous = getattr(call, "previous_node", call.node)  # a claimed call: its node before the claim
        node = self.ctx.pool.nodes.get(previous) if previous else None
        if node is None or not node.supervisor.alive:
            return False
        return node.api(commands.uuid_exists(call.id)).strip() == "true"

    def _originate(self, node: Node, originate: Originate) -> None:
        call = originate.call
        with call_context(call.id):
            try:
                with database.connection_context():
                    job_uuid = self._send(node, originate)
                if job_uuid is not None:
                    # Waited for without a database connection: the job returns when the call is answered or
                    # fails (up to the originate timeout), and a connection held per ringing call would exhaust
                    # the pool (a scale-out run: the dialer's next originates and the event handlers timed out).
                    self._await_job(node, call, job_uuid)
            except EslNotConnected as exc:
                # The node's connection dropped between the slot and the send: nothing left, so the attempt is not
                # spent (a switch restart must not use up calls' attempts).
                log.warning("call %s: originate not sent: %s", call.id, exc)
                with database.connection_context():
                    self.ctx.calls.forget(call.id)
                    self._defer(call, 5, "the FreeSWITCH node's connection dropped before the originate left")
            except Exception:
                self._raised(call, "originate")

    def _send(self, node: Node, originate: Originate) -> str | None:
        """Send a prepared originate: the bgapi job's uuid, or None when nothing was sent."""
        call = originate.call
        calls = self.ctx.calls
        live = calls.get(call.id)
        if live is not None and calls.hangup_requested(call):
            # Canceled between the claim and now (here, or through another instance: its marker): nothing must
            # ring. uuid_kill found no channel.
            self.ending.end(call.id, "MANAGER_REQUEST", None, reason="canceled before it was dialed")
            calls.forget(call.id)  # (already closed through another instance: end() left it)
            return None
        # dialed_at becomes when the originate leaves, not the claim (up to PACE_AHEAD_S before); a call closed
        # between the two (an API hangup of a call not yet driven here) is not dialed. The node is written with
        # it, before the originate leaves: the node's owner (calls/ownership.py), maybe another instance, adopts
        # the call from its first event, and a takeover's reconciliation knows where to look.
        if not Call.update(dialed_at=utcnow(), node=node.name).where(
                Call.id == call.id, Call.status.in_(LIVE_STATUSES)).execute():
            calls.forget(call.id)
            return None
        job_uuid = node.bgapi(originate.command)
        live = self.ctx.calls.get(call.id)
        if live is not None:
            live.job_uuid = job_uuid
        Call.update(job_uuid=job_uuid, node=node.name, channel_uuid=call.id).where(Call.id == call.id).execute()
        return job_uuid

    def _await_job(self, node: Node, call: Call, job_uuid: str) -> None:
        """The originate's BACKGROUND_JOB: -ERR ends the attempt (on_job). The connection tracks the job from
        its reply on, so it cannot be missed."""
        try:
            job = node.wait_job(job_uuid, timeout=self.ctx.config.originate_timeout_s + 30)
        except EslError as exc:
            count_dial("failed")
            log.warning("call %s: no BACKGROUND_JOB for %s: %s", call.id, job_uuid, exc)
            return
        body = (job.body or "").strip()
        if not body.startswith("+OK"):
            # FreeSWITCH sends a failed leg's CHANNEL_HANGUP_COMPLETE (with its SIP status) before the
            # BACKGROUND_JOB, but the job result skips the event queue: let queued events go first.
            gevent.sleep(JOB_RESULT_GRACE_S)
        count_dial("ok" if body.startswith("+OK") else "failed")
        with database.connection_context():
            self.on_job(call.id, call.attempt, body)
        if not self.ctx.ownership.owns(node.name):
            calls = self.ctx.calls
            live = calls.get(call.id)
            if live is not None and not live.held_here:
                # The node's owner drives the call from its events; a socket held here keeps its LiveCall until
                # the hang-up (cross_instance.observe_foreign).
                calls.forget(call.id)

    def _originate_target(self, call: Call) -> commands.Target:
        """What the answered leg runs: park, or for an agent that streams its voice the app's socket session
        (async full), which keeps the call writing audio so the streamed frames are heard."""
        target = self.socket_target()
        if target is None or not self.ctx.media.streams_audio(call):
            return commands.park_app()
        return commands.socket_app(target)

    def on_job(self, call_id: str, attempt: int, body: str) -> None:
        """The originate's result: +OK <uuid> (events take it from here) or -ERR <CAUSE>."""
        if body.startswith("+OK"):
            return
        cause = body[4:].strip().split()[0] if body.startswith("-ERR") and body[4:].strip() else \
            "NORMAL_TEMPORARY_FAILURE"
        live = self.ctx.calls.get(call_id)
        sip = live.far_sip_code if live is not None else None  # the -ERR names a cause only, never a SIP status
        reason = f"originate failed: {body or 'no reply'}" + (f" (SIP {sip})" if sip else "")
        self.ending.end(call_id, cause, sip, reason=reason, attempt=attempt)
