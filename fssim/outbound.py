"""Outbound socket mode: the `socket` dialplan application connecting to the app's server."""
from __future__ import annotations

import logging
import re
import socket

import gevent

from fssim import wire
from fssim.channel import Channel
from fssim.events import core_headers
from fssim.session import Session

log = logging.getLogger(__name__)
# parse_command: `if (LFLAG_OUTBOUND && !LFLAG_FULL) goto done;` comes right after sendmsg, so
# everything parsed below it ("-ERR command not found" for a session that is not full).
FULL_ONLY = {"api", "bgapi", "linger", "nolinger", "event", "nixevent", "noevents", "log", "nolog", "sendevent"}


class OutboundSession(Session):
    def __init__(self, sock, switch, api, ch: Channel, app_arg: str, full: bool, is_async: bool):
        super().__init__(sock, switch, api)
        self.ch = ch
        self.app_arg = app_arg
        self.full = full
        self.is_async = is_async
        # listener->linger_timeout: None without LFLAG_LINGER; -1 lingers until the client closes the socket
        self.linger_time: int | None = None
        self.connected = False
        self.holding: Channel | None = None  # the hung-up channel whose destroy waits for this socket to close

    def allowed(self, word: str) -> bool:
        return self.full or word not in FULL_ONLY

    def cmd_connect(self, rest: str, cmd: wire.Command) -> None:
        self.connected = True
        ch = self.ch
        head = core_headers(self.switch.core_uuid, "CHANNEL_DATA", next(self.switch.seq))
        head += _channel_data(ch)
        head += ch.state_headers() + ch.codec_headers() + ch.profile_headers("Caller") + ch.variable_headers()
        lines = [(k, wire.url_encode(v)) for k, v in head]
        # Content-Type comes last, after all channel headers; Reply-Text is URL-encoded.
        lines += [("Content-Type", "command/reply"), ("Reply-Text", "%2BOK%0A"),
                  ("Socket-Mode", "async" if self.is_async else "static"),
                  ("Control", "full" if self.full else "single-channel")]
        self.send(wire.frame(lines))

    def cmd_myevents(self, rest: str, cmd: wire.Command) -> None:
        if self.myevents:
            self.send(wire.command_reply("-ERR aready enabled."))  # sic, mod_event_socket.c
            return
        # `if (strstr(cmd, "xml") || strstr(cmd, "XML"))` then the same for json: anywhere in the line
        if "xml" in rest or "XML" in rest:
            self.format = "xml"
        if "json" in rest or "JSON" in rest:
            self.format = "json"
        self.enable_myevents(self.ch.uuid)
        self.send(wire.command_reply("+OK Events Enabled"))

    @property
    def lingering(self) -> bool:
        return self.linger_time is not None

    def cmd_linger(self, rest: str, cmd: wire.Command) -> None:
        # mod_event_socket.c: "linger N" -> atoi(N) seconds; a bare "linger" -> -1, until the client closes
        if rest:
            self.linger_time = _atoi(rest)
            self.send(wire.command_reply(f"+OK will linger {self.linger_time} seconds"))
        else:
            self.linger_time = -1
            self.send(wire.command_reply("+OK will linger"))

    def cmd_nolinger(self, rest: str, cmd: wire.Command) -> None:
        self.linger_time = None
        self.send(wire.command_reply("+OK will not linger"))

    def cmd_divert_events(self, rest: str, cmd: wire.Command) -> None:
        if not rest:
            self.send(wire.command_reply("-ERR missing value."))
            return
        self.send(wire.command_reply("+OK events diverted" if rest.lower() == "on" else "+OK events not diverted"))

    def cmd_getvar(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply(self.ch.variables.get(rest.strip(), "")))

    def cmd_resume(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply("+OK"))

    def cmd_sendmsg(self, rest: str, cmd: wire.Command) -> None:
        self.sendmsg(rest.strip() or self.ch.uuid, cmd)

    def holds(self, ch: Channel) -> bool:
        """A lingering socket keeps its hung-up session: the listener holds a read lock on it, so the
        session (CHANNEL_DESTROY, its row in `show channels`) is destroyed only once the socket closes."""
        return self.lingering and not self.closed and ch.uuid == self.ch.uuid

    def channel_done(self, ch: Channel) -> None:
        """After CHANNEL_HANGUP_COMPLETE: the linger notice, or the plain disconnect notice."""
        if ch.uuid != self.ch.uuid or self.closed:
            return
        if self.linger_time is not None:
            self.send(wire.linger_notice(ch.uuid, ch.name, self.linger_time))
            if self.linger_time >= 0:  # closed once the epoch second passes the deadline
                self.switch.later(self.linger_time + 1, self.close_after_flush)
            return  # -1: the socket (and the session it holds) stays until the client closes it
        else:
            data = wire.DISCONNECT_TEXT.encode()
            self.send(wire.frame([("Content-Type", "text/disconnect-notice"), ("Controlled-Session-UUID", ch.uuid),
                                  ("Content-Disposition", "disconnect"), ("Content-Length", str(len(data)))]) + data)
        self.close_after_flush()

    def on_reader_end(self) -> None:
        self.close_after_flush()
        self.closed_by_peer = True

    def on_closed(self) -> None:
        held, self.holding = self.holding, None
        if held is not None:
            self.switch.destroy(held)


def _atoi(text: str) -> int:
    """C atoi: leading blanks, an optional sign, then digits; anything else ends it (0 if none)."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0


def _channel_data(ch: Channel) -> list[tuple[str, str]]:
    return [(k.replace("Caller-", "Channel-", 1), v) for k, v in ch.profile_headers("Caller")]


def connect(switch, api, ch: Channel, address: str, flags: list[str]) -> OutboundSession | None:
    """What the socket app does: connect (short timeout); on failure the app just returns."""
    host, _, port = address.rpartition(":")
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
    except (OSError, ValueError):
        return None
    sock.settimeout(None)
    session = OutboundSession(sock, switch, api, ch, address, full="full" in flags, is_async="async" in flags)
    gevent.spawn(session.loop)
    return session
