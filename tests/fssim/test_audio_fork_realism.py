"""The simulator's mod_audio_fork against what the real one sent for far-end speech over a SIP/PCMU call
(tests/data/freeswitch/captures/audio-fork-real-speech-*; README there, "Measured facts of the real stream"):
pacing (no frames while the far end sends no RTP), G.711 levels and digital-zero silence, band-limited 16 kHz.

Both RTP behaviours of a far end run at once in one test, on a short WAV (1 s of silence, 1.6 s of the captured
sentence, 1 s of silence) so the real-time streams cost ~4 s together.
"""
import base64
import json
import threading
import time
import wave

import gevent
import numpy as np
import pytest
from websockets.sync.server import serve

from fssim import Rule
from fssim.g711 import pcmu_round_trip

SILENCE_S, SPEECH_S = 1.0, 1.6


def dbfs(frame: bytes) -> float:
    samples = np.frombuffer(frame, "<i2").astype(np.float64)
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20 * np.log10(rms / 32768) if rms else -200.0


def above_4k_db(pcm: bytes) -> float:
    """Energy above 4 kHz relative to the total, of 16 kHz audio."""
    spectrum = np.abs(np.fft.rfft(np.frombuffer(pcm, "<i2").astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(pcm) // 2, 1 / 16000)
    return float(10 * np.log10(spectrum[freqs > 4000].sum() / spectrum.sum()))


def real_capture(captures_dir, name):
    rows = [json.loads(line) for line in (captures_dir / f"{name}.jsonl").read_text().splitlines()]
    return [(r["t"], base64.b64decode(r["data"])) for r in rows if r["type"] == "binary"]


def far_end_wav(captures_dir, path):
    with wave.open(str(captures_dir / "speech-sentence.wav"), "rb") as w:
        assert w.getframerate() == 8000
        speech = w.readframes(int(SPEECH_S * 8000))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(int(SILENCE_S * 16000)) + speech + bytes(int(SILENCE_S * 16000)))
    return speech


@pytest.fixture
def recorder():
    """A WebSocket server recording (seconds since the connection, message) per stream path."""
    streams: dict[str, list] = {}

    def handler(ws):
        start, rows = time.monotonic(), streams.setdefault(ws.request.path, [])
        for message in ws:
            rows.append((time.monotonic() - start, message))

    server = serve(handler, "127.0.0.1", 0, subprotocols=["audio.drachtio.org"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}", streams
    server.shutdown()


def test_fork_pacing_levels_and_spectrum_match_the_real_module(sim, esl, recorder, captures_dir, tmp_path):
    base, streams = recorder
    speech = far_end_wav(captures_dir, tmp_path / "far.wav")
    sim.rules.rules[:0] = [Rule("^71", audio=str(tmp_path / "far.wav"), rtp="suppress"),
                           Rule("^72", audio=str(tmp_path / "far.wav"), rtp="continuous")]
    calls = {}
    for number, path, rate in (("7100", "/suppress", "16k"), ("7200", "/continuous", "8k")):
        uuid = esl.api(f"originate sofia/external/{number}@127.0.0.1 &park()")[4:-1]
        assert esl.api(f"uuid_audio_fork {uuid} start {base}{path} mono {rate} {{\"k\":\"v\"}}") == "+OK Success\n"
        calls[path] = uuid
    total = 2 * SILENCE_S + SPEECH_S
    with gevent.Timeout(30):  # until the continuous stream has run past the whole WAV (both started together)
        while len(streams.get("/continuous", [])) < 2 or streams["/continuous"][-1][0] < total + 0.5:
            gevent.sleep(0.1)
    for uuid in calls.values():
        esl.api(f"uuid_kill {uuid}")

    suppressed, continuous = streams["/suppress"], streams["/continuous"]
    for rows, size in ((suppressed, 640), (continuous, 320)):
        assert rows[0][1] == '{"k":"v"}'  # metadata first, the only text
        assert all(isinstance(m, bytes) and len(m) == size for _, m in rows[1:])
        assert rows[1][0] - rows[0][0] >= 0.015  # one packet time after the metadata, like the real 19-41 ms

    # Pacing. Real delayed-nortp: nothing at all while the far end sent no RTP; real rtpsilence: back to back.
    real_nortp = real_capture(captures_dir, "audio-fork-real-speech-delayed-nortp-16k")
    assert max(b[0] - a[0] for a, b in zip(real_nortp, real_nortp[1:], strict=False)) > 4.5
    times = [t for t, _ in suppressed[1:]]
    assert times[0] > SILENCE_S - 0.3  # the leading silence sent nothing (a 200 ms hangover at most)
    assert len(times) <= (SPEECH_S + 0.25) * 50 + 2  # the speech (and hangover), not 50 frames/s throughout
    assert max(t for t in times) < SILENCE_S + SPEECH_S + 1.0  # and nothing after it: the call is still up
    assert len(continuous) - 1 >= total * 50 * 0.9  # every 20 ms, silence included
    # Levels: μ-law keeps the speech level (real: -19.8..-20.3 dBFS) and makes silence digital zero.
    real_level = np.mean([dbfs(f) for _, f in real_nortp if dbfs(f) > -50][:80])
    sim_level = np.mean([dbfs(f) for _, f in suppressed[1:] if dbfs(f) > -50][:80])
    assert abs(sim_level - real_level) < 1.5
    assert all(f == bytes(320) for _, f in continuous[1:40])  # the leading second: exact zeros, no dither
    # 8 kHz: the G.711 round trip of the far end's audio, frame for frame.
    sent8k = b"".join(f for _, f in continuous[1:])
    start = int(SILENCE_S * 16000)
    assert sent8k[start:start + len(speech)] == pcmu_round_trip(np.frombuffer(speech, "<i2")).tobytes()
    # 16 kHz: band-limited like the real module's resampler (real: -76 dB above 4 kHz; linear was -24.5 dB).
    real_16k = b"".join(f for _, f in real_nortp)
    assert above_4k_db(real_16k) < -60
    assert above_4k_db(b"".join(f for _, f in suppressed[1:])) < -60


def test_the_g711_round_trip_is_the_real_switchs(captures_dir):
    """The real 8k fork of speech-immediate.wav starts at the WAV's first sample (README): compare sample by sample."""
    with wave.open(str(captures_dir / "speech-immediate.wav"), "rb") as w:
        wav = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    real = np.frombuffer(b"".join(f for _, f in real_capture(captures_dir, "audio-fork-real-speech-immediate-8k")),
                         "<i2")
    n = min(len(wav), len(real))
    assert np.mean(pcmu_round_trip(wav[:n]) == real[:n]) > 0.98
    assert pcmu_round_trip(np.array([0, 1, -1, 2, -2], np.int16)).tolist() == [0, 0, 0, 0, 0]  # dither -> zero
