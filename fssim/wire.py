"""ESL framing as FreeSWITCH writes it: headers, a blank line, exactly Content-Length bytes."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

DISCONNECT_TEXT = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
# switch_url_encode's unsafe set: everything else (',', '/', '(', ')', '-', '.') stays as is.
_UNSAFE = set('\r\n #%&+:;<=>?@[\\]^`{|}"')


def url_encode(value: str) -> str:
    out = []
    for ch in value:
        if ch in _UNSAFE or ord(ch) < 32:
            out.append(f"%{ord(ch):02X}")
        elif ord(ch) > 126:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


def frame(headers: list[tuple[str, str]], body: str = "") -> bytes:
    """Headers in the given order; Content-Length is the caller's job (FreeSWITCH varies its place)."""
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    return (head + "\n" + body).encode("utf-8")


def command_reply(text: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    return frame([("Content-Type", "command/reply"), ("Reply-Text", text)] + (extra or []))


def api_response(body: str) -> bytes:
    data = body.encode("utf-8")
    return frame([("Content-Type", "api/response"), ("Content-Length", str(len(data)))]) + data


def disconnect_notice() -> bytes:
    data = DISCONNECT_TEXT.encode("utf-8")
    return frame([("Content-Type", "text/disconnect-notice"), ("Content-Length", str(len(data)))]) + data


def linger_notice(uuid: str, channel_name: str, linger_time: int = -1) -> bytes:
    return frame([("Content-Type", "text/disconnect-notice"), ("Controlled-Session-UUID", uuid),
                  ("Content-Disposition", "linger"), ("Channel-Name", channel_name),
                  ("Linger-Time", str(linger_time)), ("Content-Length", "0")])


def event_json(headers: list[tuple[str, str]], body: str | None) -> bytes:
    obj = dict(headers)
    if body is not None:
        obj["Content-Length"] = str(len(body.encode("utf-8")))
        obj["_body"] = body
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _event_frame("text/event-json", data)


def event_plain(headers: list[tuple[str, str]], body: str | None) -> bytes:
    lines = "".join(f"{k}: {url_encode(v)}\n" for k, v in headers)
    if body is not None:
        lines += f"Content-Length: {len(body.encode('utf-8'))}\n\n{body}"
    else:
        lines += "\n"
    return _event_frame("text/event-plain", lines.encode("utf-8"))


def event_xml(headers: list[tuple[str, str]], body: str | None) -> bytes:
    from xml.sax.saxutils import escape

    inner = "".join(f"    <{k}>{escape(url_encode(v))}</{k}>\n" for k, v in headers)
    text = f"<event>\n  <headers>\n{inner}  </headers>\n"
    if body is not None:
        text += f"  <Content-Length>{len(body.encode('utf-8'))}</Content-Length>\n  <body>{escape(body)}</body>\n"
    text += "</event>"
    return _event_frame("text/event-xml", text.encode("utf-8"))


def _event_frame(ctype: str, data: bytes) -> bytes:
    return frame([("Content-Length", str(len(data))), ("Content-Type", ctype)]) + data


ENCODERS = {"json": event_json, "plain": event_plain, "xml": event_xml}


@dataclass
class Command:
    """One request from a client: the first line, and the header lines after it (sendmsg)."""

    line: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


class CommandReader:
    """Reads client commands: lines up to a blank line, plus a body when Content-Length says so."""

    def __init__(self, sock, limit: int = 1 << 20):
        self.sock = sock
        self.buf = b""
        self.limit = limit

    def read(self) -> Command | None:
        while b"\n\n" not in self.buf:
            if len(self.buf) > self.limit:
                return None  # a client that never ends its command: drop it like a broken peer
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data.replace(b"\r\n", b"\n")
        head, self.buf = self.buf.split(b"\n\n", 1)
        lines = head.decode("utf-8", "replace").split("\n")
        cmd = Command(lines[0].strip())
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                cmd.headers[k.strip()] = v.strip()
        n = int(cmd.headers.get("Content-Length", "0") or 0)
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        cmd.body, self.buf = self.buf[:n].decode("utf-8", "replace"), self.buf[n:]
        return cmd
