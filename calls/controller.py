"""The call controller: the one object app.py wires up for telephony, a thin facade over the parts that do
the work. One controller serves every node.

- calls/live_call.py (LiveCalls, LiveCall): the live calls this process drives; what is in memory vs the
  database, and who may change it.
- calls/dialer.py (Dialer): the dispatcher's side: capacity, pacing, originate.
- calls/channel_events.py (ChannelEvents): what each FreeSWITCH event does to a call.
- calls/inbound_socket.py (InboundSocket): the socket server: inbound calls, streamed agents kept writing audio.
- calls/call_control.py (CallControl): the API's and the agent's side: hangup, transfer, break, keys.
- calls/recording.py (Recording): the stereo recording on answer.
- calls/audio_stream.py (AudioStreams): the agent's audio fork: started on answer, repaired once.
- calls/ending.py (AttemptEnd): ending an attempt: outcome, billing, retry.
- calls/watchdog.py (Watchdog): closing calls that outlived their limits.
- calls/reconcile.py: after a (re)connect, adopt what FreeSWITCH still has and close what it lost.
- calls/ownership.py: which nodes' channel events this instance drives (PostgreSQL advisory locks), and
  calls/cross_instance.py: how a call driven by another instance is seen and commanded from this one.
- calls/routes.py (OutboundRoutes): the gateway and dialplan variables a call (or a transfer) leaves with.

The controller is the Dialer the dispatcher hands calls to, the call control the API uses and the handler of
the events the ESL pool delivers; each of those methods is one line into its part.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent

from calls import dialing
from calls.audio_stream import AudioStreams
from calls.call_control import CallControl, CallNotControlled, DialRefused, TransferFailed
from calls.channel_events import AUDIO_FORK_SUBCLASSES, SUBSCRIBED_EVENTS, ChannelEvents, narrowband_leg
from calls.control_context import ControlContext
from calls.dialer import Dialer, Originate
from calls.ending import AttemptEnd
from calls.inbound_socket import InboundSocket
from calls.limits import ConcurrencyLimits, Pacer
from calls.live_call import HANGUP_REQUESTED, UUID_RE, LiveCall, LiveCalls
from calls.media_hooks import MediaHooks
from calls.ownership import OwnAll, Ownership
from calls.recording import Recording
from calls.routes import AccountNotProvisioned, OutboundRoutes
from calls.watchdog import Watchdog
from config import Config
from esl.events import Event
from esl.outbound import OutboundServer, OutboundSession
from models import CANCELED, Call

if TYPE_CHECKING:
    from calls.nodes import Node, NodePool


class CallController:
    def __init__(self, config: Config, pool: NodePool, media: MediaHooks | None = None,
                 clock: Callable[[], float] = time.monotonic, ownership: Ownership | None = None) -> None:
        calls = LiveCalls(ConcurrencyLimits(config.max_concurrent_calls, config.org_max_concurrent_calls))
        # Which nodes' channel events this instance drives (calls/ownership.py); one instance owns all.
        ownership = ownership or OwnAll(getattr(pool, "nodes", {}))
        self.ctx = ControlContext(config, pool, media or MediaHooks(), calls, ownership)
        self.dial_rules = dialing.DialRules.from_config(config)
        self.routes = OutboundRoutes(self.ctx, self.dial_rules)
        self.ending = AttemptEnd(self.ctx)
        self.control = CallControl(self.ctx, self.ending, self.routes)
        # The stream needs to know whether the socket server runs; the server starts streams: a late lookup.
        self.streams = AudioStreams(self.ctx, self.control, socket_listening=lambda: self.inbound.listening())
        self.inbound = InboundSocket(self.ctx, self.streams)
        self.dialer = Dialer(self.ctx, self.ending, self.routes, socket_target=self.inbound.target, clock=clock)
        self.recording = Recording(self.ctx)
        self.events = ChannelEvents(self.ctx, self.ending, self.control, self.recording, self.streams)
        self.watchdog = Watchdog(self.ctx, self.ending, self.control)

    # ---- the shared state, as other code and the tests see it --------------------------------------------
    @property
    def config(self) -> Config:
        return self.ctx.config

    @config.setter
    def config(self, value: Config) -> None:
        self.ctx.config = value

    @property
    def media(self) -> MediaHooks:
        return self.ctx.media

    @media.setter
    def media(self, value: MediaHooks) -> None:
        self.ctx.media = value

    @property
    def pool(self) -> NodePool:
        return self.ctx.pool

    @property
    def live(self) -> LiveCalls:
        return self.ctx.calls

    @property
    def limits(self) -> ConcurrencyLimits:
        return self.ctx.calls.limits

    @property
    def pacer(self) -> Pacer:
        return self.dialer.pacer

    @property
    def reconciled(self) -> bool:
        return self.ctx.calls.reconciled

    @reconciled.setter
    def reconciled(self, value: bool) -> None:
        self.ctx.calls.reconciled = value

    @property
    def socket_server(self) -> OutboundServer | None:
        return self.inbound.server

    @property
    def ownership(self) -> Ownership:
        return self.ctx.ownership

    # ---- Dialer (the dispatcher's side) -------------------------------------------------------------------
    def capacity(self) -> int:
        return self.dialer.capacity()

    def wait_time(self) -> float:
        """Seconds until the next originate slot: the dispatcher starts each claimed call in its slot."""
        return self.dialer.wait_time()

    @property
    def per_org_max(self) -> int:
        """ORG_MAX_CONCURRENT_CALLS: the claim leaves organizations at it in the queue."""
        return self.ctx.calls.limits.per_org_max

    def prepare(self, call: Call) -> Originate | None:
        return self.dialer.prepare(call)

    def dial(self, call: Call, prepared: Originate | None = None) -> None:
        self.dialer.dial(call, prepared)

    def rest(self) -> None:
        self.dialer.pacer.rest()

    def notify_room(self, callback: Callable[[str], None]) -> None:
        """callback(organization id) whenever a call driven here has ended and its row says so: room to dial, for a
        dispatcher waiting for it."""
        self.ctx.calls.limits.on_room = callback

    # ---- events and the socket server -----------------------------------------------------------------------
    def handle_event(self, node_name: str, event: Event) -> None:
        """Entry point for every event of every node (called in the node's reader greenlet)."""
        self.events.handle(node_name, event)

    def handle_inbound(self, session: OutboundSession) -> None:
        self.inbound.handle(session)

    # ---- call control (the API's side) ----------------------------------------------------------------------
    def hangup(self, call: Call, reason: str = "hung up through the API", unserved: bool = False) -> None:
        self.control.hangup(call, reason, unserved)

    def transfer(self, call: Call, target: str, mode: str) -> bool:
        return self.control.transfer(call, target, mode)

    def break_playback(self, call_id: str) -> None:
        self.control.break_playback(call_id)

    def send_dtmf(self, call_id: str, digits: str) -> bool:
        return self.control.send_dtmf(call_id, digits)

    # ---- reconciliation and the watchdog --------------------------------------------------------------------
    def reconcile(self, node: Node) -> dict[str, int]:
        """After (re)connecting to `node`: adopt calls FreeSWITCH still has, close the ones it lost
        (calls/reconcile.py has the table of what happens to each)."""
        from calls import reconcile

        return reconcile.reconcile(self.ctx, self.control, node, self.events.start_answered)

    def watchdog_pass(self) -> int:
        """Close calls that outlived their limits: ringing past the originate timeout, or too long."""
        return self.watchdog.run_pass()

    # ---- the pre-split private names, for code written against them (new code uses the parts) -------------
    def _hangup_requested(self, call: Call) -> bool:
        return self.ctx.calls.hangup_requested(call)

    def _kill(self, live: LiveCall, channel: str | None) -> str:
        return self.control.kill(live, channel)

    def _end_attempt(self, call_id: str, cause: str | None, sip_code: int | None, billsec: int = 0,
                     reason: str | None = None, attempt: int | None = None, billmsec: int = 0) -> None:
        self.ending.end(call_id, cause, sip_code, billsec, reason, attempt, billmsec)

    def _note_bridged_leg(self, event: Event) -> None:
        self.events.note_bridged_leg(event)

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        from calls import cross_instance

        self.media.start()  # listening before any call can be answered
        self.inbound.start()
        self.pool.start(on_event=self.handle_event, on_connected=self._node_connected)
        self.ownership.start(on_acquired=lambda name: cross_instance.node_acquired(self.ctx, self.reconcile, name),
                             on_lost=lambda name: cross_instance.node_lost(self.ctx, name))
        gevent.spawn(self._ready_without_nodes)
        self.watchdog.start()

    def _node_connected(self, node: Node) -> None:
        if self.ownership.owns(node.name):
            self.reconcile(node)  # a node owned by another instance is reconciled there

    def _ready_without_nodes(self) -> None:
        """An instance that owns no node has no live calls to re-adopt: it may dial once ownership is known."""
        if self.ownership.wait_first_pass(60) and not self.ownership.owned():
            self.reconciled = True

    def stop(self) -> None:
        self.watchdog.stop()
        self.streams.stop()
        self.inbound.stop()
        self.ownership.stop()
        self.pool.stop()
        self.media.stop()

    def health(self) -> list[dict[str, Any]]:
        """Each node as this instance sees it, and whether this instance owns its events (calls/ownership.py)."""
        return [dict(node, owned=self.ownership.owns(node["node"])) for node in self.pool.health()]


def build_telephony(config: Config) -> tuple[CallController, CallController]:
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


# Names other code imported from here before the split; their homes are the modules above.
__all__ = ["AUDIO_FORK_SUBCLASSES", "CANCELED", "HANGUP_REQUESTED", "SUBSCRIBED_EVENTS", "UUID_RE",
           "AccountNotProvisioned", "CallController", "CallNotControlled", "DialRefused", "LiveCall", "MediaHooks",
           "TransferFailed", "build_telephony", "narrowband_leg"]
