"""mod_audio_fork: a WebSocket client per media bug that streams the call's audio to a server.

Copies the jambonz module as captured: subprotocol audio.drachtio.org, metadata as the first text
frame, 20 ms binary frames of 16-bit mono PCM, server messages turned into CUSTOM events, and
playAudio written to /tmp/<uuid>_<n>.tmp.r16 (the module writes it; it does not play it).
"""
from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gevent
import websocket  # websocket-client; cooperative under gevent's monkey patching

from fssim.media import AudioSource, resample

if TYPE_CHECKING:
    from fssim.channel import Channel
    from fssim.switch import Switch

log = logging.getLogger(__name__)
SUBPROTOCOL = "audio.drachtio.org"
OK, FAILED = "+OK Success\n", "-ERR Operation Failed\n"
RATES = {"8k": 8000, "16k": 16000, "24k": 24000, "32k": 32000, "48k": 48000, "64k": 64000}
MIXES = ("mono", "mixed", "stereo")


@dataclass
class Fork:
    ch: Channel
    url: str
    rate: int
    stereo: bool
    metadata: str | None
    bugname: str
    bidirectional: bool = False
    stream: bool = False  # bidirectional streaming: binary frames from the server are played into the call
    playback_rate: int = 16000  # the rate of those frames
    ws: websocket.WebSocket | None = None
    paused: bool = False
    closing: bool = False
    file_counter: int = 0
    greenlets: list = field(default_factory=list)


class AudioForks:
    def __init__(self, switch: Switch, tmp_dir: str = "/tmp"):  # noqa: S108 - the path mod_audio_fork uses
        self.sw = switch
        self.tmp = tmp_dir
        self.forks: dict[tuple[str, str], Fork] = {}

    # ---- api ------------------------------------------------------------------------------------
    def command(self, arg: str) -> str:
        words = arg.split(" ")
        words = [w for w in words if w]
        if len(words) < 2:
            return FAILED
        ch = self.sw.channels.get(words[0])
        if ch is None or not ch.up:
            return FAILED
        verb, rest = words[1], words[2:]
        if verb == "start":
            return self._start(ch, rest)
        fork = self._find(ch, rest)
        if verb == "stop":
            if fork is None:
                return FAILED
            text = " ".join(rest[1:] if rest and (ch.uuid, rest[0]) in self.forks else rest)
            self._stop(fork, text or None)
            return OK
        if fork is None:
            return FAILED
        if verb == "send_text":
            text = " ".join(rest[1:] if rest and (ch.uuid, rest[0]) in self.forks else rest)
            self._send(fork, text)
            return OK
        if verb in ("pause", "resume"):
            fork.paused = verb == "pause"
            return OK
        return FAILED

    def _find(self, ch: Channel, rest: list[str]) -> Fork | None:
        if rest and (ch.uuid, rest[0]) in self.forks:
            return self.forks[(ch.uuid, rest[0])]
        return self.forks.get((ch.uuid, "audio_fork"))

    def _start(self, ch: Channel, args: list[str]) -> str:
        # start <url> <mix> <rate> [metadata] | <bugname> <metadata> [bidi] [stream] [stream rate]
        if len(args) < 3 or not args[0].startswith(("ws://", "wss://")) or args[1] not in MIXES \
                or args[2] not in RATES:
            return FAILED
        url, mix, rate = args[0], args[1], RATES[args[2]]
        bugname, metadata, bidi, stream, playback_rate = "audio_fork", None, False, False, rate
        extra = args[3:]
        if len(extra) == 1:
            metadata = extra[0]
        elif len(extra) >= 2:
            # Arguments are positional and split on spaces: metadata with spaces turns its first piece into
            # the bug name and the second into the metadata (seen on the real module). So does leaving out the
            # bug name of the bidirectional form: `<metadata> true true 16000` reads as bug name <metadata>,
            # metadata "true", bidirectional, streaming "16000" (not "true"): binary frames are not played.
            bugname, metadata = extra[0], extra[1]
            bidi = len(extra) >= 3 and extra[2] == "true"
            stream = bidi and len(extra) >= 4 and extra[3] == "true"
            if stream and len(extra) >= 5 and extra[4].isdigit() and int(extra[4]) in RATES.values():
                playback_rate = int(extra[4])
        if (ch.uuid, bugname) in self.forks:
            return FAILED
        fork = Fork(ch, url, rate, mix == "stereo", metadata, bugname, bidi, stream, playback_rate)
        self.forks[(ch.uuid, bugname)] = fork
        fork.greenlets.append(self.sw.greenlets.spawn(self._run, fork))
        return OK

    # ---- connection -----------------------------------------------------------------------------
    def _run(self, fork: Fork) -> None:
        # The far end's audio is ready before the stream opens: the first frame follows the metadata by one
        # packet time (19-41 ms on the real module), not by the time it takes to load a WAV.
        source = AudioSource(fork.ch.remote_audio, fork.rate, fork.ch.far_end_speech, fork.ch.rtp, fork.ch.codec)
        try:
            fork.ws = websocket.create_connection(
                fork.url, timeout=5, subprotocols=[SUBPROTOCOL], enable_multithread=True,
                origin=_origin(fork.url), header=["Pragma: no-cache", "Cache-Control: no-cache"])
        except (OSError, websocket.WebSocketException, ValueError):
            self.forks.pop((fork.ch.uuid, fork.bugname), None)
            if fork.ch.up:
                self.sw.custom(fork.ch, "mod_audio_fork::connect_failed", '{"reason":"Unable to connect"}')
            return
        fork.ws.settimeout(None)
        self.sw.custom(fork.ch, "mod_audio_fork::connect", None)
        if fork.metadata:
            self._send(fork, fork.metadata)
        fork.greenlets.append(self.sw.greenlets.spawn(self._stream, fork, source))
        self._receive(fork)

    def _stream(self, fork: Fork, source: AudioSource) -> None:
        """One 20 ms frame per RTP packet the far end sends, each when its packet would have arrived; nothing
        while it sends none (rtp "suppress" and the far end quiet): the real module fills no gaps."""
        channels = 2 if fork.stereo else 1
        start, n = time.monotonic(), 0
        while fork.ws is not None and not fork.closing and fork.ch.up:
            n += 1
            gevent.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            if fork.ws is None or fork.closing or not fork.ch.up:
                return
            frame = source.next_frame()
            if fork.ch.recording:
                fork.ch.said.extend(resample(frame, fork.rate, 16000) if frame else bytes(640))
            if frame is None or fork.paused:
                continue
            if channels == 2:
                frame = _interleave(frame, bytes(len(frame)))
            try:
                fork.ws.send_binary(frame)
            except (OSError, websocket.WebSocketException):
                return

    def _receive(self, fork: Fork) -> None:
        ws = fork.ws
        try:
            while True:
                opcode, data = ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    self._on_text(fork, data.decode("utf-8", "replace"))
                elif opcode == websocket.ABNF.OPCODE_BINARY:
                    self._on_binary(fork, data)
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
        except (OSError, websocket.WebSocketException):
            pass
        self.forks.pop((fork.ch.uuid, fork.bugname), None)
        if not fork.closing and fork.ch.up:
            self.sw.custom(fork.ch, "mod_audio_fork::disconnect", None)
        fork.closing = True
        _shutdown(ws)

    def _on_text(self, fork: Fork, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return  # non-JSON text fires nothing
        if not isinstance(msg, dict):
            return
        kind, data = msg.get("type"), msg.get("data")
        ch = fork.ch
        if kind == "playAudio" and isinstance(data, dict):
            self._play_audio(fork, data)
        elif kind == "killAudio":
            self.sw.custom(ch, "mod_audio_fork::kill_audio", None)
            self.sw.break_app(ch)
        elif kind == "json":
            # the module re-serialises the message compactly (cJSON)
            self.sw.custom(ch, "mod_audio_fork::json", json.dumps(msg, separators=(",", ":")))
        elif kind in ("transcription", "error"):
            self.sw.custom(ch, f"mod_audio_fork::{kind}", json.dumps(data, separators=(",", ":")))

    def _play_audio(self, fork: Fork, data: dict) -> None:
        try:
            pcm = base64.b64decode(data.get("audioContent", ""), validate=False)
        except ValueError:
            return
        rate = int(data.get("sampleRate", 8000) or 8000)
        fork.file_counter += 1
        ext = {8000: "r8", 16000: "r16", 24000: "r24", 32000: "r32", 48000: "r48", 64000: "r64"}.get(rate, "r16")
        path = f"{self.tmp}/{fork.ch.uuid}_{fork.file_counter + 1}.tmp.{ext}"
        with open(path, "wb") as fh:
            fh.write(pcm)
        body = {"audioContentType": data.get("audioContentType", "raw"), "sampleRate": rate,
                "textContent": data.get("textContent", ""), "file": path}
        self.sw.custom(fork.ch, "mod_audio_fork::play_audio", json.dumps(body, separators=(",", ":")))

    def _on_binary(self, fork: Fork, data: bytes) -> None:
        # Played into the call only while the channel writes audio (playback silence_stream://-1).
        if fork.stream and fork.ch.writing_audio and fork.ch.up:
            self.sw.heard.add(fork.ch.uuid, resample(data, fork.playback_rate, 16000))

    # ---- stop -----------------------------------------------------------------------------------
    def _send(self, fork: Fork, text: str) -> None:
        if fork.ws is None:
            return
        try:
            fork.ws.send(text)
        except (OSError, websocket.WebSocketException):
            pass

    def _stop(self, fork: Fork, text: str | None) -> None:
        self.forks.pop((fork.ch.uuid, fork.bugname), None)
        fork.closing = True
        if text:
            self._send(fork, text)
        if fork.ws is not None:
            _close(fork.ws)

    def channel_gone(self, ch: Channel) -> None:
        for key in [k for k in self.forks if k[0] == ch.uuid]:
            self._stop(self.forks[key], None)

    def drop_all(self) -> None:
        for fork in list(self.forks.values()):
            fork.closing = True
            if fork.ws is not None:
                _shutdown(fork.ws)
        self.forks.clear()


def _close(ws: websocket.WebSocket) -> None:
    """Close frame 1000; the receiving greenlet reads the reply, and a timer makes sure it ends."""
    try:
        ws.send_close(websocket.STATUS_NORMAL)
    except (OSError, websocket.WebSocketException):
        pass
    gevent.spawn_later(2.0, _shutdown, ws)


def _shutdown(ws: websocket.WebSocket) -> None:
    try:
        ws.shutdown()
    except (OSError, websocket.WebSocketException):
        pass


def _origin(url: str) -> str:
    host = url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    return f"http://{host}"


def _interleave(left: bytes, right: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(left), 2):
        out += left[i:i + 2] + right[i:i + 2]
    return bytes(out)
