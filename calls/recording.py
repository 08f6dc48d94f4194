"""Call recording: agents with settings.record get a stereo WAV (caller left, agent right), written by
FreeSWITCH itself from the answer on; recordings/ uploads it after the call."""
from __future__ import annotations

import os

from calls.control_context import ControlContext
from esl import commands
from esl.errors import EslError, UnsafeValue
from models import IN_PROGRESS, Agent, Call, CallEvent


class Recording:
    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx

    def start(self, call: Call, channel: str) -> None:
        """On answer: start the recording when the call's agent has settings.record; the outcome is a call event."""
        agent = Agent.get_or_none(Agent.id == call.agent_id) if call.agent_id else None
        live = self.ctx.calls.get(call.id)
        if agent is None or not (agent.settings or {}).get("record") or live is None:
            return
        path = os.path.join(os.path.abspath(self.ctx.config.recordings_dir), f"{call.id}.wav")
        node = self.ctx.node_of(live)
        try:
            node.api(commands.uuid_setvar(channel, "RECORD_STEREO", "true"))
            reply = node.api(commands.uuid_record(channel, "start", path))
        except (EslError, UnsafeValue) as exc:
            reply = f"-ERR {exc}"
        if reply.startswith("+OK"):
            Call.update(recording_path=path).where(Call.id == call.id).execute()
        CallEvent.create(call=call.id, from_status=IN_PROGRESS, to_status=IN_PROGRESS,
                         reason="recording started" if reply.startswith("+OK") else f"recording failed: {reply}")
