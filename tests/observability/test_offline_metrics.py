"""The offline providers at GET /metrics: the recognizer pool's workers, streams, queued and dropped audio and
restarts, and the TTS cache's hits and misses; in one process, and summed over processes (API_WORKERS > 1).

Every check follows events (streams opened, audio sent before the writer could run, a worker killed and seen
restarted), never timing.
"""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import gevent
import pytest
from prometheus_client import REGISTRY

from observability.metrics import MULTIPROC_ENV
from pipeline.providers import pocketsphinx_pool
from pipeline.providers.pocketsphinx_pool import RecognizerPool
from pipeline.providers.pocketsphinx_recognizer import RecognizerOptions

from .metrics_helpers import scrape, value
from .test_metrics import app_with

ROOT = Path(__file__).resolve().parents[2]
SECOND = 32000  # bytes of 16 kHz linear16 audio


def counter(name):
    return REGISTRY.get_sample_value(name) or 0.0


def test_the_pools_state_and_events_are_scraped(db):
    before = {name: counter(name) for name in ("voxbridge_stt_pool_streams_total",
                                               "voxbridge_stt_pool_overflows_total",
                                               "voxbridge_stt_pool_dropped_audio_seconds_total",
                                               "voxbridge_stt_pool_worker_restarts_total")}

    def added(name):
        return value(text, name) - before[name]

    # The gauges cover every pool of the process: another test's shared pool may still be up beside this one.
    # A gauge no pool of this process has set yet is absent from the scrape: it counts as 0 (this test may be
    # the first of its process to start a pool).
    text = scrape(app_with({}))
    base = {"ready": value(text, "voxbridge_stt_pool_workers", state="ready") or 0.0,
            "starting": value(text, "voxbridge_stt_pool_workers", state="starting") or 0.0,
            "streams": value(text, "voxbridge_stt_pool_open_streams") or 0.0,
            "queued": value(text, "voxbridge_stt_pool_queued_audio_seconds") or 0.0}
    pool = RecognizerPool(size=1, decoders=1, max_decoders=1, max_backlog_s=0.5).start()
    try:
        text = scrape(app_with({}))
        # Other pools of the process (another test's) may start or close meanwhile: this one's share is at least
        # there; the counters below are exact deltas.
        assert value(text, "voxbridge_stt_pool_workers", state="ready") >= 1

        calm, flooded = pool.open(RecognizerOptions()), pool.open(RecognizerOptions())
        # No yield between these sends and the scrape: the worker's writer has not taken a byte yet.
        for _ in range(20):
            calm.send(bytes(640))  # 0.4 s: under the 0.5 s bound
        for _ in range(100):
            flooded.send(bytes(640))  # 2 s: past the bound, thinned to half of it each time
        pool.publish()  # what the pool's periodic refresh does
        queued = (calm.queued_audio + flooded.queued_audio) / SECOND  # before the scrape, which may yield
        text = scrape(app_with({}))
        assert value(text, "voxbridge_stt_pool_open_streams") >= 2
        assert added("voxbridge_stt_pool_streams_total") == 2
        assert value(text, "voxbridge_stt_pool_queued_audio_seconds") >= queued - 1e-9
        assert queued >= 0.4 and flooded.dropped_bytes > 0
        assert added("voxbridge_stt_pool_overflows_total") == pool.stats.overflows > 0
        assert added("voxbridge_stt_pool_dropped_audio_seconds_total") == pytest.approx(flooded.dropped_bytes / SECOND)

        first = pool.pids()[0]
        os.kill(first, signal.SIGKILL)
        with gevent.Timeout(60, AssertionError("the worker was not restarted")):
            while not (pool.workers[0].ready.is_set() and pool.pids()[0] != first):
                gevent.sleep(0.05)
        text = scrape(app_with({}))
        assert added("voxbridge_stt_pool_worker_restarts_total") == 1
        assert value(text, "voxbridge_stt_pool_workers", state="ready") >= 1

        calm.close()
        flooded.close()
        assert value(scrape(app_with({})), "voxbridge_stt_pool_open_streams") <= base["streams"]
    finally:
        pool.close()
    text = scrape(app_with({}))
    assert value(text, "voxbridge_stt_pool_workers", state="ready") <= base["ready"]
    assert value(text, "voxbridge_stt_pool_queued_audio_seconds") <= base["queued"] + 1e-9


def test_the_pool_settings_refuse_an_unknown_search():
    with pytest.raises(ValueError, match="search must be one of"):
        pocketsphinx_pool.configure(search="widest")
    with pytest.raises(ValueError, match="size must be 0"):
        pocketsphinx_pool.configure(size=-1)


WRITER = textwrap.dedent("""
    import sys
    from observability.metrics import (count_stt_pool_overflow, count_stt_pool_restart, count_stt_pool_stream,
                                       count_tts_cache, set_stt_pool_state)
    ready, streams = int(sys.argv[1]), int(sys.argv[2])
    for _ in range(streams):
        count_stt_pool_stream()
    count_stt_pool_overflow(0.25)
    count_stt_pool_restart()
    count_tts_cache("espeak", hit=True)
    count_tts_cache("espeak", hit=False)
    set_stt_pool_state(ready, 1, streams, 0.5)
""")


def test_several_processes_pools_add_up(db, tmp_path, monkeypatch):
    """Each API worker holds its own pool: a scrape anywhere shows their sum (livesum gauges, shared counters)."""
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    for ready, streams in ((2, 3), (4, 5)):
        subprocess.run([sys.executable, "-c", WRITER, str(ready), str(streams)], env=env, cwd=ROOT, check=True,
                       timeout=60)
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    text = scrape(app_with({}))
    assert value(text, "voxbridge_stt_pool_workers", state="ready") == 6
    assert value(text, "voxbridge_stt_pool_workers", state="starting") == 2
    assert value(text, "voxbridge_stt_pool_open_streams") == 8
    assert value(text, "voxbridge_stt_pool_queued_audio_seconds") == 1.0
    assert value(text, "voxbridge_stt_pool_streams_total") == 8
    assert value(text, "voxbridge_stt_pool_overflows_total") == 2
    assert value(text, "voxbridge_stt_pool_dropped_audio_seconds_total") == 0.5
    assert value(text, "voxbridge_stt_pool_worker_restarts_total") == 2
    assert value(text, "voxbridge_tts_cache_lookups_total", provider="espeak", result="hit") == 2
    assert value(text, "voxbridge_tts_cache_lookups_total", provider="espeak", result="miss") == 2
