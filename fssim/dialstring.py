"""originate argument and dial-string parsing, with FreeSWITCH's quirks kept on purpose."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

USAGE = ("-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
         "[<cid_name>] [<cid_num>] [<timeout_sec>]\n")


def split_args(text: str, limit: int = 0) -> list[str]:
    """Split on spaces like switch_separate_string: single quotes group words and are removed."""
    out, cur, quoted, started = [], [], False, False
    for ch in text:
        if ch == "'":
            quoted, started = not quoted, True
            continue
        if ch == " " and not quoted and (not limit or len(out) < limit - 1):
            if cur or started:
                out.append("".join(cur))
            cur, started = [], False
            continue
        cur.append(ch)
    if cur or started:
        out.append("".join(cur))
    return out


@dataclass
class DialString:
    tech: str  # loopback | error | sofia | user
    target: str  # extension, cause, number
    variables: dict[str, str] = field(default_factory=dict)
    context: str = "default"
    profile: str = ""
    gateway: str = ""
    host: str = ""


class DialError(ValueError):
    """The originate fails at once with this cause (no channel is created)."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


def parse_dialstring(text: str) -> DialString:
    variables: dict[str, str] = {}
    if text.startswith("{"):
        end = text.find("}")
        if end < 0:
            raise DialError("INVALID_NUMBER_FORMAT")
        for item in text[1:end].split(","):
            if "=" in item:
                k, v = item.split("=", 1)
                variables[k.strip()] = v
        text = text[end + 1:]
    # Several targets (',' or '|'): the simulator dials the first, as a sequential originate would.
    text = re.split(r"[,|]", text, maxsplit=1)[0]
    parts = text.split("/")
    tech = parts[0]
    if tech == "loopback" and len(parts) >= 2 and parts[1]:
        return DialString("loopback", parts[1], variables, context=parts[2] if len(parts) > 2 else "default")
    if tech == "error" and len(parts) == 2:
        return DialString("error", parts[1].upper(), variables)
    if tech == "sofia" and len(parts) >= 3:
        if parts[1] == "gateway" and len(parts) >= 4:
            return DialString("sofia", "/".join(parts[3:]), variables, profile="external", gateway=parts[2])
        number, _, host = "/".join(parts[2:]).partition("@")
        if not host:
            raise DialError("INVALID_NUMBER_FORMAT")
        return DialString("sofia", number, variables, profile=parts[1], host=host)
    if tech == "user" and len(parts) == 2:
        return DialString("user", parts[1].split("@")[0], variables)
    raise DialError("CHAN_NOT_IMPLEMENTED")


@dataclass
class Application:
    name: str
    arg: str = ""


def parse_application(text: str) -> Application | None:
    """`&app(args)` as originate reads it; an unclosed paren keeps what is there (the quoting pitfall)."""
    if not text.startswith("&"):
        return None
    body = text[1:]
    if "(" not in body:
        return Application(body)
    name, arg = body.split("(", 1)
    if arg.endswith(")"):
        arg = arg[:-1]
    return Application(name, arg)
