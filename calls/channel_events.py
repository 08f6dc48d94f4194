"""The channel-event handler: what FreeSWITCH's events do to the calls this process drives.

Every event of every node arrives here (in the node's reader greenlet). The events of a node another instance
owns (calls/ownership.py) only release what this instance holds for its calls (cross_instance.observe_foreign);
on an owned node a call dialed or answered by another instance is adopted from its row on its first event.
Only an event of a call's own channel moves the call (LiveCalls.driven_call): CHANNEL_PROGRESS(_MEDIA) rings
it, CHANNEL_ANSWER answers it (recording and the agent's audio stream start), CHANNEL_HANGUP_COMPLETE ends its
attempt (ending.py). The loopback B-leg's hangup events carry the far end's SIP status; mod_audio_fork's CUSTOM
events record the stream's life, repair it (audio_stream.py) and play the agent's playAudio files.
"""
from __future__ import annotations

import json
import logging

import gevent

from calls import cross_instance
from calls.audio_stream import AudioStreams
from calls.call_control import CallControl
from calls.causes import far_end_sip_code
from calls.control_context import ControlContext
from calls.ending import AttemptEnd
from calls.recording import Recording
from calls.state import transition
from esl import commands
from esl.errors import EslError
from esl.events import Event
from models import CALLING, IN_PROGRESS, RINGING, Call, CallEvent, database, utcnow
from observability.context import call_context, in_context

log = logging.getLogger(__name__)

# CHANNEL_HANGUP: the loopback B-leg's carries the far end's SIP status, before the A-leg's HANGUP_COMPLETE.
SUBSCRIBED_EVENTS = ("CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER",
                     "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE_COMPLETE", "DTMF", "BACKGROUND_JOB",
                     "HEARTBEAT", "CUSTOM")
AUDIO_FORK_SUBCLASSES = ("mod_audio_fork::connect", "mod_audio_fork::connect_failed", "mod_audio_fork::disconnect",
                         "mod_audio_fork::play_audio", "mod_audio_fork::kill_audio", "mod_audio_fork::json",
                         "mod_audio_fork::transcription", "mod_audio_fork::error")
AUDIO_FORK_PREFIX = "mod_audio_fork::"


def narrowband_leg(event: Event) -> bool | None:
    """Whether the answered leg's codec runs at 8 kHz (PCMU, PCMA, L16/8000), from the event's read rate;
    None when the event does not say (a 16k stream of it is then treated as wideband)."""
    rate = event.read_rate
    return rate <= 8000 if rate is not None else None


class ChannelEvents:
    def __init__(self, ctx: ControlContext, ending: AttemptEnd, control: CallControl, recording: Recording,
                 streams: AudioStreams) -> None:
        self.ctx = ctx
        self.ending = ending
        self.control = control
        self.recording = recording
        self.streams = streams

    def handle(self, node_name: str, event: Event) -> None:
        """Entry point for every event of every node (called in the node's reader greenlet)."""
        try:
            with call_context(self.ctx.calls.call_id_of(event)), database.connection_context():
                if not self.ctx.ownership.owns(node_name):
                    # Another instance drives this node's calls: only what runs here for them is touched.
                    cross_instance.observe_foreign(self.ctx, self.note_bridged_leg, event)
                    return
                cross_instance.adopt_from_event(self.ctx, node_name, event)
                self._dispatch(event)
        except Exception:
            log.exception("handling %s from %s failed", getattr(event, "name", "?"), node_name)

    def _dispatch(self, event: Event) -> None:
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
            self.note_bridged_leg(event)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self.note_bridged_leg(event)
            self._on_hangup(event)
        elif name == "DTMF":
            call = self.ctx.calls.driven_call(event)
            if call is not None:
                self.ctx.media.on_dtmf(call.id, event.dtmf_digit or "")

    def _on_create(self, event: Event) -> None:
        """A channel of a call whose hangup was asked for before it existed (the kill found nothing)."""
        calls = self.ctx.calls
        live = calls.get(calls.call_id_of(event) or "")
        if live is None:
            return  # not a call driven here: nothing to do, and no query for it
        # The hangup may have been asked through another instance (its marker), while the originate was in flight.
        if not live.hangup_requested and not calls.hangup_marked(live.call_id, live.attempt):
            return
        live.hangup_requested = True
        if calls.driven_call(event) is not None:
            self.control.kill(live, event.unique_id)

    def _on_progress(self, event: Event) -> None:
        call = self.ctx.calls.driven_call(event)
        if call is not None and call.status == CALLING:
            transition(call, RINGING, reason=event.name.lower())

    def _on_answer(self, event: Event) -> None:
        call = self.ctx.calls.driven_call(event)
        if call is None or call.status == IN_PROGRESS:
            return
        channel = event.unique_id
        if not transition(call, IN_PROGRESS, reason="answered", answered_at=utcnow(), channel_uuid=channel):
            return
        live = self.ctx.calls.get(call.id)
        if live is not None:
            live.narrowband = narrowband_leg(event)
        self.start_answered(call, channel)

    def start_answered(self, call: Call, channel: str) -> None:
        """What an answer starts: the recording and the agent's audio stream (also for a call reconciliation
        finds answered, whose CHANNEL_ANSWER went to no instance)."""
        self.recording.start(call, channel)
        self.streams.start(call, channel)
        self.streams.watch_connect(call)

    def note_bridged_leg(self, event: Event) -> None:
        """The default route's SIP leg is bridged from the loopback B-leg, so FreeSWITCH puts the far end's SIP
        status on the B-leg, never on the A-leg that drives the call: remember it for the attempt's end."""
        if event.loopback_leg != "B":
            return
        live = self.ctx.calls.get(event.call_id or "")
        if live is None or event.unique_id == live.channel:
            return
        code = far_end_sip_code(event)
        if code is not None:
            live.far_sip_code = code

    def _on_hangup(self, event: Event) -> None:
        call = self.ctx.calls.driven_call(event)
        if call is None:
            return
        sip = far_end_sip_code(event)
        live = self.ctx.calls.get(call.id)
        if sip is None and live is not None:
            sip = live.far_sip_code
        end = (call.id, event.hangup_cause, sip, event.billsec or 0, None, call.attempt, event.billmsec or 0)
        if call.id not in getattr(self.ctx.media, "sessions", {}) and cross_instance.remote_session_pending(call):
            # Its voice session runs on another instance: ended once that one recorded the cut-off turn, in a
            # greenlet of its own (this reader greenlet carries every call of the node).
            gevent.spawn(in_context(self._end_after_remote_session), call, end)
        else:
            self.ending.end(*end)

    def _end_after_remote_session(self, call: Call, end: tuple) -> None:
        cross_instance.wait_remote_session(call)
        with database.connection_context():
            self.ending.end(*end)

    def _on_audio_fork(self, event: Event) -> None:
        subclass = event.subclass or ""
        if not subclass.startswith(AUDIO_FORK_PREFIX):
            return
        call = self.ctx.calls.driven_call(event)
        if call is None:
            return
        kind = subclass[len(AUDIO_FORK_PREFIX):]
        channel = event.unique_id
        if kind == "play_audio":
            self._play(call, channel, event.body)
        elif kind in ("connect", "connect_failed", "disconnect", "error"):
            CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                             reason=f"media {kind}", data=json_or_text(event.body))
            live = self.ctx.calls.get(call.id)
            if kind == "connect" and live is not None:
                live.media_connected = True
            if kind in ("connect_failed", "disconnect"):
                self.streams.on_stream_lost(call, channel, kind)

    def _play(self, call: Call, channel: str, body: str | None) -> None:
        """mod_audio_fork wrote the agent's audio to a file; play it into the call."""
        data = json_or_text(body)
        path = data.get("file") if isinstance(data, dict) else None
        live = self.ctx.calls.get(call.id)
        if not path or live is None:
            return
        try:
            self.ctx.api(live, commands.uuid_broadcast(channel, path))
        except (EslError, ValueError) as exc:
            log.warning("call %s: could not play %r: %s", call.id, path, exc)


def json_or_text(body: str | None) -> object:
    """A mod_audio_fork event's body: its JSON, or the start of its text when it is not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return {"text": body[:500]}
