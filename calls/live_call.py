"""A live call, and the one place its state is kept and changed in this process.

A call is live while its status is calling, ringing or in-progress. Its state is in four places, each with
one owner:

- The `calls` row (models.Call), the truth: status, attempt, node, job and channel uuid, dialed_at,
  answered_at, the outcome and billing. Changed only through calls/state.py (transition, finish_attempt), by
  the dialer, the channel events, ending.py and reconcile.py.
- A "hangup requested" CallEvent: a hangup asked for, kept across a restart. Written by call_control.py
  through LiveCalls.note_hangup_request. Likewise a "transfer requested" one (note_transfer_request): with
  several instances the one that drives the call may not be the one that transferred it.
- A LiveCall in LiveCalls (memory, this process): that this process drives the call's channel and on which
  node, plus what FreeSWITCH told about it that the database does not keep (the job uuid, hangup or transfer
  asked, stream retries, the far end's SIP status, the leg's band). Created and dropped only by
  LiveCalls.register / adopt / forget; each field's writer is named beside it. Its concurrency slot
  (ConcurrencyLimits) is taken and freed with it.
- The agent's conversation: MediaBridge.sessions (calls/media.py), the pipeline's Session. The media bridge
  owns it; ending.py stops it before the call.ended webhook is written.

The database is the truth about a call; memory only says "this process drives that channel" and holds what
FreeSWITCH told about it that the database does not keep. After a restart memory is empty: reconcile.py
rebuilds it from the database and uuid_exists (adopt), and a LiveCall is never the reason a call is thought
live. A LiveCall exists exactly while a concurrency slot is held for it: register/adopt take the slot,
forget frees it, so nobody touches the dict and the limits separately.

With several app instances (calls/ownership.py) "this process" is one of them: which instance holds a LiveCall
for a call, and what each may change, is calls/cross_instance.py's table.

Matching an event to its call: the channel's `voxbridge_call_id` variable first, its Unique-ID second.
FreeSWITCH does not refuse a duplicate origination_uuid, so the database, not the uuid, guards against
dialing twice, and an event is only acted on for the attempt it belongs to (driven_call).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from calls.limits import ConcurrencyLimits
from calls.unserved import MARK
from esl.events import Event
from models import LIVE_STATUSES, Call, CallEvent

UUID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# CallEvent reason prefix that records a hangup asked for (API hangup/cancel, the agent): kept in the
# database so that whatever cause FreeSWITCH reports back, even after a restart, ends the attempt as asked.
HANGUP_REQUESTED = "hangup requested"
TRANSFER_REQUESTED = "transfer requested"  # likewise: the driving instance leaves a transferred call's stream alone


@dataclass
class LiveCall:
    """What this process keeps in memory about a call it is driving (the database has the rest)."""

    call_id: str
    org_id: str
    attempt: int
    node: str  # the FreeSWITCH node that carries the channel: every command for the call goes there
    channel_uuid: str | None = None  # None: the call id (origination_uuid)
    job_uuid: str | None = None  # the originate's bgapi job (dialer.py)
    started: float = field(default_factory=time.monotonic)
    media_started: bool = False  # the last uuid_audio_fork start was accepted (audio_stream.py)
    media_connected: bool = False  # a mod_audio_fork::connect of this attempt was seen (channel_events.py)
    hangup_requested: bool = False  # call_control.py; mirrored by a HANGUP_REQUESTED CallEvent
    transfer_requested: bool = False  # call_control.py: the stream's disconnect that follows is not repaired
    fork_retries: int = 0  # audio_stream.py
    far_sip_code: int | None = None  # the SIP status seen on the leg that bridged the far end (loopback B-leg)
    narrowband: bool | None = None  # the answered leg's codec runs at 8 kHz (G.711): known from CHANNEL_ANSWER
    held_here: bool = False  # inbound_socket.py: this instance holds the call's socket (cross_instance keeps it)

    @property
    def channel(self) -> str:
        """The uuid of the channel that drives the call."""
        return self.channel_uuid or self.call_id


class LiveCalls(dict[str, LiveCall]):
    """The calls this process drives, by call id, with their concurrency slots.

    A dict so that reading it stays plain (`call_id in calls`, `calls.get(id)`); changes go through
    register / adopt / forget, which keep the limits in step."""

    def __init__(self, limits: ConcurrencyLimits) -> None:
        super().__init__()
        self.limits = limits
        # False until reconcile.py has re-adopted what FreeSWITCH still carries: until then the limits do not
        # know those calls, so the dialer reports no capacity.
        self.reconciled = False

    def register(self, call_id: str, org_id: str, attempt: int, node: str,
                 channel_uuid: str | None = None) -> LiveCall:
        """This process starts driving a call (the dialer claimed it, or the inbound socket admitted it)."""
        live = LiveCall(call_id, org_id, attempt, node, channel_uuid)
        self.limits.add(call_id, org_id)
        self[call_id] = live
        return live

    def adopt(self, call: Call, node: str, channel_uuid: str) -> LiveCall:
        """A call FreeSWITCH still carries after a (re)connect: driven again (reconcile.py); kept if known."""
        live = self.setdefault(call.id, LiveCall(call.id, call.organization_id, call.attempt, node, channel_uuid))
        self.limits.add(call.id, call.organization_id)
        return live

    def forget(self, call_id: str) -> None:
        """This process no longer drives the call (it ended, or was never sent): its slot is free again."""
        self.limits.remove(call_id)
        self.pop(call_id, None)

    @staticmethod
    def call_id_of(event: Event) -> str | None:
        """The call an event names: the channel's voxbridge_call_id, else its uuid (inbound channels)."""
        return event.call_id or event.unique_id

    def driven_call(self, event: Event) -> Call | None:
        """The live call an event belongs to, or None (someone else's channel, or a stale attempt).

        Only the call's own channel drives it: its uuid is the call id (origination_uuid, or the inbound
        channel's uuid). A loopback B-leg carries the same voxbridge_call_id (loopback copies the
        variables) but has its own uuid; its ANSWER or HANGUP_COMPLETE must not move the call.
        """
        call_id = self.call_id_of(event)
        if not call_id or not UUID_RE.match(call_id) or call_id not in self:
            return None  # not a call this process drives (another app's channel, or a finished attempt)
        if event.unique_id != self[call_id].channel:
            return None
        call = Call.get_or_none(Call.id == call_id)
        if call is None or call.status not in LIVE_STATUSES:
            return None
        return call

    def note_hangup_request(self, call: Call, reason: str, unserved: bool = False) -> CallEvent:
        """Store that a hangup of this attempt was asked for, before the kill is sent (see hangup_requested)."""
        return CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                                reason=f"{HANGUP_REQUESTED}: {reason}",
                                data={"attempt": call.attempt, **({MARK: True} if unserved else {})})

    def hangup_requested(self, call: Call) -> bool:
        """Whether a hangup of the call's current attempt was asked for: in memory, or (after a restart)
        in the database."""
        live = self.get(call.id)
        if live is not None and live.hangup_requested:
            return True
        return self.hangup_marked(call.id, call.attempt)

    @staticmethod
    def hangup_marked(call_id: str, attempt: int) -> bool:
        """Whether the database holds a hangup request for that attempt of the call (asked here or through
        another instance)."""
        return _marked(call_id, attempt, HANGUP_REQUESTED)

    @staticmethod
    def note_transfer_request(call: Call, mode: str) -> CallEvent:
        """Store that a transfer of this attempt was asked for, before it is sent: the instance that drives the
        call (maybe another one) then does not repair the stream the transfer takes away."""
        return CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                                reason=f"{TRANSFER_REQUESTED}: {mode}", data={"attempt": call.attempt})

    @staticmethod
    def transfer_marked(call: Call) -> bool:
        """Whether a transfer of the call's current attempt was asked for, through any instance."""
        return _marked(call.id, call.attempt, TRANSFER_REQUESTED)


def _marked(call_id: str, attempt: int, prefix: str) -> bool:
    rows = CallEvent.select(CallEvent.data).where(CallEvent.call == call_id, CallEvent.reason.startswith(prefix))
    return any(isinstance(row.data, dict) and row.data.get("attempt") == attempt for row in rows)
