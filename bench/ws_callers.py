"""The whole-path pipeline benchmark's callers: N mod_audio_fork-shaped WebSocket clients in this process.

    python bench/ws_callers.py URLS_JSON SPEECH_PCM SECONDS CYCLE_S SPEAK_AT_S [STAGGER_S]

Run by bench_pipeline_ws.py in its own process (on its own core), as FreeSWITCH is. Each client connects
as mod_audio_fork does (HTTP upgrade to the token URL offering subprotocol audio.drachtio.org, the metadata JSON
as the first text frame), sends 20 ms masked binary frames of 16 kHz PCM on a real-time schedule (recorded speech
SPEAK_AT_S into every CYCLE_S-second cycle, silence otherwise), ends with a zero-length binary frame and a close,
and reads what the agent sends back. A turn's latency is from the caller's last voiced frame sent to the first
playAudio (or binary audio) received after it. Prints one JSON line: latencies, turns_spoken, send_late_max,
send_late_p99 (how late frames went out, after each caller's first second), send_blocked (frames the socket
could not take at once: the server was not reading), cpu (this process's share of a core), errors (a sample)
and error_count.

The callers start STAGGER_S apart in all (default one 20 ms frame: every caller speaks at the same moment, the
worst case); a whole cycle spreads their speech over it, as calls answered at different times speak.

So that one core keeps hundreds of callers on time, the generator does little per frame: one scheduler greenlet
writes each caller's due frame (pre-built, already masked) to its socket without waiting, and one lean reader
per socket only parses frame headers (ws_wire.py).
"""
from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402
import heapq  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from array import array  # noqa: E402
from collections import deque  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import ws_wire  # noqa: E402
from ws_wire import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT  # noqa: E402

FRAME_S = 0.02
FRAME_BYTES = 640  # 20 ms of 16 kHz 16-bit mono
WARMUP_FRAMES = 50  # a caller's first second (the connect storm) is not counted in its lateness
EARLY_S = 0.0005  # frames due this soon go out in the same wake-up (at most this early)
CLOSE_WAIT_S = 5.0  # after our close, how long the server has to close back


class Clip:
    """Every frame a caller can send, built and masked once.

    RFC 6455 wants a fresh, unpredictable mask key per client frame so that a hostile script in a browser cannot
    choose the bytes an intermediary proxy sees. Here there is no proxy and no untrusted script, and the server
    unmasks whatever key a frame carries, so reusing a few fixed keys changes nothing it sees except the key
    values, and saves a Python XOR of 640 bytes per frame (what kept the old generator from keeping time)."""

    KEYS = 4

    def __init__(self, speech: bytes):
        keys = [os.urandom(4) for _ in range(self.KEYS)]
        chunks = [speech[i:i + FRAME_BYTES] for i in range(0, len(speech) - FRAME_BYTES + 1, FRAME_BYTES)]
        self.speech = [[ws_wire.frame(OP_BINARY, c, k) for c in chunks] for k in keys]
        self.silence = [ws_wire.frame(OP_BINARY, bytes(FRAME_BYTES), k) for k in keys]
        self.frames = len(chunks)


class Caller:
    def __init__(self, index: int, url: str, clip: Clip, seconds: float, cycle_s: float, speak_at_s: float):
        self.url = url
        self.speech, self.silence = clip.speech[index % clip.KEYS], clip.silence[index % clip.KEYS]
        self.speech_frames = clip.frames
        self.cycle_frames, self.speak_at = round(cycle_s / FRAME_S), round(speak_at_s / FRAME_S)
        self.total = round(seconds / FRAME_S)
        self.sock = None
        self.start = 0.0
        self.n = 0  # the next frame to send
        self.last_voiced_at: float | None = None
        self.latencies: list[float] = []
        self.turns_spoken = 0
        self.errors: list[str] = []
        self.backlog: deque[tuple[bytes, float | None]] = deque()  # what the socket did not take yet
        self.blocked = 0
        self.finished = False  # after our last frame, a closing socket is not an error
        self.dead = False  # no more sending: the stream is over
        self.done = gevent.event.Event()
        self.reader: gevent.Greenlet | None = None

    # ----- connecting -----------------------------------------------------------------------------------------
    def connect(self, scheduler: "Scheduler") -> None:
        try:
            self.sock, rest = ws_wire.connect(self.url)
            self.sock.settimeout(None)
            call_id = self.url.split("/audio/")[1].split("?")[0]
            self.sock.sendall(ws_wire.frame(OP_TEXT, json.dumps({"callId": call_id, "sampleRate": 16000}).encode()))
        except Exception as exc:  # noqa: BLE001 - a refused caller is a result, reported
            self.errors.append(f"connect: {exc}")
            self._end()
            return
        self.reader = gevent.spawn(self._read, rest)
        self.start = time.monotonic()
        scheduler.add(self)

    # ----- sending (called by the scheduler) ------------------------------------------------------------------
    def send_due(self, due: float, late: array) -> bool:
        """Write frame self.n (due at `due`) without waiting; False when this caller sends no more."""
        if self.dead:
            return False
        n = self.n
        k = n % self.cycle_frames - self.speak_at
        self._write(self.speech[k] if 0 <= k < self.speech_frames else self.silence, due, late if n >= WARMUP_FRAMES
                    else None)
        if k == self.speech_frames - 1:
            self.last_voiced_at = time.monotonic()
            self.turns_spoken += 1
        self.n = n + 1
        if self.n >= self.total and not self.dead:
            self.finished = True
            self._write(ws_wire.frame(OP_BINARY, b"") + ws_wire.close_frame(), None, None)
            gevent.spawn(self._await_close)
        return self.n < self.total and not self.dead

    def _write(self, data: bytes, due: float | None, late: array | None) -> None:
        if self.backlog:
            self.backlog.append((data, due))
            self.blocked += 1
            return
        try:
            sent = self.sock.send(data, 0, 0.0)  # gevent: timeout 0 raises instead of parking the scheduler
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._send_failed(exc)
            return
        if sent == len(data):
            if late is not None:
                late.append(time.monotonic() - due)
            return
        self.blocked += 1
        self.backlog.append((data[sent:], due))
        gevent.spawn(self._flush, late)

    def _flush(self, late: array | None) -> None:
        """The server stopped reading: this caller's frames wait here, in order, not the scheduler."""
        while self.backlog and not self.dead:
            data, due = self.backlog[0]
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self._send_failed(exc)
                return
            self.backlog.popleft()
            if late is not None and due is not None:
                late.append(time.monotonic() - due)

    def _send_failed(self, exc: OSError) -> None:
        if not self.dead and not self.finished:
            self.errors.append(f"send: {exc}")
        self.dead = True

    # ----- reading --------------------------------------------------------------------------------------------
    def _read(self, data: bytes) -> None:
        parser = ws_wire.ReplyParser()
        try:
            while True:
                if data:
                    now = time.monotonic()
                    for opcode, head in parser.feed(data):
                        if self._on_frame(opcode, head, now):
                            return
                try:
                    data = self.sock.recv(65536)
                except OSError as exc:
                    if not self.finished:
                        self.errors.append(f"recv: {exc}")
                    return
                if not data:
                    if not self.finished:
                        self.errors.append("recv: the server closed the socket")
                    return
        finally:
            self._end()

    def _on_frame(self, opcode: int, head: bytes, now: float) -> bool:
        """Time an agent reply; True when the stream is closed."""
        if opcode == OP_CLOSE:
            if not self.finished:
                code = int.from_bytes(head[:2], "big") if len(head) >= 2 else None
                self.errors.append(f"recv: the server closed the stream ({code})")
            return True
        if opcode == OP_PING:
            self._write(ws_wire.frame(OP_PONG, head), None, None)
        is_audio = opcode == OP_BINARY or (opcode == OP_TEXT and b'"playAudio"' in head)
        if is_audio and self.last_voiced_at is not None:
            self.latencies.append(now - self.last_voiced_at)
            self.last_voiced_at = None
        return False

    # ----- ending ---------------------------------------------------------------------------------------------
    def _await_close(self) -> None:
        if self.reader is not None:
            self.reader.join(timeout=CLOSE_WAIT_S)
            self.reader.kill(block=False)
        self._end()

    def _end(self) -> None:
        self.dead = True
        if self.sock is not None:
            self.sock.close()
        self.done.set()


class Scheduler:
    """One greenlet sends every caller's frames: a heap of (due, caller), woken for the next due frame."""

    def __init__(self):
        self.heap: list[tuple[float, int, Caller]] = []
        self.late = array("d")  # seconds each counted frame went out after it was due
        self.wake = gevent.event.Event()
        self._seq = 0  # ties in the heap never compare callers

    def add(self, caller: Caller) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (caller.start, self._seq, caller))
        self.wake.set()

    def run(self) -> None:
        heap, late = self.heap, self.late
        while True:
            wait = heap[0][0] - time.monotonic() if heap else None
            if wait is None or wait > EARLY_S:
                self.wake.clear()
                self.wake.wait(wait)  # a caller that connects meanwhile wakes us
                continue
            limit = time.monotonic() + EARLY_S
            while heap and heap[0][0] <= limit:
                due, seq, caller = heapq.heappop(heap)
                if caller.send_due(due, late):
                    heapq.heappush(heap, (caller.start + caller.n * FRAME_S, seq, caller))


def summary(callers: list[Caller], scheduler: Scheduler, cpu: float) -> dict:
    late = sorted(scheduler.late)
    errors = [e for c in callers for e in c.errors]
    return {"latencies": [x for c in callers for x in c.latencies],
            "turns_spoken": sum(c.turns_spoken for c in callers),
            "send_late_max": late[-1] if late else 0.0,
            "send_late_p99": late[min(len(late) - 1, int(0.99 * len(late)))] if late else 0.0,
            "send_blocked": sum(c.blocked for c in callers), "cpu": cpu,
            "errors": errors[:10], "error_count": len(errors)}


def main() -> None:
    urls_path, speech_path, seconds, cycle_s, speak_at_s = sys.argv[1:6]
    stagger_s = float(sys.argv[6]) if len(sys.argv) > 6 else FRAME_S
    with open(urls_path) as f:
        urls = json.load(f)  # one per call, each with its own token
    with open(speech_path, "rb") as f:
        clip = Clip(f.read())
    callers = [Caller(i, url, clip, float(seconds), float(cycle_s), float(speak_at_s)) for i, url in enumerate(urls)]
    scheduler = Scheduler()
    gc.freeze()  # what exists now lives all run: the collector need not walk it again (its pauses delay frames)
    cpu0, wall0 = time.process_time(), time.monotonic()
    sending = gevent.spawn(scheduler.run)
    for i, caller in enumerate(callers):  # staggered: calls are not answered in the same millisecond
        gevent.spawn_later(i * stagger_s / max(1, len(callers)), caller.connect, scheduler)
    for caller in callers:
        caller.done.wait()
    sending.kill()
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    print(json.dumps(summary(callers, scheduler, cpu)))


if __name__ == "__main__":
    main()
