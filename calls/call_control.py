"""Call control, the API's and the agent's side: hang up, transfer, break a playback, press keys.

Each command goes to the node that carries the call (ControlContext.api), whichever instance drives it: a call
driven by another instance is reached through its row (cross_instance.remote_live). A call live on no node
(claimed, not dialed yet) cannot be transferred (CallNotControlled) and is closed by a hangup rather than left
live.
"""
from __future__ import annotations

from calls import cross_instance, dialing
from calls.control_context import ControlContext
from calls.ending import AttemptEnd
from calls.live_call import LiveCall
from calls.routes import AccountNotProvisioned, OutboundRoutes
from esl import commands
from esl.errors import EslError
from models import Call, CallEvent


class CallNotControlled(Exception):
    """The call is live in the database but on no FreeSWITCH node this instance knows (not dialed yet)."""


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


class CallControl:
    def __init__(self, ctx: ControlContext, ending: AttemptEnd, routes: OutboundRoutes) -> None:
        self.ctx = ctx
        self.ending = ending
        self.routes = routes

    def hangup(self, call: Call, reason: str = "hung up through the API", unserved: bool = False) -> None:
        """Hang the call up: an answered call ends completed, an unanswered one canceled (never retried);
        `unserved` (the app could not serve it, e.g. its voice never started) ends it failed with `reason`.

        The request is stored before the kill is sent, so the HANGUP_COMPLETE it causes (which can arrive
        before api() returns) finds it. Raises EslError when FreeSWITCH cannot be told; then the request is
        withdrawn and the call stays as it was.
        """
        live = self.ctx.calls.get(call.id)
        marker = self.ctx.calls.note_hangup_request(call, reason, unserved)
        if live is None:
            live = cross_instance.remote_live(self.ctx, call)  # live on a node: the kill goes there, whoever drives it
        if live is None:
            # Not on any node (claimed but not dialed yet): close it rather than leave it live. The dialer checks
            # the marker before it dials.
            self.ending.end(call.id, "MANAGER_REQUEST", None, reason=reason)
            return
        live.hangup_requested = True
        try:
            self.kill(live, call.channel_uuid or call.id)
        except EslError:
            live.hangup_requested = False
            CallEvent.delete().where(CallEvent.id == marker.id).execute()
            raise

    def kill(self, live: LiveCall, channel: str | None) -> str:
        """uuid_kill the call's channel (`channel`, else the call id) on the node that carries it."""
        return self.ctx.api(live, commands.uuid_kill(channel or live.call_id))

    def break_playback(self, call_id: str) -> None:
        live, call = cross_instance.driving_or_remote(self.ctx, call_id)
        if live is not None and call is not None:
            self.ctx.api(live, commands.uuid_break(call.channel_uuid or call.id))

    def send_dtmf(self, call_id: str, digits: str) -> bool:
        """The agent presses keys (send_dtmf): True once FreeSWITCH said +OK. The command builder refuses
        anything but keypad keys; the reply is kept as a call event."""
        live, call = cross_instance.driving_or_remote(self.ctx, call_id)
        if live is None or call is None:
            return False
        reply = self.ctx.api(live, commands.uuid_send_dtmf(call.channel_uuid or call.id, digits))
        CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                         reason=f"send_dtmf {digits}: {reply.strip()[:200]}")
        return reply.startswith("+OK")

    def transfer(self, call: Call, target: str, mode: str) -> bool:
        """Transfer a live call; True once FreeSWITCH accepted it.

        Raises CallNotControlled (not live on any node), DialRefused (the target breaks an outbound rule),
        TransferFailed (a -ERR reply: the call stays with
        the agent) or an EslError (FreeSWITCH unreachable).
        """
        live = self.ctx.calls.get(call.id)
        if live is None:
            live = cross_instance.remote_live(self.ctx, call)  # driven by another instance: sent to its node from here
        if live is None:
            raise CallNotControlled(f"call {call.id} is not live on any FreeSWITCH node")
        refusal = dialing.check(target, self.routes.dial_rules)
        if refusal is not None:
            # A REFER never passes the dialplan, and a bridge transfer must not depend on it alone.
            CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                             reason=f"transfer ({mode}) to {target} refused ({refusal.rule}): {refusal.reason}")
            raise DialRefused(call.id, refusal)
        channel = call.channel_uuid or call.id
        node = self.ctx.node_of(live)
        if mode == "refer":
            # REFER hands the call back to whoever sent it: the customer's PBX when the organization
            # has one, else the platform's SIP domain (carrier trunks resolve the number there).
            command = commands.uuid_deflect(channel, target, self.routes.refer_host(call))
        else:
            command = commands.uuid_transfer(channel, target, self.ctx.config.transfer_context)
            # dialplan/transfer.xml sends the number through voxbridge_outbound, which reads these.
            for name, value in self._transfer_vars(call).items():
                self._transfer_step(call, mode, target, node.api(commands.uuid_setvar_dialplan(channel, name, value)))
        # Set first: the transfer takes the channel from the stream, whose disconnect must not be repaired; the
        # marker tells the instance that drives the call (it may be another one).
        live.transfer_requested = True
        marker = self.ctx.calls.note_transfer_request(call, mode)
        try:
            self._transfer_step(call, mode, target, node.api(command))
        except Exception:
            live.transfer_requested = False
            CallEvent.delete().where(CallEvent.id == marker.id).execute()  # the call stays: its stream is repaired
            raise
        return True

    @staticmethod
    def _transfer_step(call: Call, mode: str, target: str, reply: str) -> None:
        CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                         reason=f"transfer ({mode}) to {target}: {reply.strip()[:200]}")
        if not reply.startswith("+OK"):
            raise TransferFailed(call.id, reply)

    def _transfer_vars(self, call: Call) -> dict[str, str]:
        """The outbound context's variables for a bridge transfer: what an outbound call originates with,
        plus the trunk. The caller ID presented is a number the organization owns: the outbound call's
        caller ID, or the number an inbound caller dialed."""
        variables = self.routes.dialplan_vars(call)
        variables["vb_caller_id"] = (call.from_number if call.direction == "outbound" else call.to_number) or ""
        try:
            variables["vb_gateway"] = self.routes.gateway(call) or ""
        except AccountNotProvisioned as exc:
            raise TransferFailed(call.id, f"-ERR {exc}") from exc
        return variables
