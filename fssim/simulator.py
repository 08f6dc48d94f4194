"""The simulator as a whole: ESL server, switch, heartbeat; start/stop/restart in-process."""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping

import gevent
from gevent.server import StreamServer

from fssim.api import Api
from fssim.audio_fork import AudioForks
from fssim.channel import Channel
from fssim.events import Event
from fssim.inbound import InboundSession
from fssim.outbound import connect as outbound_connect
from fssim.registry import Registry
from fssim.rules import Rules
from fssim.sip_invite import Refused, invite
from fssim.switch import Switch

log = logging.getLogger(__name__)


class Simulator:
    """A FreeSWITCH on an Event Socket port.

    sim = Simulator("127.0.0.1", 0, "ClueCon", rules=Rules([...]))
    sim.start(); sim.port  # the bound port
    sim.inbound_call("+15550001111", "127.0.0.1:8040")  # a call arriving at a DID
    sim.heard(uuid)  # PCM the far end heard
    sim.stop()  # or sim.restart() mid-call: channels vanish as in a real restart
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, password: str = "ClueCon",  # noqa: S107 - FreeSWITCH default
                 rules: Rules | None = None, conf_dir: str | None = None, heartbeat_interval: float = 20.0,
                 max_sessions: int = 1000, tmp_dir: str = "/tmp",  # noqa: S108 - the path mod_audio_fork uses
                 env: Mapping[str, str] | None = None):
        self.host, self.requested_port, self.password = host, port, password
        self.rules = rules or Rules()
        self.conf_dir = conf_dir
        self.heartbeat_interval = heartbeat_interval
        self.max_sessions = max_sessions
        self.tmp_dir = tmp_dir
        self.port = port
        self.server: StreamServer | None = None
        self.switch: Switch | None = None
        self.api: Api | None = None
        self._heartbeat: gevent.Greenlet | None = None
        self._sessions: set = set()
        self._heard_listeners: list[Callable[[str, bytes], None]] = []
        self._event_listener = _EventListener()
        self.registry = Registry(conf_dir, env)  # env: what vars.xml's env-set reads (default os.environ)

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Simulator:
        sw = Switch(self.rules, self.registry, max_sessions=self.max_sessions)
        sw.heard.listeners.extend(self._heard_listeners)
        sw.sessions.add(self._event_listener)
        if self.switch is not None:
            sw.heard.buffers = self.switch.heard.buffers  # what was heard survives a restart
        self.switch, self.api = sw, Api(sw)
        sw.forks = AudioForks(sw, self.tmp_dir)
        sw.socket_connector = lambda ch, addr, flags: outbound_connect(sw, self.api, ch, addr, flags)
        # After a restart, bind the same port again so clients reconnect where they were.
        self.server = StreamServer((self.host, self.port), self._handle)
        self.server.init_socket()
        self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.start()
        self.port = self.server.server_port
        self._heartbeat = gevent.spawn(self._heartbeat_loop, sw)
        return self

    def stop(self) -> None:
        """Like a killed FreeSWITCH: connections drop, live channels vanish without events."""
        if self.server is None:
            return
        self.server.stop(timeout=0)
        self.server = None
        if self._heartbeat is not None:
            self._heartbeat.kill(block=False)
        for s in list(self._sessions):
            s.kill()
        self._sessions.clear()
        for s in list(self.switch.sessions):
            s.kill()
        self.switch.crash()

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        if downtime:
            gevent.sleep(downtime)
        self.start()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- helpers for tests and the demo ---------------------------------------------------------
    def inbound_call(self, did: str, socket_addr: str, caller: str = "15551230000", caller_name: str = "",
                     remote_audio: str | None = None, full: bool = True, rtp: str = "continuous",
                     codec: str = "PCMU", headers: dict[str, str] | None = None, uuid: str | None = None) -> Channel:
        """A call from `caller` arriving at `did`, handed by the dialplan to `socket_addr` (host:port); rtp
        "suppress": the caller's carrier sends no RTP while they are silent; codec as Rule.codec; headers: extra
        SIP headers of the INVITE ({"X-Customer-Id": "42"}), set on the channel as sofia does (sip_h_X-...);
        uuid: the channel's uuid (a test's stand-in for a socket that names a channel the app already knows)."""
        return self.switch.inbound_call(did, socket_addr, caller, caller_name, remote_audio=remote_audio, full=full,
                                        rtp=rtp, codec=codec, headers=headers, uuid=uuid)

    def sip_invite(self, did: str, source_ip: str, caller: str = "15551230000",
                   credentials: tuple[str, str] | None = None, headers: dict[str, str] | None = None
                   ) -> Channel | Refused:
        """An INVITE from `source_ip` (a carrier or a customer PBX) to `did` on the external profile: admitted
        by the profile's ACLs or a Digest answer the way mod_sofia does, then routed by the public dialplan
        (which hands it to the app's socket). A refused INVITE creates no channel (fssim.sip_invite)."""
        return invite(self.switch, did, source_ip, caller, credentials, headers)

    def heard(self, uuid: str) -> bytes:
        """16 kHz 16-bit mono PCM the far end of call `uuid` heard (files played, bidi audio)."""
        return self.switch.heard.get(uuid)

    def on_heard(self, fn: Callable[[str, bytes], None]) -> None:
        """Call fn(uuid, pcm16k) for every piece of audio the far end hears."""
        self._heard_listeners.append(fn)
        if self.switch is not None:
            self.switch.heard.listeners.append(fn)

    def on_event(self, fn: Callable[[Event], None]) -> None:
        """Call fn(event) for every event the switch fires, in the emitting greenlet (keep fn short:
        spawn anything slow). A scripted far end reacts to what it hears this way, not on timers."""
        self._event_listener.listeners.append(fn)

    def channel(self, uuid: str) -> Channel | None:
        return self.switch.channels.get(uuid)

    def hangup_far_end(self, uuid: str, cause: str = "NORMAL_CLEARING") -> bool:
        """The remote party hangs up."""
        ch = self.switch.channels.get(uuid)
        return bool(ch and self.switch.remote_hangup(ch, cause))

    def say(self, uuid: str, pcm16k: bytes) -> bool:
        """The far end speaks `pcm16k` (16 kHz 16-bit mono) into the call's audio stream, in real time."""
        ch = self.switch.channels.get(uuid)
        if ch is None or not ch.up:
            return False
        ch.far_end_speech.extend(pcm16k)
        return True

    def send_dtmf(self, uuid: str, digits: str) -> None:
        """The remote party presses keys."""
        ch = self.switch.channels[uuid]
        for d in digits:
            self.switch.channel_event(ch, "DTMF", [("DTMF-Digit", d), ("DTMF-Duration", "2000"),
                                                   ("DTMF-Source", "RTP")])

    def ivr(self, uuid: str, menu: dict[str, bytes]) -> None:
        """The far end is a phone menu: a key sent with uuid_send_dtmf makes it say menu[key] (16 kHz PCM)."""
        ch = self.switch.channels[uuid]

        def react(digit: str) -> None:
            if digit in menu:
                self.say(uuid, menu[digit])

        ch.on_far_end_key = react

    def dtmf_sent(self, uuid: str) -> list[str]:
        """What uuid_send_dtmf sent on the channel, one string per command."""
        ch = self.switch.channels.get(uuid)
        return list(ch.dtmf_sent) if ch is not None else []

    # ---- internals ------------------------------------------------------------------------------
    def _handle(self, sock, addr) -> None:
        session = InboundSession(sock, self.switch, self.api, self.password)
        self._sessions.add(session)
        try:
            session.run()
        finally:
            self._sessions.discard(session)

    def _heartbeat_loop(self, sw: Switch) -> None:
        from fssim.events import VERSION

        while True:
            gevent.sleep(self.heartbeat_interval)
            up_ms = int((time.time() - sw.started) * 1000)
            sw.emit("HEARTBEAT", [
                ("Event-Info", "System Ready"), ("Up-Time", sw.uptime_text()), ("FreeSWITCH-Version", VERSION),
                ("Uptime-msec", str(up_ms)), ("Session-Count", str(len(sw.channels))),
                ("Max-Sessions", str(sw.max_sessions)), ("Session-Per-Sec", str(sw.sps)),
                ("Session-Per-Sec-Last", "0"), ("Session-Per-Sec-Max", "5"), ("Session-Per-Sec-FiveMin", "5"),
                ("Session-Since-Startup", str(sw.sessions_since_startup)), ("Session-Peak-Max", str(sw.peak)),
                ("Session-Peak-FiveMin", str(sw.peak)), ("Idle-CPU", "98.166667")])


class _EventListener:
    """Sits among the switch's ESL sessions (it offers every event to each) and hands events to listeners."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[Event], None]] = []

    def offer(self, ev: Event) -> None:
        for fn in list(self.listeners):
            try:
                fn(ev)
            except Exception:  # a listener's bug must not break the switch's event delivery
                log.exception("simulator event listener failed on %s", ev.name)

    def kill(self) -> None:
        """Sessions are killed when the switch stops; the listener stays for the restarted switch."""
