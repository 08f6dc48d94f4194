"""The simulated switch: channels, their life cycle and applications, and the event bus."""
from __future__ import annotations

import collections
import itertools
import logging
import time
import uuid as uuidlib
from collections.abc import Callable

import gevent
import gevent.event
import gevent.pool
import gevent.queue

from fssim import loopback
from fssim.applications import is_application
from fssim.channel import Channel
from fssim.dialstring import Application, DialError, DialString, parse_dialstring
from fssim.events import Event, core_headers, now_us
from fssim.media import HeardAudio, file_pcm16k, play_duration
from fssim.registry import Registry
from fssim.rules import FAILURES, Outcome, Rule, Rules
from fssim.sip_invite import header_variables

log = logging.getLogger(__name__)
DEFAULT_ORIGINATE_TIMEOUT = 60.0


class Switch:
    def __init__(self, rules: Rules | None = None, registry: Registry | None = None,
                 max_sessions: int = 1000, sps: int = 30):
        self.core_uuid = str(uuidlib.uuid4())
        self.rules = rules or Rules()
        self.registry = registry or Registry(None)
        self.channels: dict[str, Channel] = {}
        self.held: dict[str, Channel] = {}  # hung up, kept by a lingering outbound socket until it closes
        self.sessions: set = set()  # anything with offer(Event)
        self.heard = HeardAudio()
        self.seq = itertools.count(1)
        self.session_ids = itertools.count(1)
        self.started = time.time()
        self.max_sessions, self.sps = max_sessions, sps
        self.sessions_since_startup = 0
        self.peak = 0
        self.globals: dict[str, str] = {"hostname": "vm", "domain": "192.0.2.2"}
        self.greenlets = gevent.pool.Group()
        self.app_queues: dict[str, gevent.queue.Queue] = {}
        self.socket_connector: Callable[[Channel, str, bool], object] | None = None
        self.forks = None  # fssim.audio_fork.AudioForks, set by the simulator
        self.job_results: dict[str, str] = {}
        # (time.monotonic(), dial string) of each originate as it arrives: what a test measures dial rates by.
        self.originated: collections.deque[tuple[float, str]] = collections.deque(maxlen=100_000)
        # A-leg uuid -> its loopback B-leg (fssim/loopback.py). The B-leg is what mod_loopback hands to the
        # dialplan; here it mirrors the A-leg's life in events and carries the far end's SIP status when the
        # far end refuses or hangs up; it is not listed in self.channels.
        self.loopback_b: dict[str, Channel] = {}

    # ---- events -------------------------------------------------------------------------------
    def emit(self, name: str, extra: list[tuple[str, str]] | None = None, body: str | None = None,
             channel: Channel | None = None, subclass: str = "") -> Event:
        headers = core_headers(self.core_uuid, name, next(self.seq), subclass)
        if channel is not None:
            headers += channel.event_headers(cause_after_state=name in ("CHANNEL_HANGUP", "CHANNEL_DESTROY"))
        headers += extra or []
        ev = Event(name, headers, body, subclass, channel.uuid if channel else "")
        for s in list(self.sessions):
            s.offer(ev)
        return ev

    def channel_event(self, ch: Channel, name: str, extra: list[tuple[str, str]] | None = None) -> Event:
        return self.emit(name, extra, channel=ch)

    def custom(self, ch: Channel, subclass: str, body: str | None) -> Event:
        return self.emit("CUSTOM", None, body, channel=ch, subclass=subclass)

    # ---- originate ------------------------------------------------------------------------------
    def originate(self, dial: str, app: Application | None, timeout_arg: str | None = None) -> str:
        """Blocks until the call answers or fails, like the api command.

        Answers '+OK <uuid>\\n' or '-ERR <CAUSE>\\n'.
        """
        self.originated.append((time.monotonic(), dial))
        try:
            ds = parse_dialstring(dial)
            self._check_dial(ds)
        except DialError as e:
            return f"-ERR {e.cause}\n"
        result = gevent.event.AsyncResult()
        ch = self._new_outbound(ds)
        if timeout_arg and timeout_arg.isdigit() and "originate_timeout" not in ds.variables:
            ds.variables["originate_timeout"] = timeout_arg
        self.greenlets.spawn(self._outbound_life, ch, ds, app or Application("park"), result)
        return result.get()

    def _check_dial(self, ds: DialString) -> None:
        if ds.tech == "error":
            raise DialError(ds.target if ds.target in _known_causes() else "NORMAL_CLEARING")
        if ds.tech == "sofia" and ds.gateway and not self.registry.gateway_active(ds.gateway):
            raise DialError("INVALID_GATEWAY")
        if ds.tech == "sofia" and not ds.gateway and not self.registry.profile_exists(ds.profile):
            raise DialError("CHAN_NOT_IMPLEMENTED")
        if ds.tech == "sofia" and ds.variables.get("origination_uuid") in (*self.channels, *self.held):
            # A live FreeSWITCH 1.10.12 logs "Duplicate UUID!" and fails a sofia leg with this cause; only a
            # loopback leg is dialed again under a new uuid (the captures' case, _new_outbound).
            raise DialError("DESTINATION_OUT_OF_ORDER")
        if ds.tech == "user":
            raise DialError("USER_NOT_REGISTERED" if self.registry.user_exists(ds.target) else "SUBSCRIBER_ABSENT")
        if len(self.session_rows()) >= self.max_sessions:
            raise DialError("SWITCH_CONGESTION")

    def _new_outbound(self, ds: DialString) -> Channel:
        v = ds.variables
        # A duplicate origination_uuid on a loopback leg is not refused by FreeSWITCH: the call gets a new uuid
        # (a sofia leg never gets here: _check_dial).
        uid = v.get("origination_uuid", "")
        if not uid or uid in self.channels:
            uid = str(uuidlib.uuid4())
        if ds.tech == "loopback":
            name, source, callee = f"loopback/{ds.target}-a", "mod_loopback", ds.context
        elif ds.gateway:
            name, source, callee = f"sofia/gateway/{ds.gateway}/{ds.target}", "src/switch_ivr_originate.c", ds.target
        else:
            name = f"sofia/{ds.profile}/{ds.target}@{ds.host}"
            source, callee = "src/switch_ivr_originate.c", ds.target
        ch = Channel(uid, name, "outbound", "loopback" if ds.tech == "loopback" else "sofia", ds.target,
                     cid_name=v.get("origination_caller_id_name", ""),
                     cid_num=v.get("origination_caller_id_number", "0000000000"),
                     callee_num=callee, source=source, session_id=next(self.session_ids),
                     dialplan="xml" if ds.tech == "loopback" else "")
        ch.set_var("direction", "outbound")
        ch.set_var("is_outbound", "true")
        ch.set_var("session_id", str(ch.session_id))
        for k in ("read_codec", "write_codec"):
            ch.set_var(k, "L16")
            ch.set_var(k.replace("codec", "rate"), "8000")
        ch.variables = {k: ch.variables[k] for k in ("direction", "is_outbound", "session_id", "read_codec",
                                                      "read_rate", "write_codec", "write_rate")}
        ch.set_var("channel_name", name)
        ch.set_var("uuid", uid)
        ch.set_var("call_uuid", uid)
        if "origination_uuid" in v:
            ch.set_var("origination_uuid", uid)
        for k, val in v.items():
            if k != "origination_uuid":
                ch.set_var(k, val)
        ch.set_var("originate_early_media", "true")
        ch.set_var("originate_endpoint", "loopback" if ds.tech == "loopback" else "sofia")
        if ds.tech == "loopback":
            ch.set_var("other_loopback_leg_uuid", str(uuidlib.uuid4()))
            ch.set_var("loopback_leg", "A")
            self.loopback_b[uid] = loopback.b_leg(ch, ds, next(self.session_ids))
        else:
            host = ds.host or self.registry.gateway_proxy(ds.gateway)
            ch.network_addr = host.split(":")[0]
            ch.set_var("sip_profile_name", ds.profile)
            if ds.gateway:
                ch.set_var("sip_gateway_name", ds.gateway)
            ch.set_var("sip_destination_url", f"sip:{ds.target}@{host}")
            ch.set_var("sip_req_uri", f"{ds.target}@{host}")
            ch.set_var("sip_to_host", host)
            ch.set_var("sip_call_id", str(uuidlib.uuid4()))
        self._register(ch)
        return ch

    def _register(self, ch: Channel) -> None:
        self.channels[ch.uuid] = ch
        self.app_queues[ch.uuid] = gevent.queue.Queue()
        self.sessions_since_startup += 1
        self.peak = max(self.peak, len(self.channels))

    def _outbound_life(self, ch: Channel, ds: DialString, app: Application, result) -> None:
        try:
            self.channel_event(ch, "CHANNEL_CREATE")
            b_leg = self.loopback_b.get(ch.uuid)
            if b_leg is not None:
                self.channel_event(b_leg, "CHANNEL_CREATE")
            rule = self.rules.pick(ds.target)
            ch.remote_audio, ch.rtp, ch.codec = rule.audio, rule.rtp, rule.codec
            timeout = _float(ch.variables.get("originate_timeout"), DEFAULT_ORIGINATE_TIMEOUT)
            if not self._ring(ch, rule, timeout):
                if ch.up:
                    cause, status = FAILURES.get(rule.outcome, ("NO_ANSWER", 487))
                    if rule.outcome is Outcome.ANSWER:
                        cause, status = "NO_ANSWER", 487
                    ch.sip_status = status if ch.endpoint == "sofia" else None
                    self._bridged_far_end_ended(ch, cause, status)
                    self.hangup(ch, cause)
                self._finish(ch)
                result.set(f"-ERR {ch.hangup_cause}\n")
                return
            self.answer(ch)
            result.set(f"+OK {ch.uuid}\n")
            ch.set_var("endpoint_disposition", "ANSWER")
            if ch.cid_name:
                ch.set_var("pre_transfer_caller_id_name", ch.cid_name)
            ch.set_var("pre_transfer_caller_id_number", ch.cid_num)
            ch.set_var("channel_cid_flipped", "yes")
            ch.set_var("call_uuid", ch.uuid)
            ch.flipped, ch.hit_dialplan = True, True
            ch.set_state("CS_EXECUTE", "4", "ACTIVE")
            if rule.hangup_after is not None:
                self.later(rule.hangup_after, self.remote_hangup, ch, "NORMAL_CLEARING")
            self.run_app(ch, app.name, app.arg, top=True)
            self._finish(ch)
        finally:
            if not result.ready():
                result.set(f"-ERR {ch.hangup_cause or 'NORMAL_CLEARING'}\n")

    def _ring(self, ch: Channel, rule: Rule, timeout: float) -> bool:
        """Ringing until the rule's outcome; False if the call does not answer."""
        ring = rule.after
        if rule.outcome is Outcome.NO_ANSWER:
            ring = min(rule.after or timeout, timeout)
        elif ring > timeout:
            ring = timeout
        if ring > 0 or ch.endpoint == "sofia" and rule.outcome in (Outcome.ANSWER, Outcome.NO_ANSWER):
            ch.set_state("CS_CONSUME_MEDIA", "7")
            if rule.early_media:
                ch.progress_media_us = now_us()
                self.channel_event(ch, "CHANNEL_PROGRESS_MEDIA")
            else:
                ch.progress_us = now_us()
                self.channel_event(ch, "CHANNEL_PROGRESS")
        ch.hangup_event.wait(ring)
        if not ch.up:
            return False
        return rule.outcome is Outcome.ANSWER and rule.after <= timeout

    def answer(self, ch: Channel) -> None:
        if ch.answered_us or not ch.up:
            return
        ch.answered_us = now_us()
        ch.answer_state = "answered"
        if ch.direction == "outbound":
            ch.set_state("CS_CONSUME_MEDIA", "7")
        else:
            ch.call_state = "ACTIVE"
        self.channel_event(ch, "CHANNEL_ANSWER")
        ch.answered_event.set()
        b_leg = self.loopback_b.get(ch.uuid)
        if b_leg is not None and not b_leg.answered_us:
            b_leg.answered_us = ch.answered_us
            b_leg.answer_state, b_leg.call_state = "answered", "ACTIVE"
            self.channel_event(b_leg, "CHANNEL_ANSWER")

    def hangup(self, ch: Channel, cause: str = "NORMAL_CLEARING") -> bool:
        if not ch.up:
            return False
        ch.mark_hangup(cause)
        if ch.recording:
            self.write_recording(ch)
        ch.answer_state, ch.call_state = "hangup", "HANGUP"
        self.channel_event(ch, "CHANNEL_HANGUP")
        ch.hangup_event.set()
        return True

    def write_recording(self, ch: Channel) -> None:
        import array
        import wave

        path, ch.recording = ch.recording, None
        heard = self.heard.get(ch.uuid)[ch.record_from:]
        said = bytes(ch.said)
        stereo = str(ch.variables.get("RECORD_STEREO", "")).lower() == "true"
        try:
            with wave.open(path, "wb") as out:
                out.setsampwidth(2)
                out.setframerate(16000)
                if not stereo:
                    out.setnchannels(1)
                    out.writeframes(said or heard)
                    return
                out.setnchannels(2)
                n = max(len(said), len(heard)) // 2
                left = array.array("h", said.ljust(n * 2, b"\0"))
                right = array.array("h", heard.ljust(n * 2, b"\0"))
                both = array.array("h", bytes(n * 4))
                both[0::2], both[1::2] = left, right
                out.writeframes(both.tobytes())
        except OSError as exc:
            log.warning("recording %s could not be written: %s", path, exc)

    def remote_hangup(self, ch: Channel, cause: str = "NORMAL_CLEARING") -> bool:
        """The far end hangs up (a BYE: sip_term_status 200 on SIP calls)."""
        if ch.endpoint == "sofia" and ch.answered_us:
            ch.sip_status = 200
        if ch.up:
            self._bridged_far_end_ended(ch, cause, 200 if ch.answered_us else None)
        return self.hangup(ch, cause)

    def _bridged_far_end_ended(self, a_leg: Channel, cause: str, status: int | None) -> None:
        """A loopback call's far end refused or hung up: its B-leg learns the SIP status and hangs up first."""
        b_leg = self.loopback_b.get(a_leg.uuid)
        if b_leg is not None and b_leg.up:
            loopback.far_end_ended(b_leg, cause, status)
            self.hangup(b_leg, cause)

    def later(self, seconds: float, fn, *args) -> None:
        def run() -> None:
            gevent.sleep(seconds)
            fn(*args)

        self.greenlets.spawn(run)

    def _finish(self, ch: Channel) -> None:
        self.hangup(ch, ch.hangup_cause or "NORMAL_CLEARING")
        b_leg = self.loopback_b.pop(ch.uuid, None)
        if b_leg is not None:
            self.hangup(b_leg, ch.hangup_cause or "NORMAL_CLEARING")
        if self.forks is not None:
            self.forks.channel_gone(ch)
        ch.set_state("CS_HANGUP", "10")
        self.channel_event(ch, "CHANNEL_STATE")
        ch.set_state("CS_REPORTING", "11")
        self.channel_event(ch, "CHANNEL_STATE")
        ch.billing()
        self.channel_event(ch, "CHANNEL_HANGUP_COMPLETE")
        holder = next((s for s in list(self.sessions) if getattr(s, "holds", None) and s.holds(ch)), None)
        self.channels.pop(ch.uuid, None)  # no longer found by uuid (switch_core_session_locate fails once down)
        if holder is None:
            self.destroy(ch)
        else:
            self.held[ch.uuid] = ch
        if b_leg is not None:  # the capture: the B-leg's HANGUP_COMPLETE and DESTROY follow the A-leg's
            b_leg.billing()
            self.channel_event(b_leg, "CHANNEL_HANGUP_COMPLETE")
            b_leg.set_state("CS_DESTROY", "12")
            self.channel_event(b_leg, "CHANNEL_DESTROY")
        self.app_queues.pop(ch.uuid, None)
        if holder is not None:
            holder.holding = ch  # destroyed when the lingering socket closes
        for s in list(self.sessions):
            done = getattr(s, "channel_done", None)
            if done:
                done(ch)

    def destroy(self, ch: Channel) -> None:
        """switch_core_session_destroy: once nothing holds the session, CS_DESTROY and its row goes."""
        self.held.pop(ch.uuid, None)
        ch.set_state("CS_DESTROY", "12")
        self.channel_event(ch, "CHANNEL_DESTROY")

    def session_rows(self) -> list[Channel]:
        """Every session that still exists (`show channels`, `status`, the session limit): the live ones and
        the hung-up ones a lingering socket still holds."""
        return [*self.channels.values(), *self.held.values()]

    # ---- applications ---------------------------------------------------------------------------
    def queue_app(self, ch: Channel, name: str, arg: str, app_uuid: str | None = None,
                  broadcast: bool = False) -> None:
        """Queue an application for the channel's park/socket loop. `broadcast` (uuid_broadcast) plays
        its file without the channel writing audio of its own: the bidi captures show a parked call
        with a uuid_broadcast of silence does not play a bidirectional fork's frames."""
        q = self.app_queues.get(ch.uuid)
        if q is not None:
            q.put((name, arg, app_uuid, broadcast))

    def run_app(self, ch: Channel, name: str, arg: str, top: bool = False, app_uuid: str | None = None,
                broadcast: bool = False) -> str:
        """Runs one application on the channel; returns its Application-Response."""
        if not ch.up:
            return "_none_"
        if not is_application(name):
            # switch_core_session_execute_application: "Invalid Application", the channel hung up with
            # DESTINATION_OUT_OF_ORDER, nothing executed (no CHANNEL_EXECUTE events).
            log.warning("Invalid Application %s", name)
            self.hangup(ch, "DESTINATION_OUT_OF_ORDER")
            return "_none_"
        app_uuid = app_uuid or str(uuidlib.uuid4())
        prev = (ch.app, ch.app_data, ch.break_event, ch.writing_audio, ch.broadcasting)
        ch.app, ch.app_data, ch.break_event = name, arg, gevent.event.Event()
        ch.broadcasting = broadcast
        ch.set_var("current_application_data", arg) if arg else None
        ch.set_var("current_application", name)
        extra = [("Application", name)] + ([("Application-Data", arg)] if arg else []) \
            + [("Application-UUID", app_uuid)]
        self.channel_event(ch, "CHANNEL_EXECUTE", extra)
        runner = getattr(self, f"_app_{name}", None)
        response = runner(ch, arg, top) if runner else "_none_"
        ch.set_var("current_application_response", response)
        if name in ("park", "socket") and not ch.up:
            self.channel_event(ch, "CHANNEL_UNPARK")
        done = [("Application", name)] + ([("Application-Data", arg)] if arg else []) \
            + [("Application-Response", response), ("Application-UUID", app_uuid)]
        self.channel_event(ch, "CHANNEL_EXECUTE_COMPLETE", done)
        ch.set_var("last_app", name)
        if arg:
            ch.set_var("last_arg", arg)
        ch.app, ch.app_data, ch.break_event, ch.writing_audio, ch.broadcasting = prev
        return response

    def _wait(self, ch: Channel, seconds: float | None) -> None:
        gevent.wait([ch.hangup_event, ch.break_event], timeout=seconds, count=1)

    def _app_answer(self, ch: Channel, arg: str, top: bool) -> str:
        self.answer(ch)
        return "_none_"

    def _app_hangup(self, ch: Channel, arg: str, top: bool) -> str:
        self.hangup(ch, arg or "NORMAL_CLEARING")
        return "_none_"

    def _app_sleep(self, ch: Channel, arg: str, top: bool) -> str:
        self._wait(ch, _float(arg, 0) / 1000)
        return "_none_"

    def _app_set(self, ch: Channel, arg: str, top: bool) -> str:
        if "=" in arg:
            k, v = arg.split("=", 1)
            ch.set_var(k, v)
        return "_none_"

    def _app_park(self, ch: Channel, arg: str, top: bool) -> str:
        self.channel_event(ch, "CHANNEL_PARK")
        self._serve_queue(ch, lambda: False)
        return "FILE PLAYED" if not ch.up else "_none_"

    def _app_echo(self, ch: Channel, arg: str, top: bool) -> str:
        self._wait(ch, None)  # until hangup or break (killAudio): the call's last app ends the call
        return "_none_"

    def _app_playback(self, ch: Channel, arg: str, top: bool) -> str:
        pcm = file_pcm16k(arg)
        duration = play_duration(arg)
        if duration is None and not arg.startswith(("silence_stream://", "tone_stream://")):
            return "FILE NOT FOUND"
        ch.writing_audio = not ch.broadcasting
        if pcm:
            self.heard.add(ch.uuid, pcm)
        self._wait(ch, duration)
        ch.set_var("playback_ms", str(int((duration or 0) * 1000)))
        return "FILE PLAYED" if ch.up else "PLAYBACK ERROR"

    def _app_socket(self, ch: Channel, arg: str, top: bool) -> str:
        parts = arg.split()
        if not parts or ":" not in parts[0] or self.socket_connector is None:
            return "_none_"
        ch.set_var("socket_host", parts[0].rsplit(":", 1)[0])
        session = self.socket_connector(ch, parts[0], parts[1:])
        if session is None:
            return "_none_"
        self._serve_queue(ch, lambda: session.closed)
        return "FILE PLAYED"

    def _serve_queue(self, ch: Channel, stop: Callable[[], bool]) -> None:
        """Run sendmsg-queued applications until hangup (or `stop`): what park and async socket do."""
        q = self.app_queues.get(ch.uuid)
        while ch.up and q is not None and not stop():
            try:
                name, arg, app_uuid, broadcast = q.get(timeout=0.2)
            except gevent.queue.Empty:
                continue
            if name == "hangup":
                self.hangup(ch, arg or "NORMAL_CLEARING")
            else:
                self.run_app(ch, name, arg, app_uuid=app_uuid, broadcast=broadcast)

    def break_app(self, ch: Channel) -> None:
        ch.break_event.set()

    # ---- inbound --------------------------------------------------------------------------------
    def inbound_call(self, did: str, socket_addr: str, caller: str = "15551230000", caller_name: str = "",
                     gateway: str = "", remote_audio: str | None = None, full: bool = True,
                     rtp: str = "continuous", codec: str = "PCMU", headers: dict[str, str] | None = None,
                     uuid: str | None = None) -> Channel:
        """A call arriving at `did` from a carrier, handed to `socket_addr` by the dialplan's socket app; `headers`:
        extra SIP headers of its INVITE, on the channel as sofia puts them (sip_h_X-..., fssim.sip_invite)."""

        uid = uuid or str(uuidlib.uuid4())
        name = f"sofia/external/{caller}@192.0.2.10"
        ch = Channel(uid, name, "inbound", "sofia", did, context="public", cid_name=caller_name or caller,
                     cid_num=caller, callee_name="", callee_num="", source="mod_sofia",
                     network_addr="192.0.2.10", session_id=next(self.session_ids), remote_audio=remote_audio,
                     rtp=rtp, codec=codec)
        for k, val in (("direction", "inbound"), ("uuid", uid), ("session_id", str(ch.session_id)),
                       ("sip_from_user", caller), ("sip_from_host", "192.0.2.10"), ("sip_to_user", did),
                       ("sip_req_user", did), ("sip_network_ip", "192.0.2.10"), ("sip_network_port", "5060"),
                       ("sip_call_id", str(uuidlib.uuid4())), ("sip_profile_name", "external"),
                       ("channel_name", name), ("read_codec", "PCMU"), ("read_rate", "8000"),
                       ("write_codec", "PCMU"), ("write_rate", "8000"), ("call_uuid", uid),
                       *header_variables(headers)):
            ch.set_var(k, val)
        if gateway:
            ch.set_var("sip_gateway", gateway)
        self._register(ch)
        self.greenlets.spawn(self._inbound_life, ch, socket_addr, full)
        return ch

    def _inbound_life(self, ch: Channel, socket_addr: str, full: bool) -> None:
        self.channel_event(ch, "CHANNEL_CREATE")
        ch.hit_dialplan = True
        ch.set_state("CS_EXECUTE", "4", "RINGING")
        self.run_app(ch, "socket", f"{socket_addr} async full" if full else socket_addr, top=True)
        if ch.up:
            self.hangup(ch, "NORMAL_CLEARING")
        self._finish(ch)

    # ---- restart --------------------------------------------------------------------------------
    def crash(self) -> None:
        """Drop everything like a killed process: no hangup events, sockets just close."""
        self.greenlets.kill(block=False)
        if self.forks is not None:
            self.forks.drop_all()
        self.channels.clear()
        self.app_queues.clear()
        self.loopback_b.clear()

    def uptime_text(self) -> str:
        us = int((time.time() - self.started) * 1_000_000)
        secs, micro = divmod(us, 1_000_000)
        days, rem = divmod(secs, 86400)
        hours, rem = divmod(rem, 3600)
        mins, secs = divmod(rem, 60)
        return (f"0 years, {days} days, {hours} hours, {mins} minute{'s' if mins != 1 else ''}, "
                f"{secs} seconds, {micro // 1000} milliseconds, {micro % 1000} microseconds")


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


def _known_causes() -> set[str]:
    from fssim.channel import CAUSES

    return set(CAUSES)
