"""Events as FreeSWITCH builds them: core headers, then the event's own headers, then an optional body."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

HOSTNAME = "vm"
IPV4 = "192.0.2.2"
IPV6 = "fd00::2"
VERSION = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit"

# Where the real switch says each event comes from (Event-Calling-File / -Function / -Line-Number).
ORIGINS = {
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", "626"),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", "3641"),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered", "3717"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2944"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2983"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3357"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", "943"),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", "1741"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", "1198"),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", "2411"),
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", "2021"),
    "DTMF": ("switch_channel.c", "switch_channel_queue_dtmf", "515"),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1572"),
    "HEARTBEAT": ("switch_core.c", "send_heartbeat", "95"),
    "CUSTOM": ("mod_audio_fork.c", "responseHandler", "22"),
    "API": ("switch_loadable_module.c", "switch_api_execute", "2957"),
}


@dataclass
class Event:
    name: str
    headers: list[tuple[str, str]]
    body: str | None = None
    subclass: str = ""
    unique_id: str = ""
    index: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = dict(self.headers)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.index.get(key, default)


def now_us() -> int:
    return int(time.time() * 1_000_000)


def date_headers(us: int) -> list[tuple[str, str]]:
    secs = us / 1_000_000
    return [
        ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(secs))),
        ("Event-Date-GMT", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(secs))),
        ("Event-Date-Timestamp", str(us)),
    ]


def core_headers(core_uuid: str, name: str, seq: int, subclass: str = "") -> list[tuple[str, str]]:
    origin = ORIGINS.get(name, ORIGINS["API"])
    head = [("Event-Subclass", subclass)] if subclass else []
    head += [("Event-Name", name), ("Core-UUID", core_uuid), ("FreeSWITCH-Hostname", HOSTNAME),
             ("FreeSWITCH-Switchname", HOSTNAME), ("FreeSWITCH-IPv4", IPV4), ("FreeSWITCH-IPv6", IPV6)]
    head += date_headers(now_us())
    head += [("Event-Calling-File", origin[0]), ("Event-Calling-Function", origin[1]),
             ("Event-Calling-Line-Number", origin[2]), ("Event-Sequence", str(seq))]
    return head
