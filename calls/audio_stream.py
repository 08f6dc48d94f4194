"""The agent's audio stream (mod_audio_fork): starting it on answer, and repairing it once when it fails.

The plain fork sends the caller's audio to the pipeline, which answers with playAudio events
(channel_events.py plays them). An agent that streams its voice back (audio_return "stream") gets the
ten-argument bidirectional fork instead, started by the call's socket session once its silence playback runs
(inbound_socket.py keep_writing), because streamed frames are heard only while the channel writes audio.

Repair: a live call whose stream failed (the pipeline unreachable, or it dropped the stream) gets one new
stream after a pause; a second failure hangs it up: an answered call with no agent is dead air. A call whose
stream never connected ends unserved (failed, unbilled: calls/unserved.py); one that had its agent completed.
A stream that ends because the call does (hangup or transfer asked, here or through another instance) is not
repaired.

Deadline: an answered call whose stream never connects (the fork never sent, refused, or its connection never
completing nor failing) would sit in dead air until MAX_CALL_DURATION. The instance that owns the call's node
(it sees the answer and the stream's connect) hangs it up as unserved (failed, unbilled: calls/unserved.py) when
no mod_audio_fork::connect came within MEDIA_CONNECT_TIMEOUT of the answer.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import gevent
import gevent.pool

from calls.call_control import CallControl
from calls.control_context import ControlContext
from calls.live_call import LiveCall
from esl import commands
from esl.errors import EslError
from models import IN_PROGRESS, LIVE_STATUSES, Call, CallEvent, database
from observability.context import in_context

log = logging.getLogger(__name__)
FORK_RETRY_DELAY_S = 1.0
FORK_RETRIES = 1
AUDIO_FORK_BUG = "audio_fork"  # mod_audio_fork's default bug name; the bidirectional form must name it
BIDI_PLAYBACK_RATE = 16000  # the rate of the PCM the pipeline streams back (the fork reads 16k too)


class AudioStreams:
    def __init__(self, ctx: ControlContext, control: CallControl, socket_listening: Callable[[], bool]) -> None:
        """socket_listening: whether the app's socket server runs (streamed calls are then held by a session)."""
        self.ctx = ctx
        self.control = control
        self.socket_listening = socket_listening
        self._deadlines = gevent.pool.Group()  # one timer per answered call waiting for its stream (watch_connect)

    def stop(self) -> None:
        self._deadlines.kill(block=False)

    def start(self, call: Call, channel: str) -> None:
        """On answer (and on a retry): the plain fork, unless the call's socket session starts a bidirectional one."""
        if self.socket_listening() and self.ctx.media.streams_audio(call):
            return  # started by the call's socket session once its silence playback runs (keep_writing)
        self.request(call, channel, bidirectional=False)

    def request(self, call: Call, channel: str, bidirectional: bool) -> None:
        """uuid_audio_fork start: the plain form, or the ten-argument bidirectional one (bug name required)."""
        url = self.ctx.media.media_url(call)
        live = self.ctx.calls.get(call.id)
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
            reply = self.ctx.api(live, command)
        except EslError as exc:
            reply = f"-ERR {exc}"
        live.media_started = reply.startswith("+OK")
        CallEvent.create(call=call.id, from_status=IN_PROGRESS, to_status=IN_PROGRESS,
                         reason="media stream requested" if live.media_started else f"media stream failed: {reply}")

    def request_bidirectional(self, call_id: str, channel: str | None) -> None:
        """The socket session's silence playback runs: start the bidirectional fork if the call is still live."""
        with database.connection_context():
            call = Call.get_or_none(Call.id == call_id)
            if call is not None and call.status in LIVE_STATUSES and channel:
                self.request(call, channel, bidirectional=True)

    def on_stream_lost(self, call: Call, channel: str, kind: str) -> None:
        """The agent's audio stream could not connect, or dropped while nobody asked the call to end."""
        live = self.ctx.calls.get(call.id)
        if self._ending(call, live):
            return  # the stream ends because the call does (maybe transferred through another instance)
        what = "could not connect" if kind == "connect_failed" else "was dropped"
        if live.fork_retries < FORK_RETRIES:
            live.fork_retries += 1
            log.warning("call %s: the agent's audio stream %s; retrying once", call.id, what)
            gevent.spawn_later(FORK_RETRY_DELAY_S, self._retry, call.id, channel)
            return
        log.warning("call %s: the agent's audio stream %s again; hanging up", call.id, what)
        try:
            # Never connected on this attempt: nobody was spoken to, so the call ends unserved (failed, unbilled).
            self.control.hangup(call, f"the agent's audio stream {what} again after a retry (no agent on the call)",
                                unserved=not live.media_connected)
        except EslError as exc:
            log.warning("call %s: could not hang up after the stream failed: %s", call.id, exc)

    def _ending(self, call: Call, live: LiveCall | None) -> bool:
        """Whether the call is not up here any more, or its end was asked for (a hang-up, or a transfer, maybe
        through another instance): a stream that stops then is not to be repaired or waited for."""
        return live is None or call.status != IN_PROGRESS or live.hangup_requested or live.transfer_requested \
            or self.ctx.calls.transfer_marked(call)

    def _retry(self, call_id: str, channel: str) -> None:
        try:
            with database.connection_context():
                call = Call.get_or_none(Call.id == call_id)
                live = self.ctx.calls.get(call_id)
                if call is None or self._ending(call, live):
                    return
                CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                                 reason="media stream retried")
                # A streaming agent's silence playback still runs: its fork is restarted in the same form.
                streams = self.socket_listening() and self.ctx.media.streams_audio(call)
                self.request(call, channel, bidirectional=streams)
                if not live.media_started:  # refused outright (-ERR): no event will follow
                    self.control.hangup(call, "the agent's audio stream could not be restarted (no agent on the call)",
                                        unserved=not live.media_connected)
        except Exception:
            log.exception("call %s: retrying the audio stream failed", call_id)

    # ---- the connect deadline ----------------------------------------------------------------------------------
    def watch_connect(self, call: Call) -> None:
        """On answer, by the node's owner: unless the agent's stream connects within MEDIA_CONNECT_TIMEOUT, the
        call is hung up as unserved (connect_overdue). Only for a call that gets a stream (an agent, a pipeline)."""
        timeout = float(getattr(self.ctx.config, "media_connect_timeout_s", 0) or 0)
        live = self.ctx.calls.get(call.id)
        if timeout <= 0 or live is None or call.agent_id is None or not self.ctx.media.streams_calls:
            return
        self._deadlines.add(gevent.spawn_later(timeout, in_context(self.connect_overdue), call.id, live, timeout))

    def connect_overdue(self, call_id: str, live: LiveCall, timeout: float) -> bool:
        """The deadline of the answered attempt `live`: hang the call up as unserved when its stream has not
        connected and nothing else ends it; True when it did. Acts only while this instance drives that very
        attempt on a node it owns (a new attempt, or a node taken over by another instance, has its own)."""
        try:
            with database.connection_context():
                call = Call.get_or_none(Call.id == call_id)
                if call is None or self._ending(call, live) or call.attempt != live.attempt \
                        or self.ctx.calls.get(call_id) is not live or live.media_connected \
                        or not call.node or not self.ctx.ownership.owns(call.node) \
                        or self.ctx.calls.hangup_requested(call):
                    return False
                log.warning("call %s: the agent's audio stream did not connect within %g s of the answer; "
                            "hanging up", call_id, timeout)
                self.control.hangup(call, f"the agent's audio stream did not connect within {timeout:g} s of the "
                                          "answer (no agent on the call)", unserved=True)
                return True
        except EslError as exc:
            log.warning("call %s: could not hang up after its stream did not connect: %s", call_id, exc)
        except Exception:
            log.exception("call %s: the stream's connect deadline failed", call_id)
        return False
