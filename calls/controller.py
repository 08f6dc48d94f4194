"""The call controller: dials claimed calls on FreeSWITCH and lets channel events drive them.

One controller serves every node. It is the Dialer the dispatcher hands calls to, the call
control the API uses (hang up, transfer), and the handler of the events the ESL pool delivers.
Matching is by the channel's `voxbridge_call_id` variable first and its Unique-ID second: FreeSWITCH
does not refuse a duplicate origination_uuid, so the database, not the uuid, guards against
dialing twice, and an event is only acted on for the attempt it belongs to.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event

from calls import dialing, inbound, inbound_context
from calls.causes import Outcome, far_end_sip_code, outcome_for
from calls.inbound_routing import InboundOrigin
from calls.limits import ConcurrencyLimits, Pacer
from calls.machine_detection import retry_machine
from calls.state import finish_attempt, transition
from calls.unserved import MARK, UNSERVED, unserved_reason
from config import Config
from esl import commands
from esl.errors import EslError, SessionGone, UnsafeValue
from esl.outbound import OutboundServer
from models import (
    CALLING,
    CANCELED,
    IN_PROGRESS,
    LIVE_STATUSES,
    QUEUED,
    RINGING,
    Call,
    CallEvent,
    Organization,
    database,
    utcnow,
)
from observability.context import call_context
from observability.metrics import count_dial

log = logging.getLogger(__name__)
JOB_RESULT_GRACE_S = 0.25
# The dispatcher claims the calls whose originate slots come due within this many seconds and starts each in
# its slot: one claim per tenth of a second instead of one per slot (a claim costs milliseconds of database
# round trips, which at 100 calls/s would eat the process), and a claimed call waits at most this long.
PACE_AHEAD_S = 0.1
# How long ending an attempt waits for the agent's session to record its cut-off turn: long enough for a
# few database writes, short enough that a stuck pipeline cannot hold a call open.
MEDIA_END_WAIT_S = 5.0
# A live call whose audio stream failed (the pipeline unreachable, or it dropped the stream) gets one new
# stream after this pause; a second failure hangs it up: an answered call with no agent is dead air.
FORK_RETRY_DELAY_S = 1.0
FORK_RETRIES = 1
# CallEvent reason prefix that records a hangup asked for (API hangup/cancel, the agent): kept in the
# database so that whatever cause FreeSWITCH reports back, even after a restart, ends the attempt as asked.
HANGUP_REQUESTED = "hangup requested"
TRANSFER_REQUESTED = "transfer requested"  # likewise: the driving instance leaves a transferred call's stream alone
CANCELED_BEFORE_ANSWER = Outcome(CANCELED, False, "hung up on request before an answer")
# Streamed (bidirectional) agent audio is heard only while the channel writes audio: the app's socket session
# keeps this playback running (parked, a uuid_broadcast of silence or echo are not enough: see the captures).
SILENCE_STREAM = "silence_stream://-1"
AUDIO_FORK_BUG = "audio_fork"  # mod_audio_fork's default bug name; the bidirectional form must name it
BIDI_PLAYBACK_RATE = 16000  # the rate of the PCM the pipeline streams back (the fork reads 16k too)
# Each barge-in (killAudio) ends the silence playback once; past this many re-arms a call is not kept writing
# (a playback that ends at once, again and again, must not spin for the whole call).
MAX_SILENCE_REARMS = 1000


class CallNotControlled(Exception):
    """The call is live in the database but no channel of it is driven by this process."""


class TransferFailed(Exception):
    """FreeSWITCH refused a transfer step (-ERR): the call stays where it was."""

    def __init__(self, call_id: str, reply: str) -> None:
        super().__init__(f"transfer of call {call_id} refused by FreeSWITCH: {reply.strip()[:200]}")
        self.reply = reply


class DialRefused(TransferFailed):
    """The transfer target breaks an outbound rule (calls/dialing.py): nothing is sent to FreeSWITCH. A kind of
    TransferFailed, so whatever handles a failed transfer (the call stays with the agent) handles this too."""

    def __init__(self, call_id: str, refusal: dialing.Refusal) -> None:
        Exception.__init__(self, f"transfer of call {call_id} refused ({refusal.rule}): {refusal.reason}")
        self.reply = f"-ERR {refusal.rule}: {refusal.reason}"
        self.refusal = refusal


class AccountNotProvisioned(Exception):
    """The organization has a SIP account for outbound calls, but FreeSWITCH has no gateway for it yet.

    Dialing through the platform trunk instead would send the customer's calls out under the wrong
    caller and bill; the attempt fails retryable, so a Reprovision before the next attempt saves it."""

    def __init__(self, account_id: str) -> None:
        super().__init__(f"SIP account {account_id} is not provisioned in FreeSWITCH; run Reprovision")
        self.account_id = account_id


UUID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

# CHANNEL_HANGUP: the loopback B-leg's carries the far end's SIP status, before the A-leg's HANGUP_COMPLETE.
SUBSCRIBED_EVENTS = ("CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER",
                     "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE_COMPLETE", "DTMF", "BACKGROUND_JOB",
                     "HEARTBEAT", "CUSTOM")
AUDIO_FORK_SUBCLASSES = ("mod_audio_fork::connect", "mod_audio_fork::connect_failed", "mod_audio_fork::disconnect",
                         "mod_audio_fork::play_audio", "mod_audio_fork::kill_audio", "mod_audio_fork::json",
                         "mod_audio_fork::transcription", "mod_audio_fork::error")


def narrowband_leg(event: Any) -> bool | None:
    """Whether the answered leg's codec runs at 8 kHz (PCMU, PCMA, L16/8000), from the event's read rate;
    None when the event does not say (a 16k stream of it is then treated as wideband)."""
    rate = event.get("variable_read_rate") or ""
    return int(rate) <= 8000 if rate.isdigit() else None


@dataclass
class LiveCall:
    """What the controller keeps in memory about a call it is driving (the database has the rest)."""

    call_id: str
    org_id: str
    attempt: int
    node: str
    channel_uuid: str | None = None
    job_uuid: str | None = None
    started: float = field(default_factory=time.monotonic)
    media_started: bool = False
    hangup_requested: bool = False
    transfer_requested: bool = False
    fork_retries: int = 0
    far_sip_code: int | None = None  # the SIP status seen on the leg that bridged the far end (loopback B-leg)
    narrowband: bool | None = None  # the answered leg's codec runs at 8 kHz (G.711): known from CHANNEL_ANSWER
    held_here: bool = False  # this instance holds the call's socket (calls/cross_instance.py node_lost keeps it)


class MediaHooks:
    """What the pipeline wants to hear about; the default does nothing (no pipeline wired)."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def media_url(self, call: Call) -> str | None:
        return None

    def streams_audio(self, call: Call) -> bool:
        """True: the agent's voice comes back as binary frames (a bidirectional fork, see _keep_writing)."""
        return False

    def on_dtmf(self, call_id: str, digit: str) -> None:
        pass

    def end_session(self, call_id: str) -> None:
        pass

    def on_hangup(self, call_id: str) -> None:
        pass


class CallController:
    def __init__(self, config: Config, pool: Any, media: MediaHooks | None = None, clock=time.monotonic,
                 ownership: Any = None):
        from calls.ownership import OwnAll

        self.config = config
        self.pool = pool
        # Which nodes' channel events this instance drives (calls/ownership.py); one instance owns all.
        self.ownership = ownership or OwnAll(getattr(pool, "nodes", {}))
        self.media = media or MediaHooks()
        self.limits = ConcurrencyLimits(config.max_concurrent_calls, config.org_max_concurrent_calls)
        self.pacer = Pacer(config.calls_per_second, clock=clock)
        self.live: dict[str, LiveCall] = {}
        self.dial_rules = dialing.DialRules.from_config(config)
        self._watchdog: gevent.Greenlet | None = None
        self.socket_server: OutboundServer | None = None
        self.reconciled = False

    # ---- Dialer (the dispatcher's side) -------------------------------------------------------
    def capacity(self) -> int:
        if not self.reconciled:
            return 0  # until FreeSWITCH's live calls are re-adopted, the limits do not know them
        return min(self.limits.free(), self.pacer.due(within=PACE_AHEAD_S), self.pool.capacity())

    def wait_time(self) -> float:
        """Seconds until the next originate slot: the dispatcher starts each claimed call in its slot."""
        return self.pacer.wait_time()

    @property
    def per_org_max(self) -> int:
        """ORG_MAX_CONCURRENT_CALLS: the claim leaves organizations at it in the queue."""
        return self.limits.per_org_max

    def dial(self, call: Call) -> None:
        org_limit = Organization.select(Organization.max_concurrent_calls).where(
            Organization.id == call.organization_id).scalar()
        if not self.limits.admits(call.organization_id, org_limit):
            # The claim only takes calls of organizations with room, counting live calls in the database;
            # this catches the rare race (an inbound call admitted between the claim and now).
            self._defer(call, 1, "organization concurrent-call limit reached")
            return
        node = self.pool.pick()
        if node is None:
            self._defer(call, 5, "no FreeSWITCH node is available")
            return
        self.pacer.take()
        self.limits.add(call.id, call.organization_id)
        self.live[call.id] = LiveCall(call.id, call.organization_id, call.attempt, node.name)
        gevent.spawn(self._originate, node, call)

    def _defer(self, call: Call, seconds: float, reason: str) -> None:
        """Give a claimed call back to the queue without spending its attempt."""
        count_dial("deferred")
        next_at = utcnow() + _seconds(seconds)
        transition(call, QUEUED, reason=f"deferred: {reason}", attempt=call.attempt - 1, next_attempt_at=next_at)

    def _originate(self, node: Any, call: Call) -> None:
        with call_context(call.id):
            self._originate_logged(node, call)

    def _originate_logged(self, node: Any, call: Call) -> None:
        try:
            with database.connection_context():
                self._originate_on(node, call)
        except UnsafeValue as exc:
            # A value failed its allow-list: dialing again cannot help, and nothing was sent.
            count_dial("not_dialed")
            log.warning("call %s not dialed: %s", call.id, exc)
            with database.connection_context():
                self._end_attempt(call.id, "INVALID_NUMBER_FORMAT", None, reason=f"not dialed: {exc}")
        except AccountNotProvisioned as exc:
            count_dial("not_dialed")
            log.warning("call %s not dialed: %s", call.id, exc)
            with database.connection_context():
                self._end_attempt(call.id, "NORMAL_TEMPORARY_FAILURE", None, reason=str(exc))
        except Exception:
            count_dial("failed")
            log.exception("originate of call %s failed", call.id)
            with database.connection_context():
                self._end_attempt(call.id, "NORMAL_TEMPORARY_FAILURE", None, reason="originate raised an error")

    def _originate_on(self, node: Any, call: Call) -> None:
        refusal = dialing.check(call.to_number, self.dial_rules)
        if refusal is not None:
            # Every path is checked here: a gateway originate never passes the dialplan's rules.
            log.warning("call %s not dialed: %s", call.id, refusal.reason)
            count_dial("not_dialed")
            self._end_attempt(call.id, refusal.cause, None, reason=f"not dialed ({refusal.rule}): {refusal.reason}")
            return
        if node.api(commands.uuid_exists(call.id)).strip() == "true":
            # A channel for this call still exists (a previous attempt, or a lost reply): never ring twice.
            count_dial("not_dialed")
            self._end_attempt(call.id, "NORMAL_TEMPORARY_FAILURE", None,
                              reason="a channel for this call is still up; not dialing again")
            return
        gateway = self._gateway(call)
        if gateway:
            # Customer gateways are vb_gw_<hex> (the builder's default pattern); the platform's own trunk
            # is the operator's OUTBOUND_GATEWAY, already validated by config, matched exactly.
            pattern = re.compile(re.escape(gateway)) if gateway == self.config.outbound_gateway else None
            dial = commands.gateway_dial(gateway, call.to_number, pattern)
        else:
            dial = commands.loopback_dial(call.to_number, self.config.outbound_context)
        command = commands.originate(
            dial, self._originate_target(call), origination_uuid=call.id, caller_id_number=call.from_number,
            caller_id_name_=self._caller_name(call), timeout_s=self.config.originate_timeout_s, call_id=call.id,
            dialplan_vars=None if gateway else self._dialplan_vars(call))
        live = self.live.get(call.id)
        if live is not None and (live.hangup_requested or self._hangup_requested(call)):
            # Canceled between the claim and now (here or through another instance): nothing must ring.
            self._end_attempt(call.id, "MANAGER_REQUEST", None, reason="canceled before it was dialed")
            self.limits.remove(call.id)  # (already closed through another instance: _end_attempt left these)
            self.live.pop(call.id, None)
            return
        # dialed_at becomes when the originate leaves, not the claim (up to PACE_AHEAD_S before); a call closed
        # between the two (an API hangup of a call not yet driven here) is not dialed.
        # The node is written before the originate leaves: its owner (calls/ownership.py), maybe another instance,
        # adopts the call from its first event, and a takeover's reconciliation knows where to look.
        if not Call.update(dialed_at=utcnow(), node=node.name).where(
                Call.id == call.id, Call.status.in_(LIVE_STATUSES)).execute():
            self.limits.remove(call.id)
            self.live.pop(call.id, None)
            return
        job_uuid = node.bgapi(command)
        live = self.live.get(call.id)
        if live is not None:
            live.job_uuid = job_uuid
        Call.update(job_uuid=job_uuid, node=node.name, channel_uuid=call.id).where(Call.id == call.id).execute()
        # The connection tracks the job from its reply on, so its BACKGROUND_JOB cannot be missed.
        try:
            job = node.wait_job(job_uuid, timeout=self.config.originate_timeout_s + 30)
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
        self._on_job(call.id, call.attempt, body)
        if not self.ownership.owns(node.name):
            from calls.cross_instance import forget_local

            forget_local(self, call.id)  # the node's owner drives it from its events

    def _originate_target(self, call: Call) -> commands.Target:
        """What the answered leg runs: park, or for an agent that streams its voice the app's socket session
        (async full), which keeps the call writing audio so the streamed frames are heard."""
        if self.socket_server is None or not self.media.streams_audio(call):
            return commands.park_app()
        return commands.socket_app(self._socket_target())

    def _socket_target(self) -> str:
        """host:port FreeSWITCH connects to: VOXBRIDGE_SOCKET_ADDRESS, with the bound port when it says 0."""
        if getattr(self.config, "socket_public_address", ""):
            return self.config.socket_public_address  # a load balancer in front of the instances
        host, _, port = self.config.socket_address.rpartition(":")
        if port == "0" and self.socket_server is not None:
            port = str(self.socket_server.port)
        return f"{host}:{port}"

    def _dialplan_vars(self, call: Call) -> dict[str, str]:
        """What dialplan/outbound.xml reads: caller ID, home country code, the international gate."""
        return {"vb_caller_id": call.from_number or "",
                "vb_country_code": self.dial_rules.country_code,
                "vb_international_enabled": "true" if self.dial_rules.international_enabled else "false"}

    def _caller_name(self, call: Call) -> str | None:
        org = Organization.get_or_none(Organization.id == call.organization_id)
        return org.name if org else None

    def _gateway(self, call: Call) -> str | None:
        """The organization's first provisioned outbound account's gateway, else the platform trunk.

        Raises AccountNotProvisioned when the organization has outbound accounts but none is provisioned:
        its calls must not leave through the platform trunk unnoticed."""
        from models import SipAccount

        accounts = list(SipAccount.select().where(SipAccount.organization == call.organization_id,
                                                  SipAccount.deleted_at.is_null(),
                                                  SipAccount.sip_server.is_null(False))
                        .order_by(SipAccount.created_at, SipAccount.id))
        provisioned = [a for a in accounts if a.provisioned]
        if provisioned:
            return provisioned[0].gateway_name
        if accounts:
            raise AccountNotProvisioned(accounts[0].id)
        return self.config.outbound_gateway or None

    # ---- events --------------------------------------------------------------------------------
    def handle_event(self, node_name: str, event: Any) -> None:
        """Entry point for every event of every node (called in the node's reader greenlet)."""
        try:
            with call_context(event.get("variable_voxbridge_call_id") or event.get("Unique-ID")), \
                    database.connection_context():
                from calls import cross_instance

                if not self.ownership.owns(node_name):
                    cross_instance.observe_foreign(self, node_name, event)  # another instance drives it
                    return
                cross_instance.adopt_from_event(self, node_name, event)
                self._dispatch(node_name, event)
        except Exception:
            log.exception("handling %s from %s failed", getattr(event, "name", "?"), node_name)

    def _dispatch(self, node_name: str, event: Any) -> None:
        name = event.name
        if name == "CHANNEL_CREATE":
            self._on_create(event)
        elif name == "CUSTOM":
            self._on_audio_fork(event)
        elif name in ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA"):
            self._on_progress(event)
        elif name == "CHANNEL_ANSWER":
            self._on_answer(event)
        elif name == "CHANNEL_HANGUP":
            self._note_bridged_leg(event)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self._note_bridged_leg(event)
            self._on_hangup(event)
        elif name == "DTMF":
            call = self._call_for(event)
            if call is not None:
                self.media.on_dtmf(call.id, event.get("DTMF-Digit") or "")

    def _call_for(self, event: Any) -> Call | None:
        """The live call an event belongs to, or None (someone else's channel, or a stale attempt).

        Only the call's own channel drives it: its uuid is the call id (origination_uuid, or the inbound
        channel's uuid). A loopback B-leg carries the same voxbridge_call_id (loopback copies the
        variables) but has its own uuid; its ANSWER or HANGUP_COMPLETE must not move the call.
        """
        call_id = event.get("variable_voxbridge_call_id") or event.get("Unique-ID")
        if not call_id or not UUID_RE.match(call_id) or call_id not in self.live:
            return None  # not a call this process drives (another app's channel, or a finished attempt)
        if event.get("Unique-ID") != (self.live[call_id].channel_uuid or call_id):
            return None
        call = Call.get_or_none(Call.id == call_id)
        if call is None or call.status not in LIVE_STATUSES:
            return None
        return call

    def _on_create(self, event: Any) -> None:
        """A channel of a call whose hangup was asked for before it existed (the kill found nothing)."""
        live = self.live.get(event.get("variable_voxbridge_call_id") or event.get("Unique-ID") or "")
        if live is None:
            return  # not a call driven here: nothing to do, and no query for it
        # The hangup may have been asked through another instance (its marker), while the originate was in flight.
        if not live.hangup_requested and not self._hangup_marked(live.call_id, live.attempt):
            return
        live.hangup_requested = True
        if self._call_for(event) is not None:
            self._kill(live, event.get("Unique-ID"))

    def _on_job(self, call_id: str, attempt: int, body: str) -> None:
        """The originate's result: +OK <uuid> (events take it from here) or -ERR <CAUSE>."""
        if body.startswith("+OK"):
            return
        cause = body[4:].strip().split()[0] if body.startswith("-ERR") and body[4:].strip() else \
            "NORMAL_TEMPORARY_FAILURE"
        live = self.live.get(call_id)
        sip = live.far_sip_code if live is not None else None  # the -ERR names a cause only, never a SIP status
        reason = f"originate failed: {body or 'no reply'}" + (f" (SIP {sip})" if sip else "")
        self._end_attempt(call_id, cause, sip, reason=reason, attempt=attempt)

    def _on_progress(self, event: Any) -> None:
        call = self._call_for(event)
        if call is not None and call.status == CALLING:
            transition(call, RINGING, reason=event.name.lower())

    def _on_answer(self, event: Any) -> None:
        call = self._call_for(event)
        if call is None or call.status == IN_PROGRESS:
            return
        channel = event.get("Unique-ID")
        if not transition(call, IN_PROGRESS, reason="answered", answered_at=utcnow(), channel_uuid=channel):
            return
        live = self.live.get(call.id)
        if live is not None:
            live.narrowband = narrowband_leg(event)
        self._start_recording(call, channel)
        self._start_media(call, channel)

    def _start_recording(self, call: Call, channel: str) -> None:
        """Agents with settings.record: a stereo WAV (caller left, agent right) by FreeSWITCH itself."""
        from models import Agent

        agent = Agent.get_or_none(Agent.id == call.agent_id) if call.agent_id else None
        live = self.live.get(call.id)
        if agent is None or not (agent.settings or {}).get("record") or live is None:
            return
        path = os.path.join(os.path.abspath(self.config.recordings_dir), f"{call.id}.wav")
        node = self.pool.node(live.node)
        try:
            node.api(commands.uuid_setvar(channel, "RECORD_STEREO", "true"))
            reply = node.api(commands.uuid_record(channel, "start", path))
        except (EslError, UnsafeValue) as exc:
            reply = f"-ERR {exc}"
        if reply.startswith("+OK"):
            Call.update(recording_path=path).where(Call.id == call.id).execute()
        CallEvent.create(call=call.id, from_status=IN_PROGRESS, to_status=IN_PROGRESS,
                         reason="recording started" if reply.startswith("+OK") else f"recording failed: {reply}")

    def _start_media(self, call: Call, channel: str) -> None:
        if self.socket_server is not None and self.media.streams_audio(call):
            return  # started by the call's socket session once its silence playback runs (_keep_writing)
        self._request_media(call, channel, bidirectional=False)

    def _request_media(self, call: Call, channel: str, bidirectional: bool) -> None:
        """uuid_audio_fork start: the plain form, or the ten-argument bidirectional one (bug name required)."""
        url = self.media.media_url(call)
        live = self.live.get(call.id)
        if url is None or live is None:
            return
        metadata = {"call_id": call.id, "direction": call.direction}
        if live.narrowband is not None:
            metadata["narrowband"] = live.narrowband  # the recognizer's band fill (band_fill.py)
        if bidirectional:
            command = commands.audio_fork_start(channel, url, metadata=metadata, bug_name=AUDIO_FORK_BUG,
                                                bidirectional=True, playback_rate=BIDI_PLAYBACK_RATE)
        else:
            command = commands.audio_fork_start(channel, url, metadata=metadata)
        try:
            reply = self.pool.node(live.node).api(command)
        except EslError as exc:
            reply = f"-ERR {exc}"
        live.media_started = reply.startswith("+OK")
        CallEvent.create(call=call.id, from_status=IN_PROGRESS, to_status=IN_PROGRESS,
                         reason="media stream requested" if live.media_started else f"media stream failed: {reply}")

    def _note_bridged_leg(self, event: Any) -> None:
        """The default route's SIP leg is bridged from the loopback B-leg, so FreeSWITCH puts the far end's SIP
        status on the B-leg, never on the A-leg that drives the call: remember it for the attempt's end."""
        if event.get("variable_loopback_leg") != "B":
            return
        live = self.live.get(event.get("variable_voxbridge_call_id") or "")
        if live is None or event.get("Unique-ID") == (live.channel_uuid or live.call_id):
            return
        code = far_end_sip_code(event)
        if code is not None:
            live.far_sip_code = code

    def _on_hangup(self, event: Any) -> None:
        call = self._call_for(event)
        if call is None:
            return
        sip = far_end_sip_code(event)
        if sip is None and call.id in self.live:
            sip = self.live[call.id].far_sip_code
        self._end_attempt(call.id, event.get("Hangup-Cause"), sip,
                          billsec=_int(event.get("variable_billsec")), billmsec=_int(event.get("variable_billmsec")))

    def _end_attempt(self, call_id: str, cause: str | None, sip_code: int | None, billsec: int = 0,
                     reason: str | None = None, attempt: int | None = None, billmsec: int = 0) -> None:
        call = Call.get_or_none(Call.id == call_id)
        if call is None or call.status not in LIVE_STATUSES:
            return
        if attempt is not None and attempt != call.attempt:
            return  # a late result of an earlier attempt (e.g. BACKGROUND_JOB after the HANGUP)
        self.limits.remove(call_id)
        self.live.pop(call_id, None)
        # The agent's turn the hang-up cut off is recorded first, so call.ended carries the whole transcript.
        self._end_media_session(call_id)
        call = Call.get_or_none(Call.id == call_id)  # with the turn it recorded
        if call is None or call.status not in LIVE_STATUSES:
            return
        answered = call.answered_at is not None
        outcome = outcome_for(cause, sip_code, answered)
        if not answered and self._hangup_requested(call):
            # A ringing call hung up on request ends with whatever cause (NORMAL_CLEARING, ORIGINATOR_CANCEL,
            # a -ERR job): it was canceled, never a retryable no-answer.
            outcome = CANCELED_BEFORE_ANSWER
        # Every started minute is billed; billmsec keeps a 20-second call from rounding to zero seconds.
        talk_ms = max(billmsec, billsec * 1000)
        billed = math.ceil(talk_ms / 60_000) if answered and talk_ms > 0 else 0
        unserved = unserved_reason(call, HANGUP_REQUESTED)
        if unserved is not None:  # answered but never served (no voice): no conversation, nothing billed
            outcome, billed, reason = UNSERVED, 0, unserved
        fields = {"hangup_cause": cause, "sip_code": sip_code, "duration_s": billsec if answered else 0,
                  "billed_minutes": billed}
        # The SIP status is named only when the far end gave one: never inferred from the cause.
        said = f"{cause or 'unknown'}: {outcome.meaning}" + (f" (SIP {sip_code})" if sip_code else "")
        with database.atomic():
            ended = finish_attempt(call, outcome.status, reason or said,
                                   retry_base_s=self.config.retry_backoff_s, retryable=outcome.retryable,
                                   retry_answered=unserved is None and retry_machine(call), **fields)
            # Billed only by the one that moved the call (another ender, e.g. a reconciliation, may have won).
            if billed and ended not in LIVE_STATUSES:
                Organization.update(minutes_used=Organization.minutes_used + billed).where(
                    Organization.id == call.organization_id).execute()
        self.media.on_hangup(call_id)

    def _end_media_session(self, call_id: str) -> None:
        """Stop the call's agent session, never letting a media failure or hang keep the call from ending.

        It runs in a greenlet of its own: on a timeout the waiter gives up and the session is left to finish
        (killing it mid-query would leave a database connection busy)."""
        worker = gevent.spawn(self._end_media_guarded, call_id)
        worker.join(MEDIA_END_WAIT_S)
        if not worker.ready():
            log.warning("call %s: the agent session did not stop within %.0f s; ending the call anyway",
                        call_id, MEDIA_END_WAIT_S)

    def _end_media_guarded(self, call_id: str) -> None:
        try:
            self.media.end_session(call_id)
        except Exception:
            log.exception("call %s: stopping the agent session failed; ending the call anyway", call_id)

    def _on_audio_fork(self, event: Any) -> None:
        subclass = event.get("Event-Subclass") or ""
        if not subclass.startswith("mod_audio_fork::"):
            return
        call = self._call_for(event)
        if call is None:
            return
        kind = subclass.split("::", 1)[1]
        channel = event.get("Unique-ID")
        if kind == "play_audio":
            self._play(call, channel, event.body)
        elif kind in ("connect", "connect_failed", "disconnect", "error"):
            CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                             reason=f"media {kind}", data=_json_or_text(event.body))
            if kind in ("connect_failed", "disconnect"):
                self._on_stream_lost(call, channel, kind)

    def _on_stream_lost(self, call: Call, channel: str, kind: str) -> None:
        """The agent's audio stream could not connect, or dropped while nobody asked the call to end."""
        live = self.live.get(call.id)
        if live is None or call.status != IN_PROGRESS or live.hangup_requested or live.transfer_requested \
                or self._transfer_requested(call):
            return  # the stream ends because the call does: nothing to repair
        what = "could not connect" if kind == "connect_failed" else "was dropped"
        if live.fork_retries < FORK_RETRIES:
            live.fork_retries += 1
            log.warning("call %s: the agent's audio stream %s; retrying once", call.id, what)
            gevent.spawn_later(FORK_RETRY_DELAY_S, self._retry_stream, call.id, channel)
            return
        log.warning("call %s: the agent's audio stream %s again; hanging up", call.id, what)
        try:
            self.hangup(call, f"the agent's audio stream {what} again after a retry (no agent on the call)")
        except EslError as exc:
            log.warning("call %s: could not hang up after the stream failed: %s", call.id, exc)

    def _retry_stream(self, call_id: str, channel: str) -> None:
        try:
            with database.connection_context():
                call = Call.get_or_none(Call.id == call_id)
                live = self.live.get(call_id)
                if call is None or live is None or call.status != IN_PROGRESS or live.hangup_requested \
                        or live.transfer_requested or self._transfer_requested(call):
                    return
                CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                                 reason="media stream retried")
                self._start_media(call, channel)
                if not live.media_started:  # refused outright (-ERR): no event will follow
                    self.hangup(call, "the agent's audio stream could not be restarted (no agent on the call)")
        except Exception:
            log.exception("call %s: retrying the audio stream failed", call_id)

    def _play(self, call: Call, channel: str, body: str | None) -> None:
        """mod_audio_fork wrote the agent's audio to a file; play it into the call."""
        data = _json_or_text(body)
        path = data.get("file") if isinstance(data, dict) else None
        live = self.live.get(call.id)
        if not path or live is None:
            return
        try:
            self.pool.node(live.node).api(commands.uuid_broadcast(channel, path))
        except (EslError, ValueError) as exc:
            log.warning("call %s: could not play %r: %s", call.id, path, exc)

    # ---- inbound calls (the dialplan's `socket` application connects here) ----------------------
    def handle_inbound(self, session: Any) -> None:
        """One inbound call: admit it (number -> organization -> agent), answer it, keep the socket.

        Channel events for the call arrive on the node's inbound connection like any other call's,
        so answering lets CHANNEL_ANSWER start the media and CHANNEL_HANGUP_COMPLETE close it.
        The socket is held until the call ends: closing it would hang the call up.
        """
        channel = session.channel
        uuid = channel.unique_id if channel else None
        if not uuid or not UUID_RE.match(uuid):
            log.warning("inbound socket without a channel uuid from %s", session.address)
            return
        if self._control_originated(session, uuid):
            return
        dialed = channel.get("variable_vb_did") or channel.get("Caller-Destination-Number") or ""
        caller = channel.get("Caller-Caller-ID-Number")
        with database.connection_context():
            decision = inbound.admit(uuid, dialed, caller, self.config.default_region,
                                     origin=InboundOrigin.from_channel(channel))
            if decision.accepted:
                node = self._node_for(session)
                call = decision.call
                self.live[call.id] = LiveCall(call.id, call.organization_id, call.attempt, node.name, uuid)
                self.limits.add(call.id, call.organization_id)
                Call.update(node=node.name).where(Call.id == call.id).execute()
        if decision.accepted:
            # Allowed SIP headers and the organization's inbound webhook fill the call's variables, or reject it.
            # The call is live meanwhile, so a caller who hangs up while the webhook is waited for ends it.
            decision = inbound_context.prepare(decision, channel, self.config)
            if not decision.accepted:
                self.live.pop(uuid, None)
                self.limits.remove(uuid)
        session.myevents()
        session.linger()
        if not decision.accepted:
            session.hangup(decision.hangup_cause or "CALL_REJECTED")
            return
        session.answer()
        self._hold(session, call.id)

    def _control_originated(self, session: Any, uuid: str) -> bool:
        """A call this process originated with '&socket(...)' (its uuid is the call id): control it here.

        Only a live outbound call whose channel is that very uuid qualifies; a caller cannot choose an inbound
        channel's uuid, so an inbound call never takes this path."""
        live = self.live.get(uuid)
        if live is not None and (live.channel_uuid or live.call_id) != uuid:
            return False
        with database.connection_context():
            call = Call.get_or_none(Call.id == uuid)
        if call is None or call.direction != "outbound" or call.status not in LIVE_STATUSES:
            return False
        if live is None:  # dialed by another instance: the socket landed here, so the stream runs here
            if (call.channel_uuid or call.id) != uuid or not call.node:
                return False
            live = self.live.setdefault(uuid, LiveCall(call.id, call.organization_id, call.attempt, call.node, uuid))
        live.held_here = True
        session.myevents()
        session.linger()
        self._hold(session, call.id)
        return True

    def _hold(self, session: Any, call_id: str) -> None:
        """Keep the socket until the call ends (closing it would hang the call up); an agent that streams its
        voice also gets the call kept writing audio."""
        with database.connection_context():
            call = Call.get_or_none(Call.id == call_id)
            streams = call is not None and self.media.streams_audio(call)
        if streams:
            self._keep_writing(session, call_id)
        session.wait_closed(self.config.max_call_duration_s + 60)

    def _keep_writing(self, session: Any, call_id: str) -> None:
        """Run playback silence_stream://-1 for the whole call and start the bidirectional fork once it runs.

        Binary frames sent back are heard only while the channel writes audio; killAudio (barge-in) ends the
        playback but not the call, so each time it ends while the call is up it is started again. The fork
        waits for the first playback's CHANNEL_EXECUTE, so the agent's greeting is not streamed into a call
        that cannot play it yet."""
        running = gevent.event.Event()

        def on_execute(event: Any) -> None:  # on the session's reader greenlet: only flags
            if event.get("Application") == "playback" and event.get("Application-Data") == SILENCE_STREAM:
                live = self.live.get(call_id)
                if live is not None and live.narrowband is None:
                    live.narrowband = narrowband_leg(event)  # before the fork's metadata is written
                running.set()

        session.on("CHANNEL_EXECUTE", on_execute)
        deadline = time.monotonic() + self.config.max_call_duration_s + 60
        fork_requested = False
        try:
            for _ in range(MAX_SILENCE_REARMS):
                if call_id not in self.live or session.lingering or time.monotonic() >= deadline:
                    return
                playback = gevent.spawn(_play_silence, session, max(0.1, deadline - time.monotonic()))
                if not fork_requested:
                    fork_requested = True
                    if not running.wait(self.config.esl_command_timeout_s):
                        log.warning("call %s: the silence playback did not start; streamed audio may be lost",
                                    call_id)
                    self._request_bidirectional_media(call_id, session.uuid)
                if not self._playback_ended(playback, session, deadline):
                    return
            log.warning("call %s: silence playback re-armed %d times; no longer re-armed", call_id,
                        MAX_SILENCE_REARMS)
        finally:
            session.off("CHANNEL_EXECUTE", on_execute)

    def _playback_ended(self, playback: gevent.Greenlet, session: Any, deadline: float) -> bool:
        """Wait for one silence playback; True when it ended normally (a break) and may be re-armed."""
        while not playback.ready():
            if session.wait_closed(0) or time.monotonic() >= deadline:
                playback.kill()  # the socket is gone (no disconnect notice will fail the wait)
                return False
            playback.join(1.0)
        if not playback.successful():
            log.info("silence playback on %s ended: %s", session.name, playback.exception)
            return False
        return bool(playback.value)

    def _request_bidirectional_media(self, call_id: str, channel: str | None) -> None:
        with database.connection_context():
            call = Call.get_or_none(Call.id == call_id)
            if call is not None and call.status in LIVE_STATUSES and channel:
                self._request_media(call, channel, bidirectional=True)

    def _node_for(self, session: Any) -> Any:
        """The node whose socket this is: the connect data's Core-UUID against each node's (learned from its
        events), else the node whose configured host resolves to the peer address, else the first node.
        Addresses alone cannot tell apart several nodes behind one host or named by hostnames."""
        nodes = list(self.pool.nodes.values())
        core = session.channel.get("Core-UUID") if session.channel else None
        for node in nodes:
            if core and getattr(node, "core_uuid", None) == core:
                return node
        peer = session.address[0]
        for node in nodes:
            if peer in _addresses(node.supervisor.connection.host):
                return node
        return nodes[0]

    # ---- call control (the API's side) ----------------------------------------------------------
    def hangup(self, call: Call, reason: str = "hung up through the API", unserved: bool = False) -> None:
        """Hang the call up: an answered call ends completed, an unanswered one canceled (never retried);
        `unserved` (the app could not serve it, e.g. its voice never started) ends it failed with `reason`.

        The request is stored before the kill is sent, so the HANGUP_COMPLETE it causes (which can arrive
        before api() returns) finds it. Raises EslError when FreeSWITCH cannot be told; then the request is
        withdrawn and the call stays as it was.
        """
        live = self.live.get(call.id)
        marker = CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                                  reason=f"{HANGUP_REQUESTED}: {reason}",
                                  data={"attempt": call.attempt, **({MARK: True} if unserved else {})})
        if live is None:
            from calls.cross_instance import remote_live

            live = remote_live(self, call)  # live on a node: the kill goes there, whoever drives it
        if live is None:
            # Not on any node (claimed but not dialed yet): close it rather than leave it live.
            self._end_attempt(call.id, "MANAGER_REQUEST", None, reason=reason)
            return
        live.hangup_requested = True
        try:
            self._kill(live, call.channel_uuid or call.id)
        except EslError:
            live.hangup_requested = False
            CallEvent.delete().where(CallEvent.id == marker.id).execute()
            raise

    def _kill(self, live: LiveCall, channel: str | None) -> str:
        return self.pool.node(live.node).api(commands.uuid_kill(channel or live.call_id))

    def _hangup_requested(self, call: Call) -> bool:
        live = self.live.get(call.id)
        if live is not None and live.hangup_requested:
            return True
        return self._hangup_marked(call.id, call.attempt)

    @staticmethod
    def _hangup_marked(call_id: str, attempt: int) -> bool:
        rows = CallEvent.select(CallEvent.data).where(CallEvent.call == call_id,
                                                       CallEvent.reason.startswith(HANGUP_REQUESTED))
        return any(isinstance(row.data, dict) and row.data.get("attempt") == attempt for row in rows)

    def _driving_or_remote(self, call_id: str) -> tuple[LiveCall | None, Call | None]:
        """The call's LiveCall here, else one from its row (a voice session may run on a non-owning instance)."""
        from calls.cross_instance import remote_live

        live = self.live.get(call_id)
        call = Call.get_or_none(Call.id == call_id)
        if live is None and call is not None:
            live = remote_live(self, call)
        return live, call

    def _transfer_requested(self, call: Call) -> bool:
        """A transfer of this attempt was asked for, through any instance (its marker, see transfer())."""
        rows = CallEvent.select(CallEvent.data).where(CallEvent.call == call.id,
                                                       CallEvent.reason.startswith(TRANSFER_REQUESTED))
        return any(isinstance(row.data, dict) and row.data.get("attempt") == call.attempt for row in rows)

    def break_playback(self, call_id: str) -> None:
        live, call = self._driving_or_remote(call_id)
        if live is not None and call is not None:
            self.pool.node(live.node).api(commands.uuid_break(call.channel_uuid or call.id))

    def send_dtmf(self, call_id: str, digits: str) -> bool:
        """The agent presses keys (send_dtmf): True once FreeSWITCH said +OK. The command builder refuses
        anything but keypad keys; the reply is kept as a call event."""
        live, call = self._driving_or_remote(call_id)
        if live is None or call is None:
            return False
        reply = self.pool.node(live.node).api(commands.uuid_send_dtmf(call.channel_uuid or call.id, digits))
        CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                         reason=f"send_dtmf {digits}: {reply.strip()[:200]}")
        return reply.startswith("+OK")

    def transfer(self, call: Call, target: str, mode: str) -> bool:
        """Transfer a live call; True once FreeSWITCH accepted it.

        Raises CallNotControlled (no channel of it here), DialRefused (the target breaks an outbound rule),
        TransferFailed (a -ERR reply: the call stays with
        the agent) or an EslError (FreeSWITCH unreachable).
        """
        live = self.live.get(call.id)
        if live is None:
            from calls.cross_instance import remote_live

            live = remote_live(self, call)  # driven by another instance: the commands go to its node from here
        if live is None:
            raise CallNotControlled(f"call {call.id} is not live on any FreeSWITCH node")
        refusal = dialing.check(target, self.dial_rules)
        if refusal is not None:
            # A REFER never passes the dialplan, and a bridge transfer must not depend on it alone.
            CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                             reason=f"transfer ({mode}) to {target} refused ({refusal.rule}): {refusal.reason}")
            raise DialRefused(call.id, refusal)
        channel = call.channel_uuid or call.id
        node = self.pool.node(live.node)
        if mode == "refer":
            # REFER hands the call back to whoever sent it: the customer's PBX when the organization
            # has one, else the platform's SIP domain (carrier trunks resolve the number there).
            command = commands.uuid_deflect(channel, target, self._refer_host(call))
        else:
            command = commands.uuid_transfer(channel, target, self.config.transfer_context)
            # dialplan/transfer.xml sends the number through voxbridge_outbound, which reads these.
            for name, value in self._transfer_vars(call).items():
                self._transfer_step(call, mode, target, node.api(commands.uuid_setvar_dialplan(channel, name, value)))
        # Set first: the transfer takes the channel from the stream, whose disconnect must not be repaired; the
        # marker tells the instance that drives the call (it may be another one).
        live.transfer_requested = True
        CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                         reason=f"{TRANSFER_REQUESTED}: {mode}", data={"attempt": call.attempt})
        try:
            self._transfer_step(call, mode, target, node.api(command))
        except Exception:
            live.transfer_requested = False
            raise
        return True

    def _transfer_step(self, call: Call, mode: str, target: str, reply: str) -> None:
        CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                         reason=f"transfer ({mode}) to {target}: {reply.strip()[:200]}")
        if not reply.startswith("+OK"):
            raise TransferFailed(call.id, reply)

    def _transfer_vars(self, call: Call) -> dict[str, str]:
        """The outbound context's variables for a bridge transfer: what an outbound call originates with,
        plus the trunk. The caller ID presented is a number the organization owns: the outbound call's
        caller ID, or the number an inbound caller dialed."""
        variables = self._dialplan_vars(call)
        variables["vb_caller_id"] = (call.from_number if call.direction == "outbound" else call.to_number) or ""
        try:
            variables["vb_gateway"] = self._gateway(call) or ""
        except AccountNotProvisioned as exc:
            raise TransferFailed(call.id, f"-ERR {exc}") from exc
        return variables

    # ---- reconciliation and the watchdog ----------------------------------------------------------
    def _refer_host(self, call: Call) -> str:
        from models import SipAccount

        account = (SipAccount.select().where(SipAccount.organization == call.organization_id,
                                             SipAccount.deleted_at.is_null(), SipAccount.sip_server.is_null(False))
                   .order_by(SipAccount.created_at).first())
        return account.sip_server if account is not None else self.config.sip_domain

    def reconcile(self, node: Any) -> dict[str, int]:
        """After (re)connecting to `node`: adopt calls FreeSWITCH still has, close the ones it lost
        (calls/reconcile.py has the table of what happens to each)."""
        from calls import reconcile

        return reconcile.reconcile(self, node)

    def watchdog_pass(self) -> int:
        """Close calls that outlived their limits: ringing past the originate timeout, or too long."""
        closed = 0
        now = utcnow()
        ring_limit = _seconds(self.config.originate_timeout_s + 60)
        call_limit = _seconds(self.config.max_call_duration_s)
        with database.connection_context():
            # Web calls have no channel: their session's own limit (max_duration) and webcall/ end them.
            for call in Call.select().where(Call.status.in_(LIVE_STATUSES), Call.direction != "web"):
                if call.node and not self.ownership.owns(call.node):
                    continue  # its node's owner watches it
                started = call.answered_at or call.dialed_at or call.created_at
                limit = call_limit if call.answered_at else ring_limit
                if now - started <= limit:
                    continue
                live = self.live.get(call.id)
                # Close the call first, then kill its channel: the kill's CHANNEL_HANGUP_COMPLETE may come
                # before the api reply, and it must find the call already ended as ALLOTTED_TIMEOUT.
                self._end_attempt(call.id, "ALLOTTED_TIMEOUT", None,
                                  reason="watchdog: the call outlived its limit")
                if live is not None:
                    try:
                        self.pool.node(live.node).api(commands.uuid_kill(call.channel_uuid or call.id))
                    except EslError:
                        pass
                closed += 1
        return closed

    def _watch(self) -> None:
        while True:
            gevent.sleep(10)
            try:
                self.watchdog_pass()
            except Exception:
                log.exception("watchdog pass failed")

    def start(self) -> None:
        self.media.start()  # listening before any call can be answered
        host, port = self.config.socket_address.rsplit(":", 1)
        self.socket_server = OutboundServer(self.handle_inbound, host, int(port),
                                            command_timeout=self.config.esl_command_timeout_s).start()
        from calls import cross_instance

        self.pool.start(on_event=self.handle_event, on_connected=self._node_connected)
        self.ownership.start(on_acquired=lambda name: cross_instance.node_acquired(self, name),
                             on_lost=lambda name: cross_instance.node_lost(self, name))
        gevent.spawn(self._ready_without_nodes)
        self._watchdog = gevent.spawn(self._watch)

    def _node_connected(self, node: Any) -> None:
        if self.ownership.owns(node.name):
            self.reconcile(node)  # a node owned by another instance is reconciled there

    def _ready_without_nodes(self) -> None:
        """An instance that owns no node has no live calls to re-adopt: it may dial once ownership is known."""
        if self.ownership.wait_first_pass(60) and not self.ownership.owned():
            self.reconciled = True

    def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.kill()
        if self.socket_server is not None:
            self.socket_server.stop()
        self.ownership.stop()
        self.pool.stop()
        self.media.stop()

    def health(self) -> list[dict[str, Any]]:
        """Each node as this instance sees it, and whether this instance owns its events (calls/ownership.py)."""
        return [dict(node, owned=self.ownership.owns(node["node"])) for node in self.pool.health()]


def _play_silence(session: Any, timeout: float) -> bool:
    """One silence playback; False when the call hung up during it. A hang-up is how every streamed call
    ends, so it is not an error (as an exception it killed the greenlet with a logged traceback)."""
    try:
        session.playback(SILENCE_STREAM, wait=True, timeout=timeout)
    except SessionGone as exc:
        log.debug("silence playback on %s: %s", session.name, exc)
        return False
    return True


def _seconds(value: float):
    import datetime as dt

    return dt.timedelta(seconds=value)


def _addresses(host: str) -> set[str]:
    """The addresses a configured host name or address stands for (empty when it does not resolve)."""
    import socket

    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return set()


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _json_or_text(body: str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return {"text": body[:500]}


def build_telephony(config: Config):
    """The dialer and call control for a configured FreeSWITCH (composition for app.py)."""
    from calls.nodes import NodePool
    from calls.ownership import build_ownership

    pool = NodePool(config.esl_nodes, config.esl_password, timeout_s=config.esl_command_timeout_s,
                    events=SUBSCRIBED_EVENTS, subclasses=AUDIO_FORK_SUBCLASSES)
    ownership = build_ownership(pool.nodes)  # advisory locks on PostgreSQL: several instances may run
    if not config.voice_pipeline:
        controller = CallController(config, pool, ownership=ownership)
        return controller, controller
    from calls.media import MediaBridge

    media = MediaBridge(config)
    controller = CallController(config, pool, media=media, ownership=ownership)
    media.attach(controller)
    return controller, controller


__all__ = ["CallController", "MediaHooks", "build_telephony", "CANCELED"]
