"""The whole-path pipeline benchmark's callers: N mod_audio_fork-shaped WebSocket clients in this process.

    python bench/ws_callers.py URLS_JSON SPEECH_PCM SECONDS CYCLE_S SPEAK_AT_S [STAGGER_S]

Run by bench_pipeline_ws.py in its own process (on its own core), as FreeSWITCH is. Each client connects
as mod_audio_fork does (subprotocol audio.drachtio.org, metadata first), sends 20 ms frames of 16 kHz PCM on
a real-time schedule (recorded speech SPEAK_AT_S into every CYCLE_S-second cycle, silence otherwise),
and reads what the agent sends back. A turn's latency is from the caller's last voiced frame sent to the
first playAudio (or binary audio) received after it. Prints one JSON line.

The callers start STAGGER_S apart in all (default one 20 ms frame: every caller speaks at the same moment, the
worst case); a whole cycle spreads their speech over it, as calls answered at different times speak.
"""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402

FRAME_S = 0.02
FRAME_BYTES = 640  # 20 ms of 16 kHz 16-bit mono


class Caller:
    def __init__(self, url: str, speech: bytes, seconds: float, cycle_s: float, speak_at_s: float):
        self.url, self.speech, self.seconds = url, speech, seconds
        self.cycle_frames, self.speak_at = round(cycle_s / FRAME_S), round(speak_at_s / FRAME_S)
        self.speech_frames = len(speech) // FRAME_BYTES
        self.last_voiced_at: float | None = None
        self.latencies: list[float] = []
        self.send_late: list[float] = []
        self.turns_spoken = 0
        self.errors: list[str] = []
        self.finished = False  # after our last frame, a closing socket is not an error

    def run(self) -> None:
        try:
            ws = websocket.create_connection(self.url, subprotocols=["audio.drachtio.org"], timeout=30)
        except Exception as exc:  # noqa: BLE001 - a refused caller is a result, reported
            self.errors.append(f"connect: {exc}")
            return
        call_id = self.url.split("/audio/")[1].split("?")[0]
        ws.send(json.dumps({"callId": call_id, "sampleRate": 16000}))
        reader = gevent.spawn(self._read, ws)
        try:
            self._send(ws)
        finally:
            self.finished = True
            try:
                ws.send_binary(b"")
                ws.close()
            except Exception:  # noqa: BLE001, S110 - the server may already have closed it
                pass
            reader.kill()

    def _frame(self, n: int) -> bytes:
        k = n % self.cycle_frames - self.speak_at
        if 0 <= k < self.speech_frames:
            return self.speech[k * FRAME_BYTES:(k + 1) * FRAME_BYTES]
        return bytes(FRAME_BYTES)

    def _send(self, ws) -> None:
        start = time.monotonic()
        total = round(self.seconds / FRAME_S)
        for n in range(total):
            due = start + n * FRAME_S
            wait = due - time.monotonic()
            if wait > 0:
                gevent.sleep(wait)
            self.send_late.append(time.monotonic() - due)
            ws.send_binary(self._frame(n))
            if n % self.cycle_frames - self.speak_at == self.speech_frames - 1:
                self.last_voiced_at = time.monotonic()
                self.turns_spoken += 1

    def _read(self, ws) -> None:
        while True:
            try:
                opcode, data = ws.recv_data()
            except Exception as exc:  # noqa: BLE001
                if not self.finished:
                    self.errors.append(f"recv: {exc}")
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return
            is_audio = opcode == websocket.ABNF.OPCODE_BINARY or b'"playAudio"' in data[:64]
            if is_audio and self.last_voiced_at is not None:
                self.latencies.append(time.monotonic() - self.last_voiced_at)
                self.last_voiced_at = None


def main() -> None:
    urls_path, speech_path, seconds, cycle_s, speak_at_s = sys.argv[1:6]
    stagger_s = float(sys.argv[6]) if len(sys.argv) > 6 else FRAME_S
    with open(urls_path) as f:
        urls = json.load(f)  # one per call, each with its own token
    with open(speech_path, "rb") as f:
        speech = f.read()
    callers = [Caller(url, speech, float(seconds), float(cycle_s), float(speak_at_s)) for url in urls]
    workers = []
    for caller in callers:  # staggered: calls are not answered in the same millisecond
        workers.append(gevent.spawn(caller.run))
        gevent.sleep(stagger_s / max(1, len(callers)))
    gevent.joinall(workers)
    late = sorted(x for c in callers for x in c.send_late[50:])
    print(json.dumps({"latencies": [x for c in callers for x in c.latencies],
                      "turns_spoken": sum(c.turns_spoken for c in callers),
                      "send_late_max": late[-1] if late else 0.0,
                      "errors": [e for c in callers for e in c.errors][:10],
                      "error_count": sum(len(c.errors) for c in callers)}))


if __name__ == "__main__":
    main()
