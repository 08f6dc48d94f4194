"""One Event Socket session (inbound or outbound): subscriptions, filters, ordered writes, commands."""
from __future__ import annotations

import logging
import re
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
        self.events: set[str] = set()  # listener->event_list; "ALL" as FreeSWITCH keeps it
        self.subclasses: set[str] = set()  # listener->event_hash (CUSTOM subclasses)
        self.events_on = False  # LFLAG_EVENTS
        self.logging = False  # LFLAG_LOG
        self.filters: list[tuple[str, str]] = []
        self.myevents = False  # LFLAG_MYEVENTS
        self.my_uuid: str | None = None  # the session myevents is bound to (None: no session located)
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
        self.on_closed()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def on_closed(self) -> None:
        """The connection is gone (either side closed it)."""

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
        """mod_event_socket.c event_handler(): event list, then filters, then myevents."""
        if not self.events_on:
            return False
        if ALL_EVENTS in self.events:
            send = True
        else:
            # `if (event->event_id != SWITCH_EVENT_CUSTOM || !event->subclass_name ||
            #      switch_core_hash_find(l->event_hash, event->subclass_name))`
            send = ev.name in self.events and (ev.name != "CUSTOM" or not ev.subclass or ev.subclass in self.subclasses)
        if send and self.filters:
            send = _filters_pass(self.filters, ev)
        if send and self.myevents:
            # `if (!uuid || (l->session && strcmp(uuid, switch_core_session_get_uuid(l->session))))`:
            # events without a Unique-ID never pass; with no located session, every channel's do.
            uid = _header(ev, "Unique-ID")
            send = bool(uid) and (self.my_uuid is None or uid == self.my_uuid)
        return send

    def offer(self, ev: Event) -> None:
        if not self.closed and self.wants(ev):
            self.send(wire.ENCODERS[self.format](ev.headers, ev.body))

    def subscribed(self) -> bool:
        return self.events_on

    def _update_bus(self) -> None:
        if self.subscribed():
            self.switch.sessions.add(self)
        else:
            self.switch.sessions.discard(self)

    def enable_myevents(self, uid: str | None) -> None:
        """The event types `myevents` turns on (parse_command's myevents branch), bound to `uid`."""
        self.events.update(MYEVENTS_TYPES)
        self.myevents, self.my_uuid, self.events_on = True, uid, True
        self._update_bus()

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
        # parse_command, `event` branch: a format word is only looked for first; after CUSTOM every
        # word is a subclass; unknown names are skipped silently; with no known name at all:
        # `switch_snprintf(reply, reply_len, "-ERR no keywords supplied")` (the format is kept set).
        key_count, custom = 0, False
        for i, word in enumerate(rest.split(" ") if rest else []):
            if not word:
                continue
            if i == 0 and word.lower() in wire.ENCODERS:
                self.format = word.lower()
                continue
            if custom:
                self.subclasses.add(word)
                continue
            name = event_name(word)
            if name is None:
                continue
            key_count += 1
            if name == ALL_EVENTS:
                self.events.update(EVENT_NAMES)
            self.events.add(name)
            custom = custom or name == "CUSTOM"
        if not key_count:
            self.send(wire.command_reply("-ERR no keywords supplied"))
            return
        self.events_on = True
        self._update_bus()
        self.send(wire.command_reply(f"+OK event listener enabled {self.format}"))

    def cmd_nixevent(self, rest: str, cmd: wire.Command) -> None:
        # parse_command, `nixevent` branch: ALL clears everything; any other name first expands a
        # previous ALL into every single type; after CUSTOM the words are subclasses to drop.
        key_count, custom = 0, False
        for word in rest.split(" ") if rest else []:
            if custom:
                self.subclasses.discard(word)
                continue
            name = event_name(word)
            if name is None:
                continue
            key_count += 1
            if name == "CUSTOM":
                custom = True
            elif name == ALL_EVENTS:
                self.events.clear()
            else:
                if ALL_EVENTS in self.events:
                    self.events.discard(ALL_EVENTS)
                    self.events.update(EVENT_NAMES - {ALL_EVENTS})
                self.events.discard(name)
        if not key_count:
            self.send(wire.command_reply("-ERR no keywords supplied"))
            return
        self.events_on = True  # `if (!switch_test_flag(listener, LFLAG_EVENTS)) switch_set_flag_locked(...)`
        self._update_bus()
        self.send(wire.command_reply("+OK events nixed"))

    def cmd_noevents(self, rest: str, cmd: wire.Command) -> None:
        if not self.events_on:
            self.send(wire.command_reply("-ERR not listening for events"))
            return
        self.events.clear()
        self.subclasses.clear()
        self.events_on = False
        self._update_bus()
        self.send(wire.command_reply("+OK no longer listening for events"))

    def cmd_filter(self, rest: str, cmd: wire.Command) -> None:
        # parse_command, `filter ` branch: `filter <header> <value>`, `filter add <header> <value>`,
        # `filter delete <header> [<value>]`, `filter delete all`; anything else "-ERR invalid syntax".
        if not rest:
            self.send(wire.command_reply("-ERR command not found"))  # "filter" alone is no command
            return
        name, sep, value = rest.partition(" ")
        if name.lower() == "delete" and sep:
            name, _, value = value.partition(" ")
            if name.lower() == "all":
                self.filters.clear()
            else:
                self.filters = [f for f in self.filters
                                if not (f[0].lower() == name.lower() and (not value or f[1] == value))]
            self.send(wire.command_reply(f"+OK filter deleted. [{name}][{value}]"))
            return
        if not sep:
            self.send(wire.command_reply("-ERR invalid syntax"))
            return
        if name.lower() == "add":
            name, _, value = value.partition(" ")
        self.filters.append((name, value))
        self.send(wire.command_reply(f"+OK filter added. [{name}]=[{value}]"))

    def cmd_log(self, rest: str, cmd: wire.Command) -> None:
        # `log [level]`: no level is DEBUG (7), printed as given: "+OK log level %s [%d]"
        level = log_level(rest) if rest else 7
        if level is None:
            self.send(wire.command_reply("-ERR invalid log level"))
            return
        self.logging = True
        self.send(wire.command_reply(f"+OK log level {rest} [{level}]"))

    def cmd_nolog(self, rest: str, cmd: wire.Command) -> None:
        if not self.logging:
            self.send(wire.command_reply("-ERR not loging"))  # sic, mod_event_socket.c
            return
        self.logging = False
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
            # switch_ivr_parse_event CMD_HANGUP: NORMAL_CLEARING without a hangup-cause header, else
            # switch_channel_str2cause(cause_name), which is NORMAL_CLEARING for a name it does not know.
            cause = h.get("hangup-cause")
            self.switch.greenlets.spawn(self.switch.hangup, ch, "NORMAL_CLEARING" if cause is None
                                        else cause_name(cause))
        elif what in ("nomedia", "unicast", "xferext", "ivr-bridge"):
            pass  # accepted and ignored: not modelled
        else:
            self.send(wire.command_reply("-ERR Invalid Command"))
            return
        self.send(wire.command_reply("+OK"))


def event_name(word: str) -> str | None:
    """switch_name_event(): case-insensitive, and a 14+ character name may carry any 13-character
    prefix (`SWITCH_EVENT_HEARTBEAT`): `(strlen(name) > 13 && !strcasecmp(name + 13, EVENT_NAMES[x]))`."""
    up = word.upper()
    if up in EVENT_NAMES:
        return up
    if len(up) > 13 and up[13:] in EVENT_NAMES:
        return up[13:]
    return None


def log_level(text: str) -> int | None:
    """switch_log_str2level(): a number is clamped to 0..63, else a level name; None is invalid."""
    if text.isdigit():
        return min(int(text), 63)
    names = ["CONSOLE", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG"]
    return names.index(text.upper()) if text.upper() in names else None


def _header(ev: Event, name: str) -> str | None:
    """switch_event_get_header(): header names compare case-insensitively."""
    value = ev.get(name)
    if value is not None:
        return value
    low = name.lower()
    return next((v for k, v in ev.headers if k.lower() == low), None)


def _filters_pass(filters: list[tuple[str, str]], ev: Event) -> bool:
    """event_handler()'s filter loop: a value may start with +/- (keep / drop), a value starting
    with '/' is a regex, otherwise the comparison is case-insensitive; once a positive filter
    matched, later positive ones are skipped and a matching negative one still drops the event."""
    send = False
    for name, value in filters:
        hval = _header(ev, name)
        if hval is None:
            continue
        pos, comp = True, value
        while comp and comp[0] in "+- ":
            pos = {"+": True, "-": False}.get(comp[0], pos)
            comp = comp[1:]
        if (send and pos) or not comp:
            continue
        if value.startswith("/"):
            match = _regex_match(hval, comp)
        else:
            match = hval.lower() == comp.lower()
        if match:
            if not pos:
                return False
            send = True
    return send


def _regex_match(value: str, expression: str) -> bool:
    """switch_regex_perform(): `/pattern/flags` (i: caseless, s: dotall); a missing closing '/' is
    an error there, so nothing matches."""
    flags = 0
    if expression.startswith("/"):
        inner, slash, opts = expression[1:].rpartition("/")
        if not slash:
            return False
        expression = inner
        flags = (re.IGNORECASE if "i" in opts else 0) | (re.DOTALL if "s" in opts else 0)
    try:
        return re.search(expression, value, flags) is not None
    except re.error:
        return False


def cause_name(text: str) -> str:
    """switch_channel_str2cause() then cause2str(): a known name (any case) or Q.850 number maps to
    its name; an unknown name keeps str2cause's starting value SWITCH_CAUSE_NORMAL_CLEARING
    (src/switch_channel.c in 1.10.12); an unknown number is "UNKNOWN"."""
    from fssim.api import CAUSE_CODES

    if text[:1].isdigit():
        digits = re.match(r"\d+", text).group(0)
        code = int(digits)
        return next((n for n, c in CAUSE_CODES.items() if c == code), "UNKNOWN")
    up = text.upper()
    return up if up in CAUSE_CODES else "NORMAL_CLEARING"


# parse_command's myevents branch: `listener->event_list[SWITCH_EVENT_CHANNEL_ANSWER] = 1; ...`
MYEVENTS_TYPES = {
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
    "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_OUTGOING", "CHANNEL_PARK",
    "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK",
    "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK",
}

EVENT_NAMES = {
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
