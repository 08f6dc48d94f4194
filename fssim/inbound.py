"""The inbound Event Socket (mod_event_socket listening on 8021): auth, then the session commands."""
from __future__ import annotations

import uuid as uuidlib

from fssim import wire
from fssim.session import Session


class InboundSession(Session):
    def __init__(self, sock, switch, api, password: str):
        super().__init__(sock, switch, api)
        self.password = password
        self.authed = False

    def run(self) -> None:
        self.send(wire.frame([("Content-Type", "auth/request")]))
        self.loop()
        self.writer.join(timeout=10)  # the server closes the socket when this returns: flush first

    def dispatch(self, cmd: wire.Command) -> bool:
        if not self.authed:
            return self._auth(cmd)
        return super().dispatch(cmd)

    def _auth(self, cmd: wire.Command) -> bool:
        word, _, rest = cmd.line.partition(" ")
        if word == "auth" and rest == self.password:
            self.authed = True
            self.send(wire.command_reply("+OK accepted"))
            return True
        if word == "auth" or word == "userauth":
            self.send(wire.command_reply("-ERR invalid"))
            self.send(wire.disconnect_notice())
            return False
        if word == "exit":
            return self.cmd_exit("", cmd) is not False
        self.send(wire.command_reply("-ERR invalid"))  # FreeSWITCH insists on auth first
        return True

    def cmd_sendmsg(self, rest: str, cmd: wire.Command) -> None:
        self.sendmsg(rest.strip(), cmd)

    def cmd_myevents(self, rest: str, cmd: wire.Command) -> None:
        # parse_command: on an inbound socket only `myevents <uuid> [format]` is a command
        # (`!strncasecmp(cmd, "myevents ", 9)`); bare `myevents` falls through to "-ERR command not found".
        if not rest:
            self.send(wire.command_reply("-ERR command not found"))
            return
        if self.myevents:
            self.send(wire.command_reply("-ERR aready enabled."))  # sic
            return
        uid, sep, _fmt = rest.partition(" ")
        ch = self.switch.channels.get(uid)
        if ch is None and sep:
            # `if (!(listener->session = switch_core_session_locate(uuid))) { if (fmt) "-ERR invalid uuid"`
            self.send(wire.command_reply("-ERR invalid uuid"))
            return
        # An unknown uuid without a format is accepted: no session is bound, and the event filter
        # `(l->session && strcmp(uuid, ...))` then lets every channel's events through. The format
        # word is cut off the command before `strstr(cmd, "json")` looks for it, so it never applies.
        self.enable_myevents(ch.uuid if ch is not None else None)
        self.send(wire.command_reply("+OK Events Enabled"))

    def cmd_linger(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply("-ERR not controlling a session"))

    def cmd_nolinger(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply("-ERR not controlling a session"))

    def cmd_divert_events(self, rest: str, cmd: wire.Command) -> None:
        # `if (!listener->session) "-ERR not controlling a session."`
        self.send(wire.command_reply("-ERR not controlling a session."))

    def cmd_getvar(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply("-ERR command not found"))


def new_job_uuid() -> str:
    return str(uuidlib.uuid4())
