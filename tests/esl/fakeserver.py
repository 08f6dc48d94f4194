"""A tiny fake FreeSWITCH Event Socket that answers with frames captured from the real switch, verbatim.

Not a simulator (fssim/ is): it knows a handful of commands, records every byte it receives, and lets a
test hold replies, push events and drop connections.
"""
from __future__ import annotations

import gevent
from gevent.event import Event as Flag
from gevent.server import StreamServer

from tests.esl.captures import rows, s2c

AUTH_REQUEST = s2c("auth-ok")[0]
AUTH_OK = s2c("auth-ok")[1]
AUTH_BAD = s2c("auth-bad")[1:]  # -ERR invalid, then the disconnect notice
EXIT = s2c("api-commands")[-2:]  # +OK bye, disconnect notice
NOT_FOUND = "Content-Type: command/reply\nReply-Text: -ERR command not found\n\n"
EVENT_OK = "Content-Type: command/reply\nReply-Text: +OK event listener enabled json\n\n"


def api_response(body: str) -> str:
    return f"Content-Type: api/response\nContent-Length: {len(body.encode())}\n\n{body}"


def after_command(capture: str, command: str) -> list[str]:
    """The s2c frames a capture shows right after the c2s `command` (up to the next c2s row)."""
    out, armed = [], False
    for row in rows(capture):
        if row["dir"] == "c2s":
            if armed:
                break
            armed = row["data"] == command
        elif armed and row["dir"] == "s2c":
            out.append(row["data"])
    return out


class FakeEsl:
    def __init__(self, password: str = "ClueCon", greet: bool = True) -> None:  # noqa: S107 (captured default)
        self.password = password
        self.greet = greet
        self.received: list[str] = []  # every command, exactly as its bytes arrived (without the blank line)
        self.raw = bytearray()
        self.sockets: list = []
        self.scripted: dict[str, list[str]] = {}  # exact command text -> frames to answer with
        self.hold = Flag()
        self.hold.set()  # clear() to stop answering until set() again
        self.accepted = 0
        self.server = StreamServer(("127.0.0.1", 0), self._handle)

    @property
    def port(self) -> int:
        return self.server.server_port

    def start(self) -> FakeEsl:
        self.server.start()
        return self

    def stop(self) -> None:
        self.drop()
        self.server.stop(timeout=1)

    def drop(self) -> None:
        for sock in list(self.sockets):
            try:
                sock.close()
            except OSError:
                pass
        self.sockets.clear()

    def push(self, frame: str) -> None:
        for sock in list(self.sockets):
            sock.sendall(frame.encode())

    def commands(self, prefix: str = "") -> list[str]:
        return [c for c in self.received if c.startswith(prefix)]

    def answer(self, command: str) -> list[str]:
        if command in self.scripted:
            return self.scripted[command]
        verb, _, rest = command.partition(" ")
        if verb == "auth":
            return [AUTH_OK] if rest == self.password else AUTH_BAD
        if verb == "event":
            return [EVENT_OK]
        if verb == "exit":
            return EXIT
        if verb == "api" and rest.startswith("uuid_exists "):
            return [api_response(rest.split(" ")[1])]  # echo the uuid back: tests check reply matching
        if verb == "api" and rest == "status":
            return [s2c("api-commands")[2]]
        return [NOT_FOUND]

    def _handle(self, sock, _addr) -> None:
        self.accepted += 1
        self.sockets.append(sock)
        buf = b""
        try:
            if self.greet:
                sock.sendall(AUTH_REQUEST.encode())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                self.raw += data
                buf += data
                while b"\n\n" in buf:
                    text, _, buf = buf.partition(b"\n\n")
                    command = text.decode()
                    self.received.append(command)
                    self.hold.wait(timeout=10)
                    frames = self.answer(command)
                    for frame in frames:
                        sock.sendall(frame.encode())
                    if frames is AUTH_BAD or frames is EXIT:
                        gevent.sleep(0.01)
                        sock.close()
                        return
        except OSError:
            return
        finally:
            if sock in self.sockets:
                self.sockets.remove(sock)
