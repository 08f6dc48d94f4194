"""A simulated channel: state, caller profile and variables, rendered the way FreeSWITCH renders them."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent.event

from fssim.events import now_us

# Q.850 codes and the SIP status FreeSWITCH reports with each cause (sip_term_status).
CAUSES = {
    "NORMAL_CLEARING": (16, None), "USER_BUSY": (17, 486), "NO_ANSWER": (19, 487),
    "NO_USER_RESPONSE": (18, 408), "CALL_REJECTED": (21, 603), "UNALLOCATED_NUMBER": (1, 404),
    "NORMAL_TEMPORARY_FAILURE": (41, 503), "ORIGINATOR_CANCEL": (487, 487), "INVALID_GATEWAY": (608, None),
    "SUBSCRIBER_ABSENT": (20, 480), "USER_NOT_REGISTERED": (606, None), "DESTINATION_OUT_OF_ORDER": (27, 502),
    "INVALID_NUMBER_FORMAT": (28, 484), "CHAN_NOT_IMPLEMENTED": (66, None), "MANAGER_REQUEST": (503, None),
    "SYSTEM_SHUTDOWN": (503, None), "RECOVERY_ON_TIMER_EXPIRE": (102, 408), "NORMAL_UNSPECIFIED": (31, None),
    "SERVICE_UNAVAILABLE": (63, 503), "INCOMPATIBLE_DESTINATION": (88, 488),
    "LOSE_RACE": (502, None), "ALLOTTED_TIMEOUT": (602, None), "NETWORK_OUT_OF_ORDER": (38, 502),
}
SIP_PHRASES = {200: "OK", 486: "Busy Here", 487: "Request Terminated", 603: "Decline", 404: "Not Found",
               503: "Service Unavailable", 480: "Temporarily Unavailable", 408: "Request Timeout"}


@dataclass
class Channel:
    uuid: str
    name: str
    direction: str  # outbound | inbound
    endpoint: str  # loopback | sofia
    dest: str
    context: str = "default"
    cid_name: str = ""
    cid_num: str = "0000000000"
    callee_name: str = "Outbound Call"
    callee_num: str = ""
    source: str = "mod_loopback"
    network_addr: str = ""
    # The caller profile's dialplan: "xml" for a leg that went through one (loopback, inbound, transferred);
    # empty for a leg originated to an endpoint with an application (sofia ... &park()), which FreeSWITCH
    # sends without a <prefix>-Dialplan header (captures/sip-outbound-originate.jsonl; live 1.10.12).
    dialplan: str = "xml"
    state: str = "CS_INIT"
    state_number: str = "2"
    call_state: str = "DOWN"
    answer_state: str = "ringing"
    hit_dialplan: bool = False
    created_us: int = field(default_factory=now_us)
    progress_us: int = 0
    progress_media_us: int = 0
    answered_us: int = 0
    hangup_us: int = 0
    created_mono: float = field(default_factory=time.monotonic)
    variables: dict[str, str] = field(default_factory=dict)
    hangup_cause: str = ""
    sip_status: int | None = None
    app: str = ""
    app_data: str = ""
    app_uuid: str = ""
    flipped: bool = False
    hangup_event: gevent.event.Event = field(default_factory=gevent.event.Event)
    break_event: gevent.event.Event = field(default_factory=gevent.event.Event)
    answered_event: gevent.event.Event = field(default_factory=gevent.event.Event)
    remote_audio: str | None = None  # WAV path the far end "says"; None is silence
    far_end_speech: bytearray = field(default_factory=bytearray)  # 16 kHz PCM queued by Simulator.say
    dtmf_sent: list[str] = field(default_factory=list)  # uuid_send_dtmf's digit strings, as the far end got them
    on_far_end_key: Callable[[str], None] | None = None  # the far end reacting to a key (Simulator.ivr)
    rtp: str = "continuous"  # "suppress": the far end sends no RTP while silent (fssim.media.AudioSource)
    codec: str = "PCMU"  # the far end's leg: "PCMU" 8 kHz G.711, or "L16" wideband
    recording: str | None = None  # uuid_record start <path>: written as a stereo WAV when it stops
    said: bytearray = field(default_factory=bytearray)  # 16 kHz PCM the far end sent, while recording
    record_from: int = 0  # where the recording starts in what the far end heard
    writing_audio: bool = False  # true while an app writes media (playback): bidi audio is heard only then
    broadcasting: bool = False  # the running app came from uuid_broadcast (not the channel's own playback)
    session_id: int = 0

    @property
    def up(self) -> bool:
        return not self.hangup_event.is_set()

    def set_state(self, state: str, number: str, call_state: str | None = None) -> None:
        self.state, self.state_number = state, number
        if call_state:
            self.call_state = call_state

    def profile_headers(self, prefix: str) -> list[tuple[str, str]]:
        cid_name, cid_num = (self.callee_name, self.callee_num) if self.flipped else (self.cid_name, self.cid_num)
        callee_name, callee_num = (self.cid_name, self.cid_num) if self.flipped else (self.callee_name, self.callee_num)
        h = [(f"{prefix}-Direction", self.direction), (f"{prefix}-Logical-Direction", self.direction)]
        if self.dialplan:
            h.append((f"{prefix}-Dialplan", self.dialplan))
        h += [(f"{prefix}-Caller-ID-Name", cid_name),
             (f"{prefix}-Caller-ID-Number", cid_num), (f"{prefix}-Orig-Caller-ID-Name", self.cid_name),
             (f"{prefix}-Orig-Caller-ID-Number", self.cid_num), (f"{prefix}-Callee-ID-Name", callee_name),
             (f"{prefix}-Callee-ID-Number", callee_num)]
        if self.network_addr:
            h.append((f"{prefix}-Network-Addr", self.network_addr))
        h += [(f"{prefix}-ANI", self.cid_num), (f"{prefix}-Destination-Number", self.dest),
              (f"{prefix}-Unique-ID", self.uuid), (f"{prefix}-Source", self.source),
              (f"{prefix}-Context", self.context), (f"{prefix}-Channel-Name", self.name),
              (f"{prefix}-Profile-Index", "1"), (f"{prefix}-Profile-Created-Time", str(self.created_us)),
              (f"{prefix}-Channel-Created-Time", str(self.created_us)),
              (f"{prefix}-Channel-Answered-Time", str(self.answered_us)),
              (f"{prefix}-Channel-Progress-Time", str(self.progress_us)),
              (f"{prefix}-Channel-Progress-Media-Time", str(self.progress_media_us)),
              (f"{prefix}-Channel-Hangup-Time", str(self.hangup_us))]
        h += [(f"{prefix}-Channel-{k}", "0") for k in ("Transfer-Time", "Resurrect-Time", "Bridged-Time",
                                                       "Last-Hold", "Hold-Accum")]
        h += [(f"{prefix}-Screen-Bit", "true"), (f"{prefix}-Privacy-Hide-Name", "false"),
              (f"{prefix}-Privacy-Hide-Number", "false")]
        return h

    def state_headers(self) -> list[tuple[str, str]]:
        return [("Channel-State", self.state), ("Channel-Call-State", self.call_state),
                ("Channel-State-Number", self.state_number), ("Channel-Name", self.name),
                ("Unique-ID", self.uuid), ("Call-Direction", self.direction),
                ("Presence-Call-Direction", self.direction),
                ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
                ("Channel-Call-UUID", self.uuid), ("Answer-State", self.answer_state)]

    def codec_headers(self) -> list[tuple[str, str]]:
        return [("Channel-Read-Codec-Name", "L16"), ("Channel-Read-Codec-Rate", "8000"),
                ("Channel-Read-Codec-Bit-Rate", "128000"), ("Channel-Write-Codec-Name", "L16"),
                ("Channel-Write-Codec-Rate", "8000"), ("Channel-Write-Codec-Bit-Rate", "128000")]

    def variable_headers(self) -> list[tuple[str, str]]:
        return [(f"variable_{k}", v) for k, v in self.variables.items()]

    def event_headers(self, cause_after_state: bool = False) -> list[tuple[str, str]]:
        """State, codecs, caller profile and variables: what every channel event carries.

        Hangup-Cause leads, except in CHANNEL_HANGUP and _DESTROY where the real switch puts it after Answer-State.
        """
        cause = [("Hangup-Cause", self.hangup_cause)] if self.hangup_cause else []
        state = self.state_headers() + cause if cause_after_state else cause + self.state_headers()
        return state + self.codec_headers() + self.profile_headers("Caller") + self.variable_headers()

    def set_var(self, name: str, value: str) -> None:
        self.variables.pop(name, None)  # FreeSWITCH appends a re-set variable at the end
        self.variables[name] = value

    def mark_hangup(self, cause: str) -> None:
        self.hangup_cause = cause
        self.hangup_us = now_us()
        q850, sip = CAUSES.get(cause, (16, None))
        if self.endpoint == "sofia":
            status = self.sip_status if self.sip_status is not None else sip
            if status is not None and not self.answered_us:
                self.set_var("sip_invite_failure_status", str(status))
                self.set_var("sip_invite_failure_phrase", SIP_PHRASES.get(status, "Unknown"))
            if status is not None:
                self.set_var("sip_term_status", str(status))
                self.set_var("proto_specific_hangup_cause", f"sip:{status}")
                self.set_var("sip_term_cause", str(q850))
        self.set_var("hangup_cause", cause)
        self.set_var("hangup_cause_q850", str(q850))

    def billing(self) -> None:
        """The timing variables CHANNEL_HANGUP_COMPLETE carries (billsec counts from answer)."""
        start, end, ans = self.created_us, self.hangup_us or now_us(), self.answered_us
        prog = self.progress_us

        def stamp(us: int) -> str:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us / 1e6)) if us else ""

        v = self.set_var
        v("digits_dialed", "none")
        v("start_stamp", stamp(start))
        v("profile_start_stamp", stamp(start))
        if ans:
            v("answer_stamp", stamp(ans))
        if prog:
            v("progress_stamp", stamp(prog))
        v("end_stamp", stamp(end))
        for key, us in (("start", start), ("profile_start", start), ("answer", ans), ("bridge", 0),
                        ("last_hold", 0), ("resurrect", 0), ("progress", prog),
                        ("progress_media", self.progress_media_us), ("end", end)):
            v(f"{key}_epoch", str(us // 1_000_000))
            v(f"{key}_uepoch", str(us))
            if key == "last_hold":
                v("hold_accum_seconds", "0")
                v("hold_accum_usec", "0")
                v("hold_accum_ms", "0")
        v("caller_id", f'"{self.cid_name}" <{self.cid_num}>')
        dur, bill = end - start, (end - ans if ans else 0)
        progress = prog - start if prog else 0
        answer = ans - start if ans else 0
        for unit, div in (("sec", 1_000_000), ("msec", 1000), ("usec", 1)):
            pre = {"sec": "", "msec": "m", "usec": "u"}[unit]
            v(f"{pre}duration" if unit != "sec" else "duration", str(dur // div))
            v(f"bill{unit}", str(bill // div))
            v(f"progress{unit}", str(progress // div))
            v(f"answer{unit}", str(answer // div))
            v(f"wait{unit}", str(answer // div))
            v(f"progress_media{unit}", "0")
            v(f"flow_bill{unit}", str(bill // div))
        if self.endpoint == "loopback":
            v("is_loopback", "1")

    def show_row(self, hostname: str) -> dict[str, str]:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created_us / 1e6))
        cid_name, cid_num = (self.callee_name, self.callee_num) if self.flipped else (self.cid_name, self.cid_num)
        return {
            "uuid": self.uuid, "direction": self.direction, "created": created,
            "created_epoch": str(self.created_us // 1_000_000), "name": self.name, "state": self.state,
            "cid_name": cid_name, "cid_num": cid_num, "ip_addr": self.network_addr, "dest": self.dest,
            "application": self.app, "application_data": self.app_data, "dialplan": "xml",
            "context": self.context, "read_codec": "L16", "read_rate": "8000", "read_bit_rate": "128000",
            "write_codec": "L16", "write_rate": "8000", "write_bit_rate": "128000", "secure": "",
            "hostname": hostname, "presence_id": "", "presence_data": "", "accountcode": "",
            "callstate": self.call_state, "callee_name": self.cid_name if self.flipped else "",
            "callee_num": self.cid_num if self.flipped else "", "callee_direction": "RECV" if self.flipped else "",
            "call_uuid": self.uuid, "sent_callee_name": "", "sent_callee_num": "",
            "initial_cid_name": self.cid_name, "initial_cid_num": self.cid_num, "initial_ip_addr": self.network_addr,
            "initial_dest": self.dest, "initial_dialplan": "xml", "initial_context": self.context,
        }
