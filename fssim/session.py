"""One Event Socket session (inbound or outbound): subscriptions, filters, ordered writes, commands."""
from __future__ import annotations

import logging
import socket
import uuid as uuidlib
from typing import TYPE_CHECKING

import gevent
import gevent.queue

from fssim import wire
from fssim.events import Event

if TYPE_CHECKING:
    from fssim.api import Api
    from fssim.switch import Switch

log = logging.getLogger(__name__)
ALL_EVENTS = "ALL"


class Session:
    def __init__(self, sock: socket.socket, switch: Switch, api: Api):
        self.sock = sock
        self.switch = switch
        self.api = api
        self.reader = wire.CommandReader(sock)
        self.out: gevent.queue.Queue = gevent.queue.Queue()
        self.format = "plain"
        self.events: set[str] = set()
        self.subclasses: set[str] = set()
        self.all_custom = False
        self.filters: list[tuple[str, str]] = []
        self.my_uuid: str | None = None  # myevents
        self.closed = False
        self.writer = gevent.spawn(self._write_loop)

    # ---- output ---------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if not self.closed:
            self.out.put(data)

    def close_after_flush(self) -> None:
        self.out.put(None)

    def _write_loop(self) -> None:
        try:
            while True:
                data = self.out.get()
                if data is None:
                    break
                self.sock.sendall(data)
        except OSError:
            pass
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self.closed = True
        self.switch.sessions.discard(self)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def kill(self) -> None:
        """Drop the connection at once (a crashing switch)."""
        self.closed = True
        self.switch.sessions.discard(self)
        self.writer.kill(block=False)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # ---- events ---------------------------------------------------------------------------------
    def wants(self, ev: Event) -> bool:
        if self.my_uuid is not None:
            # myevents: every event of that one channel, whatever else was subscribed
            if ev.unique_id != self.my_uuid:
                return False
        elif ev.name == "CUSTOM":
            if not (self.all_custom or ev.subclass in self.subclasses):
                return False
        elif not (ev.name in self.events or ALL_EVENTS in self.events):
            return False
        if self.filters:
            return any(ev.get(k) == v for k, v in self.filters)
        return True

    def offer(self, ev: Event) -> None:
        if not self.closed and self.wants(ev):
            self.send(wire.ENCODERS[self.format](ev.headers, ev.body))

    def subscribed(self) -> bool:
        return bool(self.events or self.subclasses or self.all_custom or self.my_uuid)

    def _update_bus(self) -> None:
        if self.subscribed():
            self.switch.sessions.add(self)
        else:
            self.switch.sessions.discard(self)

    # ---- commands -------------------------------------------------------------------------------
    def loop(self) -> None:
        try:
            while not self.closed:
                cmd = self.reader.read()
                if cmd is None:
                    break
                if not self.dispatch(cmd):
                    break
        except OSError:
            pass
        finally:
            self.on_reader_end()

    def on_reader_end(self) -> None:
        self.close_after_flush()

    def dispatch(self, cmd: wire.Command) -> bool:
        """Handles one command; False ends the session."""
        word, _, rest = cmd.line.partition(" ")
        handler = getattr(self, "cmd_" + word, None) if word.isidentifier() else None
        if handler is None or not self.allowed(word):
            self.send(wire.command_reply("-ERR command not found"))
            return True
        return handler(rest.strip(), cmd) is not False

    def allowed(self, word: str) -> bool:
        return True

    def cmd_api(self, rest: str, cmd: wire.Command) -> None:
        if not rest:
            self.send(wire.command_reply("-ERR command not found"))
            return
        self.send(wire.api_response(self.api.execute(rest)))

    def cmd_bgapi(self, rest: str, cmd: wire.Command) -> None:
        if not rest:
            self.send(wire.command_reply("-ERR command not found"))
            return
        job = cmd.headers.get("Job-UUID") or str(uuidlib.uuid4())
        self.send(wire.command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
        self.switch.greenlets.spawn(self._bg_job, job, rest)

    def _bg_job(self, job: str, rest: str) -> None:
        name, _, arg = rest.partition(" ")
        body = self.api.execute(rest)
        extra = [("Job-UUID", job), ("Job-Command", name)] + ([("Job-Command-Arg", arg)] if arg else [])
        self.switch.emit("BACKGROUND_JOB", extra, body)

    def cmd_event(self, rest: str, cmd: wire.Command) -> None:
        words = rest.split()
        fmt = "plain"
        if words and words[0] in wire.ENCODERS:
            fmt = words.pop(0)
        self.format = fmt
        custom = False
        for w in words:
            if w == "CUSTOM":
                custom = True
            elif custom and "::" in w or custom and w not in _EVENT_NAMES:
                self.subclasses.add(w)
            elif w in ("ALL", "all"):
                self.events.add(ALL_EVENTS)
                self.all_custom = True
            elif w in _EVENT_NAMES:
                self.events.add(w)
        self._update_bus()
        self.send(wire.command_reply(f"+OK event listener enabled {fmt}"))

    def cmd_nixevent(self, rest: str, cmd: wire.Command) -> None:
        for w in rest.split():
            self.events.discard(w)
            self.subclasses.discard(w)
        self._update_bus()
        self.send(wire.command_reply("+OK events nixed"))

    def cmd_noevents(self, rest: str, cmd: wire.Command) -> None:
        self.events.clear()
        self.subclasses.clear()
        self.all_custom = False
        self._update_bus()
        self.send(wire.command_reply("+OK no longer listening for events"))

    def cmd_filter(self, rest: str, cmd: wire.Command) -> None:
        words = rest.split(" ", 2)
        if words and words[0] == "delete":
            if len(words) == 3 and (words[1], words[2]) in self.filters:
                self.filters.remove((words[1], words[2]))
            elif len(words) == 2:
                self.filters = [f for f in self.filters if f[0] != words[1]]
            value = words[2] if len(words) == 3 else ""
            self.send(wire.command_reply(f"+OK filter deleted. [{words[1] if len(words) > 1 else ''}][{value}]"))
            return
        if len(words) < 2:
            self.send(wire.command_reply("-ERR invalid syntax"))
            return
        key, value = words[0], " ".join(words[1:])
        self.filters.append((key, value))
        self.send(wire.command_reply(f"+OK filter added. [{key}]=[{value}]"))

    def cmd_log(self, rest: str, cmd: wire.Command) -> None:
        level = rest or "7"
        self.send(wire.command_reply(f"+OK log level {level} [{level}]"))

    def cmd_nolog(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply("+OK no longer logging"))

    def cmd_sendevent(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply(f"+OK {uuidlib.uuid4()}"))

    def cmd_exit(self, rest: str, cmd: wire.Command) -> bool:
        self.send(wire.command_reply("+OK bye"))
        self.send(wire.disconnect_notice())
        return False

    def sendmsg(self, uid: str, cmd: wire.Command) -> None:
        ch = self.switch.channels.get(uid)
        if ch is None:
            self.send(wire.command_reply(f"-ERR invalid session id [{uid}]"))
            return
        h = {k.lower(): v for k, v in cmd.headers.items()}
        what = h.get("call-command", "")
        if what == "execute":
            arg = h.get("execute-app-arg", cmd.body if h.get("content-type") == "text/plain" else "")
            app = h.get("execute-app-name", "")
            if not app:
                self.send(wire.command_reply("-ERR Invalid Command"))
                return
            self.switch.queue_app(ch, app, arg, h.get("event-uuid"))
        elif what == "hangup":
            self.switch.greenlets.spawn(self.switch.hangup, ch, h.get("hangup-cause", "NORMAL_CLEARING"))
        elif what in ("nomedia", "unicast", "xferext", "ivr-bridge"):
            pass  # accepted and ignored: not modelled
        else:
            self.send(wire.command_reply("-ERR Invalid Command"))
            return
        self.send(wire.command_reply("+OK"))


_EVENT_NAMES = {
    "CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE", "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "API", "LOG", "INBOUND_CHAN",
    "OUTBOUND_CHAN", "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH",
    "MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN", "PRESENCE_OUT",
    "PRESENCE_PROBE", "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER", "CODEC", "BACKGROUND_JOB",
    "DETECTED_SPEECH", "DETECTED_TONE", "PRIVATE_COMMAND", "HEARTBEAT", "TRAP", "ADD_SCHEDULE",
    "DEL_SCHEDULE", "EXE_SCHEDULE", "RE_SCHEDULE", "RELOADXML", "NOTIFY", "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE", "SEND_MESSAGE", "RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA",
    "GENERAL", "COMMAND", "SESSION_HEARTBEAT", "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED",
    "SEND_INFO", "RECV_INFO", "RECV_RTCP_MESSAGE", "CALL_SECURE", "NAT", "RECORD_START", "RECORD_STOP",
    "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE", "SOCKET_DATA", "MEDIA_BUG_START",
    "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA", "CALL_SETUP_REQ", "CALL_SETUP_RESULT",
    "CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED", "ALL",
}
