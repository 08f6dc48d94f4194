"""api commands: the texts FreeSWITCH answers, byte for byte where the captures show them."""
from __future__ import annotations

import json
import re
import uuid as uuidlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from fssim.dialstring import USAGE, parse_application, split_args
from fssim.events import VERSION

if TYPE_CHECKING:
    from fssim.switch import Switch

UUID_RE = re.compile(r"^[0-9a-fA-F-]{36}$")
VERSION_TEXT = (f"FreeSWITCH Version {VERSION} (git a88d069 2024-08-02 21:02:27Z 64bit)\n")
NO_CHANNEL = "-ERR No such channel!\n"
# switch_channel.c CAUSE_CHART: every cause name switch_channel_str2cause() knows, with its code.
CAUSE_CODES = {
    "NONE": 0, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
    "CHANNEL_UNACCEPTABLE": 6, "CALL_AWARDED_DELIVERED": 7, "NORMAL_CLEARING": 16, "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21, "NUMBER_CHANGED": 22,
    "REDIRECTION_TO_NEW_DESTINATION": 23, "EXCHANGE_ROUTING_ERROR": 25, "DESTINATION_OUT_OF_ORDER": 27,
    "INVALID_NUMBER_FORMAT": 28, "FACILITY_REJECTED": 29, "RESPONSE_TO_STATUS_ENQUIRY": 30,
    "NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42, "ACCESS_INFO_DISCARDED": 43,
    "REQUESTED_CHAN_UNAVAIL": 44, "PRE_EMPTED": 45, "FACILITY_NOT_SUBSCRIBED": 50, "OUTGOING_CALL_BARRED": 52,
    "INCOMING_CALL_BARRED": 54, "BEARERCAPABILITY_NOTAUTH": 57, "BEARERCAPABILITY_NOTAVAIL": 58,
    "SERVICE_UNAVAILABLE": 63, "BEARERCAPABILITY_NOTIMPL": 65, "CHAN_NOT_IMPLEMENTED": 66,
    "FACILITY_NOT_IMPLEMENTED": 69, "SERVICE_NOT_IMPLEMENTED": 79, "INVALID_CALL_REFERENCE": 81,
    "INCOMPATIBLE_DESTINATION": 88, "INVALID_MSG_UNSPECIFIED": 95, "MANDATORY_IE_MISSING": 96,
    "MESSAGE_TYPE_NONEXIST": 97, "WRONG_MESSAGE": 98, "IE_NONEXIST": 99, "INVALID_IE_CONTENTS": 100,
    "WRONG_CALL_STATE": 101, "RECOVERY_ON_TIMER_EXPIRE": 102, "MANDATORY_IE_LENGTH_ERROR": 103,
    "PROTOCOL_ERROR": 111, "INTERWORKING": 127, "SUCCESS": 142, "ORIGINATOR_CANCEL": 487, "CRASH": 700,
    "SYSTEM_SHUTDOWN": 701, "LOSE_RACE": 702, "MANAGER_REQUEST": 703, "BLIND_TRANSFER": 800,
    "ATTENDED_TRANSFER": 801, "ALLOTTED_TIMEOUT": 802, "USER_CHALLENGE": 803, "MEDIA_TIMEOUT": 804,
    "PICKED_OFF": 805, "USER_NOT_REGISTERED": 806, "PROGRESS_TIMEOUT": 807, "INVALID_GATEWAY": 808,
    "GATEWAY_DOWN": 809, "INVALID_URL": 810, "INVALID_PROFILE": 811, "NO_PICKUP": 812, "SRTP_READ_ERROR": 813,
    "BOWOUT": 814, "BUSY_EVERYWHERE": 815, "DECLINE": 816, "DOES_NOT_EXIST_ANYWHERE": 817, "NOT_ACCEPTABLE": 818,
    "UNWANTED": 819, "NO_IDENTITY": 820, "BAD_IDENTITY_INFO": 821, "UNSUPPORTED_CERTIFICATE": 822,
    "INVALID_IDENTITY": 823, "STALE_DATE": 824, "REJECT_ALL": 825,
}


class Api:
    def __init__(self, switch: Switch):
        self.sw = switch
        self.table: dict[str, Callable[[str], str]] = {
            "version": lambda a: VERSION_TEXT, "status": self.status, "uuid_exists": self.uuid_exists,
            "show": self.show, "uuid_kill": self.uuid_kill, "uuid_answer": self.uuid_answer,
            "uuid_broadcast": self.uuid_broadcast, "uuid_break": self.uuid_break,
            "uuid_transfer": self.uuid_transfer, "uuid_deflect": self.uuid_deflect,
            "uuid_setvar": self.uuid_setvar, "uuid_getvar": self.uuid_getvar,
            "uuid_send_dtmf": self.uuid_send_dtmf, "uuid_record": self.uuid_record,
            "uuid_audio_fork": self.uuid_audio_fork,
            "originate": self.originate, "global_getvar": self.global_getvar,
            "global_setvar": self.global_setvar, "hupall": self.hupall,
            "reloadxml": lambda a: self._reloadxml(), "reloadacl": self.reloadacl, "acl": self.acl,
            "user_exists": self.user_exists,
            "sofia": self.sofia, "hostname": lambda a: "vm", "eval": lambda a: a,
        }

    def execute(self, line: str) -> str:
        name, _, arg = line.strip().partition(" ")
        fn = self.table.get(name)
        if fn is None:
            return f"-ERR {name} Command not found!\n"
        return fn(arg.strip())

    def _channel(self, uid: str):
        return self.sw.channels.get(uid)

    # ---- core -----------------------------------------------------------------------------------
    def status(self, arg: str) -> str:
        n = len(self.sw.session_rows())
        return (f"UP {self.sw.uptime_text()}\n"
                f"FreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n"
                f"{self.sw.sessions_since_startup} session(s) since startup\n"
                f"{n} session(s) - peak {self.sw.peak}, last 5min {self.sw.peak} \n"
                f"0 session(s) per Sec out of max {self.sw.sps}, peak {self.sw.peak}, last 5min {self.sw.peak} \n"
                f"{self.sw.max_sessions} session(s) max\nmin idle cpu 0.00/98.60\n"
                "Current Stack Size/Max 240K/8192K\n")

    def show(self, arg: str) -> str:
        words = arg.split()
        if words[:1] == ["channels"]:
            rows = [ch.show_row("vm") for ch in self.sw.session_rows()]
            if words[1:3] == ["as", "json"]:
                if not rows:
                    return '{"row_count": 0}\n'
                return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":")) + "\n"
            if words[1:2] == ["count"]:
                return f"\n{len(rows)} total.\n"
            head = "uuid,direction,created,name,state,cid_name,cid_num,dest,application,callstate\n"
            lines = "".join(",".join(r[k] for k in ("uuid", "direction", "created", "name", "state", "cid_name",
                                                     "cid_num", "dest", "application", "callstate")) + "\n"
                            for r in rows)
            return f"{head}{lines}\n{len(rows)} total.\n"
        if words[:2] == ["calls", "count"]:
            return f"\n{len(self.sw.session_rows())} total.\n"
        return "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n"  # noqa: E501

    def global_getvar(self, arg: str) -> str:
        if not arg:
            return "".join(f"{k}={v}\n" for k, v in self.sw.globals.items())
        value = self.sw.globals.get(arg)
        return value if value is not None else "-ERR no reply\n"

    def global_setvar(self, arg: str) -> str:
        k, _, v = arg.partition("=")
        self.sw.globals[k.strip()] = v.strip()
        return "+OK\n"

    def hupall(self, arg: str) -> str:
        cause = arg.split()[0] if arg else "MANAGER_REQUEST"
        for ch in list(self.sw.channels.values()):
            self.sw.greenlets.spawn(self.sw.hangup, ch, cause)
        return f"+OK hangup all channels with cause {cause}\n"

    # ---- channels -------------------------------------------------------------------------------
    def uuid_exists(self, arg: str) -> str:
        ch = self._channel(arg.split()[0]) if arg else None
        return "true" if ch is not None and ch.up else "false"

    def uuid_kill(self, arg: str) -> str:
        words = arg.split()
        ch = self._channel(words[0]) if words else None
        if ch is None or not ch.up:
            return NO_CHANNEL
        # mod_commands kill_function: `cause = switch_channel_str2cause(kcause)` when a cause is given:
        # an unknown name hangs up with NORMAL_CLEARING, a number with the cause of that Q.850 code.
        from fssim.session import cause_name

        cause = cause_name(words[1]) if len(words) > 1 else "NORMAL_CLEARING"
        self.sw.greenlets.spawn(self.sw.hangup, ch, cause)
        return "+OK\n"

    def uuid_answer(self, arg: str) -> str:
        ch = self._channel(arg.split()[0]) if arg else None
        if ch is None:
            return "-ERR No such channel!\n"
        self.sw.greenlets.spawn(self.sw.answer, ch)
        return "+OK\n"

    def uuid_broadcast(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
        ch = self._channel(words[0])
        if ch is None:
            return "-ERR Operation Failed\n"
        path = words[1]
        app = parse_application(path.replace("::", "&", 1)) if "::" in path else None
        name, data = (app.name, app.arg) if app else ("playback", path)
        self.sw.queue_app(ch, name, data, broadcast=True)
        # A broadcast interrupts what runs, then plays; but broadcasts are queued with event-lock
        # (switch_ivr_broadcast), so one never cuts the broadcast playing before it: they play in turn.
        if ch.app not in ("park", "socket") and not ch.broadcasting:
            self.sw.break_app(ch)
        return "+OK Message sent\n"

    def uuid_record(self, arg: str) -> str:
        """start|stop <path>. The recording is written when it stops or the call ends: stereo when the
        channel has RECORD_STEREO=true (left: the far end, right: what the far end heard), else mono."""
        words = arg.split()
        if len(words) < 3 or words[1] not in ("start", "stop", "mask", "unmask"):
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n"
        ch = self._channel(words[0])
        if ch is None:
            return "-ERR Cannot locate session!\n"
        if words[1] == "start":
            ch.recording, ch.said[:] = words[2], b""
            ch.record_from = len(self.sw.heard.get(ch.uuid))
        elif words[1] == "stop" and ch.recording == words[2]:
            self.sw.write_recording(ch)
        return "+OK Success\n"

    def uuid_break(self, arg: str) -> str:
        words = arg.split()
        ch = self._channel(words[0]) if words else None
        if ch is None:
            return "-ERR No such channel!\n"
        queued = self.sw.app_queues.get(ch.uuid)
        if "all" in words[1:] and queued is not None:
            while not queued.empty():  # `all` flushes what is queued too (the broadcasts waiting their turn)
                queued.get_nowait()
        self.sw.break_app(ch)
        return "+OK\n"

    def uuid_transfer(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        ch = self._channel(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        words = [w for w in words[1:] if w not in ("-bleg", "-both")]
        ch.dest = words[0]
        ch.dialplan = words[1] if len(words) > 1 else "XML"  # the new caller profile's (switch_ivr.c)
        if len(words) > 2:
            ch.context = words[2]
        ch.set_var("transfer_destination", words[0])
        self.route(ch, words[0], ch.context)
        return "+OK\n"

    def route(self, ch, dest: str, context: str) -> None:
        """The channel enters the dialplan at dest@context (switch_ivr_session_transfer). An extension
        that is not there hangs the call up with NO_ROUTE_DESTINATION, as standard_on_routing does
        ("No Route, Aborting"); otherwise the current application is broken off and the
        extension's applications run on the channel."""
        apps = self.sw.registry.hunt(context, dest, ch.variables)
        if apps is None:
            self.sw.greenlets.spawn(self.sw.hangup, ch, "NO_ROUTE_DESTINATION")
            return
        for name, data in apps:
            self.sw.queue_app(ch, name, data)
        self.sw.break_app(ch)

    def uuid_deflect(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> <uri>\n"
        ch = self._channel(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if ch.endpoint != "sofia" or not ch.answered_us:
            return "-ERR Cannot deflect\n"
        ch.set_var("sip_refer_to", words[1])
        self.sw.later(0.05, self.sw.hangup, ch, "NORMAL_CLEARING")
        return "+OK:deflect\n"

    def uuid_setvar(self, arg: str) -> str:
        words = arg.split(" ", 2)
        if len(words) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        ch = self._channel(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if len(words) == 3:
            ch.set_var(words[1], words[2])
        else:
            ch.variables.pop(words[1], None)
        return "+OK\n"

    def uuid_getvar(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> <var>\n"
        ch = self._channel(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        return ch.variables.get(words[1], "_undef_")

    def uuid_send_dtmf(self, arg: str) -> str:
        """Keys towards the far end. A real switch raises no DTMF event for them on the sending channel (the
        DTMF event is for keys received: tests/data/freeswitch/captures/call-events-json.jsonl); the simulator
        records them and lets a scripted far end (Simulator.ivr) react, w/W being pauses."""
        words = arg.split()
        ch = self._channel(words[0]) if words else None
        if ch is None or len(words) < 2:
            return "-ERR No such channel!\n"
        ch.dtmf_sent.append(words[1])
        if ch.on_far_end_key is not None:
            for digit in words[1]:
                if digit not in "wW":
                    ch.on_far_end_key(digit)
        return f"+OK {ch.uuid} sent DTMF {words[1]}.\n"

    def uuid_audio_fork(self, arg: str) -> str:
        return self.sw.forks.command(arg) if self.sw.forks else "-ERR Operation Failed\n"

    def originate(self, arg: str) -> str:
        args = split_args(arg)
        if len(args) < 2:
            return USAGE
        app = parse_application(args[1])
        timeout = args[6] if len(args) > 6 else None
        if app is not None:
            return self.sw.originate(args[0], app, timeout)
        # `originate <dial> <exten> [<dialplan>] [<context>]`: once answered, the call is transferred
        # into that extension (mod_commands originate_function -> switch_ivr_session_transfer), so
        # the api answers +OK <uuid> even when the extension does not exist; the call then fails.
        from fssim.dialstring import Application

        result = self.sw.originate(args[0], Application("park"), timeout)
        ch = self._channel(result[4:].strip()) if result.startswith("+OK ") else None
        if ch is not None:
            self.route(ch, args[1], args[3] if len(args) > 3 else "default")
        return result

    # ---- configuration (issue 6) -----------------------------------------------------------------
    def _reloadxml(self) -> str:
        # mod_commands writes "+OK [<err>]" either way; err is "Success" when the XML loaded
        return f"+OK [{self.sw.registry.reloadxml() or 'Success'}]\n"

    def reloadacl(self, arg: str) -> str:
        # plain reloadacl rebuilds the lists from the XML already loaded; `reloadacl reloadxml`
        # re-reads the files first (mod_commands reload_acl_function)
        if arg.strip().lower() == "reloadxml":
            self.sw.registry.reloadxml()
        self.sw.registry.reloadacl()
        return "+OK acl reloaded\n"

    def user_exists(self, arg: str) -> str:
        # `user_exists <key> <user> <domain>`: true/false with no newline; bad args are "false"
        words = arg.split()
        if len(words) < 3:
            return "false"
        return "true" if self.sw.registry.user_exists(words[1], words[2], key=words[0]) else "false"

    def acl(self, arg: str) -> str:
        words = arg.split()
        if len(words) != 2:
            return "-USAGE: <ip> <list_name>\n"
        return "true" if self.sw.registry.acl_check(words[0], words[1]) else "false"

    def sofia(self, arg: str) -> str:
        words = arg.split()
        reg = self.sw.registry
        if words == ["status"]:
            return _sofia_status(reg)
        if words[:2] == ["xmlstatus", "gateway"]:
            if len(words) == 2:
                inner = "".join(_gateway_xml(n, g.proxy) for n, g in reg.active.items())
                return f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<gateways>\n{inner}</gateways>\n'
            gw = reg.active.get(words[2])
            if gw is None:
                return "Invalid Gateway!\n"
            return '<?xml version="1.0" encoding="ISO-8859-1"?>\n' + _gateway_xml(gw.name, gw.proxy)
        if len(words) >= 3 and words[0] == "profile":
            if words[1] not in ("external", "internal"):
                return f"Invalid Profile [{words[1]}]\n"
            if words[2] == "rescan":
                # sofia.c cmd_profile: the XML is re-read only for `rescan reloadxml`
                # (`if (argc > 2 && !strcasecmp(argv[2], "reloadxml"))` -> "Reload XML [%s]\n", err
                # being "Success" or the parse error); plain rescan starts the gateways that appeared in
                # the XML already loaded, and says only "+OK scan complete".
                head = ""
                if len(words) > 3 and words[3].lower() == "reloadxml":
                    head = f"Reload XML [{reg.reloadxml() or 'Success'}]\n"
                reg.rescan()
                return head + "+OK scan complete\n"
            if words[2] == "killgw" and len(words) == 4:
                return "+OK gateway marked for deletion.\n" if reg.killgw(words[3]) else "-ERR no such gateway.\n"
        return "-ERR Usage: sofia status|xmlstatus|profile <name> rescan|killgw <gw>\n"


def _sofia_status(reg) -> str:
    rule = "=" * 97 + "\n"
    rows = [("127.0.0.1", "alias", "internal", "ALIASED"),
            ("external", "profile", "sip:mod_sofia@127.0.0.1:5080", "RUNNING (0)")]
    rows += [(f"external::{n}", "gateway", f"sip:{g.proxy}", "NOREG") for n, g in sorted(reg.active.items())]
    rows.append(("internal", "profile", "sip:mod_sofia@127.0.0.1:5060", "RUNNING (0)"))
    body = "".join(f"{a:>25}\t{b:>7}\t{c:>42}\t{d}\n" for a, b, c, d in rows)
    gws = len(reg.active)
    tail = "2 profiles 1 alias\n" if not gws else f"2 profiles 1 alias {gws} gateway{'s' if gws > 1 else ''}\n"
    return f"{'Name':>25}\t{'Type':>7}\t{'Data':>42}\tState\n{rule}{body}{rule}{tail}"


def _gateway_xml(name: str, proxy: str) -> str:
    from xml.sax.saxutils import escape

    return (f"  <gateway>\n    <name>{escape(name)}</name>\n    <profile>external</profile>\n"
            f"    <scheme>Digest</scheme>\n    <realm>{escape(proxy)}</realm>\n"
            f"    <proxy>sip:{escape(proxy)}</proxy>\n    <register>false</register>\n"
            f"    <state>NOREG</state>\n    <status>UP</status>\n  </gateway>\n")


def new_uuid() -> str:
    return str(uuidlib.uuid4())
