"""The app's socket server (the dialplan's `socket` application connects here): inbound calls, and the outbound
calls whose agent streams its voice back.

An inbound call is admitted (number -> organization -> agent), registered as live, answered, and its socket is
held until the call ends (closing it would hang the call up). Its channel events arrive on the node's inbound
connection like any other call's (channel_events.py). An outbound call originated with '&socket(...)' is held
the same way, and an agent that streams its voice gets the call kept writing audio (keep_writing). Behind a
load balancer (VOXBRIDGE_SOCKET_PUBLIC_ADDRESS) the socket may land on an instance that neither dialed the call
nor owns its node: it holds the socket all the same (calls/cross_instance.py).
"""
from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING

import gevent
import gevent.event

from calls import inbound, inbound_context
from calls.audio_stream import AudioStreams
from calls.channel_events import narrowband_leg
from calls.control_context import ControlContext
from calls.inbound_routing import InboundOrigin
from calls.live_call import UUID_RE
from esl.errors import SessionGone
from esl.events import Event
from esl.outbound import OutboundServer, OutboundSession
from models import LIVE_STATUSES, Call, database

if TYPE_CHECKING:
    from calls.nodes import Node

log = logging.getLogger(__name__)
# Streamed (bidirectional) agent audio is heard only while the channel writes audio: the app's socket session
# keeps this playback running (parked, a uuid_broadcast of silence or echo are not enough: see the captures).
SILENCE_STREAM = "silence_stream://-1"
# Each barge-in (killAudio) ends the silence playback once; past this many re-arms a call is not kept writing
# (a playback that ends at once, again and again, must not spin for the whole call).
MAX_SILENCE_REARMS = 1000


class InboundSocket:
    def __init__(self, ctx: ControlContext, streams: AudioStreams) -> None:
        self.ctx = ctx
        self.streams = streams
        self.server: OutboundServer | None = None

    # ---- the server ------------------------------------------------------------------------------------
    def start(self) -> None:
        config = self.ctx.config
        host, port = config.socket_address.rsplit(":", 1)
        self.server = OutboundServer(self.handle, host, int(port),
                                     command_timeout=config.esl_command_timeout_s).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def listening(self) -> bool:
        return self.server is not None

    def target(self) -> str | None:
        """host:port FreeSWITCH connects to: VOXBRIDGE_SOCKET_PUBLIC_ADDRESS when set (a load balancer in front
        of the instances), else VOXBRIDGE_SOCKET_ADDRESS with the bound port when it says 0; None while the
        server is not running."""
        if self.server is None:
            return None
        if self.ctx.config.socket_public_address:
            return self.ctx.config.socket_public_address
        host, _, port = self.ctx.config.socket_address.rpartition(":")
        if port == "0":
            port = str(self.server.port)
        return f"{host}:{port}"

    # ---- one connection ----------------------------------------------------------------------------------
    def handle(self, session: OutboundSession) -> None:
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
        dialed = channel.variable("vb_did") or channel.destination_number or ""
        caller = channel.caller_id_number
        calls = self.ctx.calls
        with database.connection_context():
            decision = inbound.admit(uuid, dialed, caller, self.ctx.config.default_region,
                                     origin=InboundOrigin.from_channel(channel))
            if decision.accepted:
                node = self._node_for(session)
                call = decision.call
                calls.register(call.id, call.organization_id, call.attempt, node.name, uuid)
                Call.update(node=node.name).where(Call.id == call.id).execute()
        if decision.accepted:
            # Allowed SIP headers and the organization's inbound webhook fill the call's variables, or reject it.
            # The call is live meanwhile, so a caller who hangs up while the webhook is waited for ends it.
            decision = inbound_context.prepare(decision, channel, self.ctx.config)
            if not decision.accepted:
                calls.forget(uuid)
        session.myevents()
        session.linger()
        if not decision.accepted:
            session.hangup(decision.hangup_cause or "CALL_REJECTED")
            return
        session.answer()
        self._hold(session, call.id)

    def _control_originated(self, session: OutboundSession, uuid: str) -> bool:
        """A call originated with '&socket(...)' (its uuid is the call id), by this instance or, behind a load
        balancer, another one: hold its socket here.

        Only an outbound call whose id is that very uuid takes this path (a caller cannot choose an inbound
        channel's uuid): held while it is live, closed when its socket comes after it ended."""
        calls = self.ctx.calls
        live = calls.get(uuid)
        if live is not None and live.channel != uuid:
            return False
        with database.connection_context():
            call = Call.get_or_none(Call.id == uuid)
        if call is None or call.direction != "outbound":
            return False
        if call.status not in LIVE_STATUSES:
            # The socket came after the call ended (the far end hung up while the socket app was starting): it
            # is not an inbound call, and nothing is left to drive. Closing the socket ends any channel left.
            log.info("socket for outbound call %s that is already %s: closed", uuid, call.status)
            return True
        # Looked up again after the read above, and marked held with no yield in between: the read yields, and
        # meanwhile this instance's dialer, when it does not own the node, may have forgotten the LiveCall its
        # originate job kept (dialer.py _await_job). Marking that dropped object kept nothing: keep_writing
        # then found the call not driven here and never started the fork (issue 13: answered, never greeted).
        live = calls.get(uuid)
        if live is None:  # dialed by another instance (or its dialer here let go): the stream runs here
            if (call.channel_uuid or call.id) != uuid or not call.node:
                return False
            live = calls.adopt(call, call.node, uuid)
        elif live.channel != uuid:
            return False
        # Kept until the hang-up: the dialer and a lost node ownership leave it (calls/cross_instance.py).
        live.held_here = True
        session.myevents()
        session.linger()
        self._hold(session, call.id)
        return True

    def _hold(self, session: OutboundSession, call_id: str) -> None:
        """Keep the socket until the call ends (closing it would hang the call up); an agent that streams its
        voice also gets the call kept writing audio."""
        with database.connection_context():
            call = Call.get_or_none(Call.id == call_id)
            streams = call is not None and self.ctx.media.streams_audio(call)
        if streams:
            self.keep_writing(session, call_id)
        # Returning closes the socket: after FreeSWITCH's linger notice it would otherwise keep the hung-up
        # session (and its channel row) for as long as the socket stays open.
        session.wait_over(self.ctx.config.max_call_duration_s + 60)

    def keep_writing(self, session: OutboundSession, call_id: str) -> None:
        """Run playback silence_stream://-1 for the whole call and start the bidirectional fork once it runs.

        Binary frames sent back are heard only while the channel writes audio; killAudio (barge-in) ends the
        playback but not the call, so each time it ends while the call is up it is started again. The fork
        waits for the first playback's CHANNEL_EXECUTE, so the agent's greeting is not streamed into a call
        that cannot play it yet."""
        running = gevent.event.Event()

        def on_execute(event: Event) -> None:  # on the session's reader greenlet: only flags
            if event.application == "playback" and event.application_data == SILENCE_STREAM:
                live = self.ctx.calls.get(call_id)
                if live is not None and live.narrowband is None:
                    live.narrowband = narrowband_leg(event)  # before the fork's metadata is written
                running.set()

        session.on("CHANNEL_EXECUTE", on_execute)
        config = self.ctx.config
        deadline = time.monotonic() + config.max_call_duration_s + 60
        fork_requested = False
        try:
            for _ in range(MAX_SILENCE_REARMS):
                if call_id not in self.ctx.calls or session.lingering or time.monotonic() >= deadline:
                    if not fork_requested:  # its stream is never started here (the call ended, or moved)
                        log.info("call %s: not driven here any more before its fork was started", call_id)
                    return
                playback = gevent.spawn(_play_silence, session, max(0.1, deadline - time.monotonic()))
                if not fork_requested:
                    fork_requested = True
                    if not running.wait(config.esl_command_timeout_s):
                        log.warning("call %s: the silence playback did not start; streamed audio may be lost",
                                    call_id)
                    self.streams.request_bidirectional(call_id, session.uuid)
                if not _playback_ended(playback, session, deadline):
                    return
            log.warning("call %s: silence playback re-armed %d times; no longer re-armed", call_id,
                        MAX_SILENCE_REARMS)
        finally:
            session.off("CHANNEL_EXECUTE", on_execute)

    def _node_for(self, session: OutboundSession) -> Node:
        """The node whose socket this is: the connect data's Core-UUID against each node's (learned from its
        events), else the node whose configured host resolves to the peer address, else the first node.
        Addresses alone cannot tell apart several nodes behind one host or named by hostnames."""
        nodes = list(self.ctx.pool.nodes.values())
        core = session.channel.core_uuid if session.channel else None
        for node in nodes:
            if core and getattr(node, "core_uuid", None) == core:
                return node
        peer = session.address[0]
        for node in nodes:
            if peer in _addresses(node.supervisor.connection.host):
                return node
        return nodes[0]


def _playback_ended(playback: gevent.Greenlet, session: OutboundSession, deadline: float) -> bool:
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


def _play_silence(session: OutboundSession, timeout: float) -> bool:
    """One silence playback; False when the call hung up during it. A hang-up is how every streamed call
    ends, so it is not an error (as an exception it killed the greenlet with a logged traceback)."""
    try:
        session.playback(SILENCE_STREAM, wait=True, timeout=timeout)
    except SessionGone as exc:
        log.debug("silence playback on %s: %s", session.name, exc)
        return False
    return True


def _addresses(host: str) -> set[str]:
    """The addresses a configured host name or address stands for (empty when it does not resolve)."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return set()
