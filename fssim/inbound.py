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
        words = rest.split()
        if not words or words[0] in wire.ENCODERS:
            self.send(wire.command_reply("-ERR must specify uuid"))
            return
        self.my_uuid = words[0]
        if len(words) > 1 and words[1] in wire.ENCODERS:
            self.format = words[1]
        self._update_bus()
        self.send(wire.command_reply("+OK Events Enabled"))

    def cmd_linger(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply("-ERR not controlling a session"))

    def cmd_divert_events(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply("+OK events diverted" if rest == "on" else "+OK events not diverted"))

    def cmd_getvar(self, rest: str, cmd: wire.Command) -> None:
        self.send(wire.command_reply("-ERR command not found"))


def new_job_uuid() -> str:
    return str(uuidlib.uuid4())
