"""The ONE module that builds every command string sent to FreeSWITCH.

Every value is checked against a strict allow-list and rejected (UnsafeValue, a ValueError) when it does
not match; nothing is escaped. Why so strict: CR/LF would start a new ESL protocol line, `{}[]<>,^'"\\`
change originate and variable syntax, spaces split api arguments, and `${...}` is expanded by FreeSWITCH
(`${system(...)}` runs a shell command). The only free text allowed through is a caller ID name, which is
reduced to letters, digits, space and `. - _`.

Protocol commands come back as a Command (the exact text before the terminating blank line); api-level
commands as an ApiCall, sent with Connection.api() / Connection.bgapi() or turned into a Command with
api() / bgapi().
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from esl.errors import UnsafeValue

# ----------------------------------------------------------------------------------------------------------
# Allow-lists. All patterns use \A...\Z and ASCII classes: `$` would accept a trailing newline and `\d`/`\w`
# accept non-ASCII digits and letters.
E164 = re.compile(r"\A\+?[0-9]{2,15}\Z")
UUID = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
IDENT = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")  # ids, contexts, extensions, profiles, bug names
DEFAULT_GATEWAY = re.compile(r"\Avb_gw_[0-9a-f]{32}\Z")
GATEWAY_CHARSET = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")  # a configured pattern can never widen past this
HOSTNAME = re.compile(r"\A(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = re.compile(rf"\A(?:{_OCTET}\.){{3}}{_OCTET}\Z")
ACL_LIST = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")  # vb_acl_<hex>, loopback.auto, ...
DIRECTORY_USER = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")  # a user id in the directory
WS_PATH = re.compile(r"\A/[A-Za-z0-9/_.~-]*\Z")
WS_QUERY = re.compile(r"\A[A-Za-z0-9_.~=&-]*\Z")
EVENT_NAME = re.compile(r"\A[A-Z][A-Z0-9_]{0,63}\Z")
SUBCLASS = re.compile(r"\A[A-Za-z0-9_]{1,64}::[A-Za-z0-9_]{1,64}\Z")
HEADER_NAME = re.compile(r"\A[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
CAUSE = re.compile(r"\A[A-Z][A-Z_]{1,47}\Z")
APP_NAME = re.compile(r"\A[a-z][a-z0-9_]{0,31}\Z")
PASSWORD = re.compile(r"\A[!#%&+./0-9:=?@A-Z_a-z~-]{1,128}\Z")  # no space, $, quotes, braces, brackets
FILE_PATH = re.compile(r"\A/[A-Za-z0-9_./-]{1,255}\Z")
SILENCE = re.compile(r"\Asilence_stream://-?[0-9]{1,9}(?:,[0-9]{1,5})?\Z")
TONE = re.compile(r"\Atone_stream://%\([0-9,]{1,64}\)(?:;%\([0-9,]{1,64}\)){0,15}\Z")
METADATA_STR = re.compile(r"\A[A-Za-z0-9_.:/@+#=&?-]{0,256}\Z")  # no space, quote, backslash, $, braces
CALLER_NAME_DROP = re.compile(r"[^A-Za-z0-9 ._-]")
CALLER_NAME_MAX = 40
DTMF_DIGITS = re.compile(r"\A[0-9*#A-DwW]{1,32}\Z")  # keypad keys and w/W pauses (0.5 s / 1 s), no duration suffix

# The only dialplan applications the app runs through sendmsg. A name outside this set (`system`, `bgsystem`,
# `eval`, `set`, `export`, ...) could run a shell command or rewrite the channel: rejected, whatever its shape.
SENDMSG_APPLICATIONS = frozenset({"answer", "park", "playback", "hangup"})
AUDIO_MIX = frozenset({"mono", "mixed", "stereo"})
AUDIO_RATE = frozenset({"8k", "16k"})
LEGS = frozenset({"aleg", "bleg", "both"})


def _check(kind: str, pattern: re.Pattern[str], value: object) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise UnsafeValue(kind, value)
    return value


def e164(value: object) -> str:
    """A phone number: optional leading + and 2-15 ASCII digits."""
    return _check("E.164 number", E164, value)


def uuid(value: object) -> str:
    return _check("uuid", UUID, value).lower()


def ident(value: object, kind: str = "id") -> str:
    return _check(kind, IDENT, value)


def gateway(value: object, pattern: re.Pattern[str] | None = None) -> str:
    """A gateway name matching vb_gw_<32 hex> (or a configured pattern, still within [A-Za-z0-9_.-])."""
    _check("gateway name", GATEWAY_CHARSET, value)
    return _check("gateway name", pattern or DEFAULT_GATEWAY, value)


def host(value: object) -> str:
    if isinstance(value, str) and (IPV4.match(value) or HOSTNAME.match(value)):
        return value
    raise UnsafeValue("host", value)


def port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        if not (isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < 65536):
            raise UnsafeValue("port", value)
    return int(value)


def host_port(value: object) -> str:
    """`host:port`, host a hostname or IPv4 address."""
    if not isinstance(value, str) or value.count(":") != 1:
        raise UnsafeValue("host:port", value)
    name, _, number = value.partition(":")
    return f"{host(name)}:{port(number)}"


def ws_url(value: object) -> str:
    """ws:// or wss:// URL: host[:port], a path and an optional query of URL-safe characters only."""
    if not isinstance(value, str):
        raise UnsafeValue("ws url", value)
    scheme, sep, rest = value.partition("://")
    if scheme not in ("ws", "wss") or not sep:
        raise UnsafeValue("ws url", value)
    authority, slash, tail = rest.partition("/")
    path, _, query = ("/" + tail).partition("?")
    try:
        host_port(authority) if ":" in authority else host(authority)
    except UnsafeValue:
        raise UnsafeValue("ws url", value) from None
    if not WS_PATH.match(path) or not WS_QUERY.match(query) or ("?" in tail and not query):
        raise UnsafeValue("ws url", value)
    return value


def cause(value: object) -> str:
    return _check("hangup cause", CAUSE, value)


def caller_id_name(value: object, max_len: int = CALLER_NAME_MAX) -> str:
    """Free text reduced to letters, digits, space and . - _ (accents folded first), collapsed and cut."""
    if not isinstance(value, str):
        raise UnsafeValue("caller id name", value)
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    kept = " ".join(CALLER_NAME_DROP.sub(" ", folded).split())
    return kept[:max_len].strip()


def playable(value: object) -> str:
    """A file path (no ..), silence_stream:// or tone_stream:// argument."""
    if isinstance(value, str) and (SILENCE.match(value) or TONE.match(value)
                                   or (FILE_PATH.match(value) and ".." not in value)):
        return value
    raise UnsafeValue("playback path", value)


def metadata_json(value: Mapping[str, object]) -> str:
    """Compact JSON (no spaces: uuid_audio_fork splits its arguments on spaces) of flat safe values."""
    if not isinstance(value, Mapping):
        raise UnsafeValue("metadata", value)
    for key, item in value.items():
        _check("metadata key", IDENT, key)
        if isinstance(item, str):
            _check("metadata value", METADATA_STR, item)
        elif not (item is None or isinstance(item, (bool, int)) or (isinstance(item, float) and item == item)):
            raise UnsafeValue("metadata value", item)
    return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Command:
    """One ESL command: `text` is everything before the terminating blank line."""

    text: str

    def __post_init__(self) -> None:
        ensure_single(self.text)

    def wire(self) -> bytes:
        return (self.text + "\n\n").encode("ascii")

    @property
    def verb(self) -> str:
        return self.text.split(" ", 1)[0].split("\n", 1)[0]


@dataclass(frozen=True, slots=True)
class ApiCall:
    """An api command line (`uuid_kill <uuid> NORMAL_CLEARING`), built only by this module."""

    line: str

    def __post_init__(self) -> None:
        ensure_single(self.line)
        if "\n" in self.line:
            raise UnsafeValue("api line", self.line)

    @property
    def name(self) -> str:
        return self.line.split(" ", 1)[0]


def ensure_single(text: str) -> str:
    """Last line of defence: ASCII printable, no CR/NUL/control, no blank line, no `${`, no trailing newline."""
    if (not text or not text.isascii() or "\r" in text or "\n\n" in text or text.endswith("\n")
            or "${" in text or any(ord(c) < 32 and c != "\n" for c in text) or "\x7f" in text):
        raise UnsafeValue("command text", text)
    return text


def api(call: ApiCall) -> Command:
    return Command("api " + call.line)


def bgapi(call: ApiCall) -> Command:
    return Command("bgapi " + call.line)


# ---------------------------------------------------------------- protocol commands
def auth(password: str) -> Command:
    return Command("auth " + _check("password", PASSWORD, password))


def event_json(names: Iterable[str], subclasses: Iterable[str] = ()) -> Command:
    """`event json A B [CUSTOM x::y ...]`."""
    words = [_check("event name", EVENT_NAME, n) for n in names if n != "CUSTOM"]
    subs = [_check("event subclass", SUBCLASS, s) for s in subclasses]
    if subs:
        words += ["CUSTOM", *subs]
    if not words:
        raise UnsafeValue("event list", "")
    return Command("event json " + " ".join(words))


def event_filter(header: str, value: str, delete: bool = False) -> Command:
    head = _check("filter header", HEADER_NAME, header)
    val = value if isinstance(value, str) and (UUID.match(value) or IDENT.match(value) or SUBCLASS.match(value)) \
        else None
    if val is None:
        raise UnsafeValue("filter value", value)
    return Command(("filter delete " if delete else "filter ") + f"{head} {val}")


def myevents(fmt: str | None = None) -> Command:
    if fmt not in (None, "plain", "json"):
        raise UnsafeValue("event format", fmt)
    return Command("myevents" + (f" {fmt}" if fmt else ""))


def linger(seconds: int | None = None) -> Command:
    if seconds is None:
        return Command("linger")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 < seconds < 86400:
        raise UnsafeValue("linger seconds", seconds)
    return Command(f"linger {seconds}")


def connect() -> Command:
    return Command("connect")


def exit_() -> Command:
    return Command("exit")


def noevents() -> Command:
    return Command("noevents")


def sendmsg_execute(app: str, arg: str | None = None, uuid_: str | None = None, event_lock: bool = False,
                    event_uuid: str | None = None) -> Command:
    """sendmsg [uuid] / call-command: execute. Args limited to answer/park/hangup/playback shapes.
    event_uuid becomes the Application-UUID of the CHANNEL_EXECUTE(_COMPLETE) events, to match them."""
    if app not in SENDMSG_APPLICATIONS:
        raise UnsafeValue("application", app)
    lines = ["sendmsg" + (f" {uuid(uuid_)}" if uuid_ else ""), "call-command: execute",
             "execute-app-name: " + _check("application", APP_NAME, app)]
    if arg is not None:
        lines.append("execute-app-arg: " + _app_arg(app, arg))
    if event_lock:
        lines.append("event-lock: true")
    if event_uuid is not None:
        lines.append("Event-UUID: " + uuid(event_uuid))
    return Command("\n".join(lines))


def _app_arg(app: str, arg: str) -> str:
    if app == "playback":
        return playable(arg)
    if app == "hangup":
        return cause(arg)
    return ident(arg, "application argument")


def sendmsg_hangup(cause_: str = "NORMAL_CLEARING", uuid_: str | None = None) -> Command:
    return Command("\n".join(["sendmsg" + (f" {uuid(uuid_)}" if uuid_ else ""), "call-command: hangup",
                              "hangup-cause: " + cause(cause_)]))


def execute_answer(uuid_: str | None = None) -> Command:
    return sendmsg_execute("answer", uuid_=uuid_)


def execute_park(uuid_: str | None = None) -> Command:
    return sendmsg_execute("park", uuid_=uuid_)


def execute_playback(path: str, uuid_: str | None = None, event_lock: bool = False,
                     event_uuid: str | None = None) -> Command:
    return sendmsg_execute("playback", path, uuid_=uuid_, event_lock=event_lock, event_uuid=event_uuid)


# ---------------------------------------------------------------- originate
@dataclass(frozen=True, slots=True)
class DialString:
    text: str


@dataclass(frozen=True, slots=True)
class Target:
    """What the answered leg runs: an application or a dialplan extension."""

    text: str


def gateway_dial(gateway_name: str, number: str, gateway_pattern: re.Pattern[str] | None = None) -> DialString:
    return DialString(f"sofia/gateway/{gateway(gateway_name, gateway_pattern)}/{e164(number)}")


def loopback_dial(number: str, context: str) -> DialString:
    return DialString(f"loopback/{e164(number)}/{ident(context, 'context')}")


def sofia_dial(profile: str, number: str, host_port_: str) -> DialString:
    """sofia/<profile>/<number>@host:port (a peer without a gateway definition)."""
    return DialString(f"sofia/{ident(profile, 'profile')}/{e164(number)}@{host_port(host_port_)}")


def park_app() -> Target:
    return Target("&park()")


def socket_app(host_port_: str) -> Target:
    # originate splits arguments on spaces: unquoted, `async full` is silently lost (see captures README).
    return Target(f"'&socket({host_port(host_port_)} async full)'")


def extension_target(extension: str, context: str) -> Target:
    return Target(f"{ident(extension, 'extension')} XML {ident(context, 'context')}")


DIALPLAN_VAR = re.compile(r"\Avb_[a-z_]{1,40}\Z")
DIALPLAN_VALUE = re.compile(r"\A[A-Za-z0-9_+.-]{0,64}\Z")


def originate(dial: DialString, target: Target, *, origination_uuid: str, caller_id_number: str | None = None,
              caller_id_name_: str | None = None, timeout_s: int | None = None,
              call_id: str | None = None, dialplan_vars: Mapping[str, str] | None = None) -> ApiCall:
    """`originate {vars}<dial> <target>`; send it with bgapi. Every variable is allow-listed."""
    if not isinstance(dial, DialString) or not isinstance(target, Target):
        raise UnsafeValue("originate route", (dial, target))
    pairs = [f"origination_uuid={uuid(origination_uuid)}"]
    if caller_id_number is not None:
        pairs.append(f"origination_caller_id_number={e164(caller_id_number)}")
    if caller_id_name_ is not None:
        name = caller_id_name(caller_id_name_)
        if name:
            # originate splits on spaces; FreeSWITCH's splitter honours and then strips single quotes.
            pairs.append(f"origination_caller_id_name='{name}'" if " " in name
                         else f"origination_caller_id_name={name}")
    if call_id is not None:
        pairs.append(f"voxbridge_call_id={ident(call_id, 'call id')}")
    if timeout_s is not None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or not 0 < timeout_s <= 600:
            raise UnsafeValue("originate timeout", timeout_s)
        pairs.append(f"originate_timeout={timeout_s}")
    # vb_* variables the engineer-owned outbound dialplan reads (see dialplan/outbound.xml).
    for name, value in (dialplan_vars or {}).items():
        var = _check("dialplan variable", DIALPLAN_VAR, name)
        pairs.append(f"{var}={_check('dialplan value', DIALPLAN_VALUE, value)}")
    return ApiCall("originate {" + ",".join(pairs) + "}" + dial.text + " " + target.text)


# ---------------------------------------------------------------- call control api commands
def uuid_kill(channel: str, cause_: str = "NORMAL_CLEARING") -> ApiCall:
    return ApiCall(f"uuid_kill {uuid(channel)} {cause(cause_)}")


def uuid_answer(channel: str) -> ApiCall:
    return ApiCall(f"uuid_answer {uuid(channel)}")


def uuid_exists(channel: str) -> ApiCall:
    return ApiCall(f"uuid_exists {uuid(channel)}")


def uuid_break(channel: str, all_: bool = True) -> ApiCall:
    return ApiCall(f"uuid_break {uuid(channel)}" + (" all" if all_ else ""))


def uuid_send_dtmf(channel: str, digits: str) -> ApiCall:
    """Press keys on the call towards the far end (an IVR). FreeSWITCH answers "+OK <uuid> sent DTMF <digits>."."""
    return ApiCall(f"uuid_send_dtmf {uuid(channel)} {_check('DTMF digits', DTMF_DIGITS, digits)}")


def uuid_broadcast(channel: str, path: str, leg: str = "aleg") -> ApiCall:
    if leg not in LEGS:
        raise UnsafeValue("leg", leg)
    return ApiCall(f"uuid_broadcast {uuid(channel)} {playable(path)} {leg}")


def uuid_setvar(channel: str, name: str, value: str) -> ApiCall:
    """Set a channel variable; both the name and the value come from the identifier allow-list."""
    return ApiCall(f"uuid_setvar {uuid(channel)} {ident(name, 'variable name')} {ident(value, 'variable value')}")


def uuid_setvar_dialplan(channel: str, name: str, value: str) -> ApiCall:
    """Set (or, with an empty value, unset) one vb_* variable the engineer-owned dialplan reads.

    The same allow-lists as originate's dialplan variables: vb_<lowercase> names, values of
    [A-Za-z0-9_+.-] (E.164 numbers, gateway names, country codes, true/false).
    """
    var = _check("dialplan variable", DIALPLAN_VAR, name)
    val = _check("dialplan value", DIALPLAN_VALUE, value)
    # `uuid_setvar <uuid> <var>` with no value unsets it: a leftover from earlier on the channel cannot stay.
    return ApiCall(f"uuid_setvar {uuid(channel)} {var}" + (f" {val}" if val else ""))


def uuid_record(channel: str, action: str, path: str) -> ApiCall:
    """uuid_record <uuid> start|stop <path>: record the call to an absolute .wav path (no ..)."""
    if action not in ("start", "stop"):
        raise UnsafeValue("record action", action)
    if not (isinstance(path, str) and FILE_PATH.match(path) and ".." not in path and path.endswith(".wav")):
        raise UnsafeValue("recording path", path)
    return ApiCall(f"uuid_record {uuid(channel)} {action} {path}")


def uuid_transfer(channel: str, extension: str, context: str) -> ApiCall:
    """Transfer into `extension` of dialplan `context` (engineer-owned, never caller-supplied)."""
    return ApiCall(f"uuid_transfer {uuid(channel)} {_extension(extension)} XML {ident(context, 'context')}")


def _extension(value: str) -> str:
    # IDENT admits a leading "-": uuid_transfer would read `-bleg` / `-both` as an option, not a destination.
    if isinstance(value, str) and not value.startswith("-") and (E164.match(value) or IDENT.match(value)):
        return value
    raise UnsafeValue("extension", value)


def uuid_deflect(channel: str, user: str, host_: str) -> ApiCall:
    """SIP REFER the call to sip:user@host[:port]."""
    target = host_port(host_) if isinstance(host_, str) and ":" in host_ else host(host_)
    return ApiCall(f"uuid_deflect {uuid(channel)} sip:{_extension(user)}@{target}")


def audio_fork_start(channel: str, url: str, *, mix: str = "mono", rate: str = "16k",
                     metadata: Mapping[str, object] | None = None, bug_name: str | None = None,
                     bidirectional: bool = False, playback_rate: int = 16000) -> ApiCall:
    """uuid_audio_fork start. The bidirectional (10-argument) form requires a bug name."""
    if mix not in AUDIO_MIX or rate not in AUDIO_RATE:
        raise UnsafeValue("audio fork mix/rate", (mix, rate))
    parts = ["uuid_audio_fork", uuid(channel), "start", ws_url(url), mix, rate]
    if bidirectional:
        if bug_name is None:
            raise UnsafeValue("bug name (required for bidirectional audio fork)", bug_name)
        if playback_rate not in (8000, 16000):
            raise UnsafeValue("playback rate", playback_rate)
        parts += [ident(bug_name, "bug name"), metadata_json(metadata or {}), "true", "true", str(playback_rate)]
    else:
        if bug_name is not None:
            parts.append(ident(bug_name, "bug name"))
        if metadata is not None:
            parts.append(metadata_json(metadata))
    return ApiCall(" ".join(parts))


def audio_fork_stop(channel: str, final: Mapping[str, object] | None = None, bug_name: str | None = None) -> ApiCall:
    parts = ["uuid_audio_fork", uuid(channel), "stop"]
    if bug_name is not None:
        parts.append(ident(bug_name, "bug name"))
    if final is not None:
        parts.append(metadata_json(final))
    return ApiCall(" ".join(parts))


def audio_fork_send_text(channel: str, payload: Mapping[str, object]) -> ApiCall:
    return ApiCall(f"uuid_audio_fork {uuid(channel)} send_text {metadata_json(payload)}")


def audio_fork_pause(channel: str, resume: bool = False) -> ApiCall:
    return ApiCall(f"uuid_audio_fork {uuid(channel)} {'resume' if resume else 'pause'}")


def show_channels_json() -> ApiCall:
    return ApiCall("show channels as json")


def sofia_profile_rescan(profile: str) -> ApiCall:
    return ApiCall(f"sofia profile {ident(profile, 'profile')} rescan")


def sofia_killgw(profile: str, gateway_name: str, gateway_pattern: re.Pattern[str] | None = None) -> ApiCall:
    return ApiCall(f"sofia profile {ident(profile, 'profile')} killgw {gateway(gateway_name, gateway_pattern)}")


def sofia_xmlstatus_gateway(gateway_name: str | None = None,
                            gateway_pattern: re.Pattern[str] | None = None) -> ApiCall:
    if gateway_name is None:
        return ApiCall("sofia xmlstatus gateway")
    return ApiCall(f"sofia xmlstatus gateway {gateway(gateway_name, gateway_pattern)}")


def reloadxml() -> ApiCall:
    return ApiCall("reloadxml")


def reloadacl() -> ApiCall:
    return ApiCall("reloadacl")


def acl_check(ip: str, list_name: str) -> ApiCall:
    """`acl <ip> <list>`: FreeSWITCH answers `true` / `false` (no newline). IPv4 only."""
    return ApiCall(f"acl {_check('IPv4 address', IPV4, ip)} {_check('acl list name', ACL_LIST, list_name)}")


def user_exists(user: str, domain: str) -> ApiCall:
    """`user_exists id <user> <domain>`: `true` / `false` (no newline), looked up by the id attribute."""
    return ApiCall(f"user_exists id {_check('directory user', DIRECTORY_USER, user)} {host(domain)}")


def status() -> ApiCall:
    return ApiCall("status")
