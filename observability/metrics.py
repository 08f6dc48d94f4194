"""Every Prometheus metric VoxBridge exposes, defined here and nowhere else (docs/observability.md lists them).

Two kinds:
  - events counted where they happen (turn latencies, originates, webhook failures): prometheus_client
    histograms and counters. They happen in the first process (it dispatches, delivers webhooks, owns the
    FreeSWITCH connections and the voice pipeline); with API_WORKERS > 1 a scrape may land on any worker, so the
    processes share them through files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode).
  - state read when scraped (active calls, queue depth, webhook backlog, FreeSWITCH nodes): one cheap query each
    in the scraping process, so every worker answers the same truth and nothing drifts after a crash.

prometheus_client is imported on first use, not at import time: it decides between in-memory and multiprocess
values when it is imported, and app.py serve sets PROMETHEUS_MULTIPROC_DIR (from .env, or a private directory)
before anything is measured.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from peewee import fn

from models import LIVE_STATUSES, PENDING_STATUSES, Call, WebhookDelivery, database
from models.webhook import PENDING

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Turn latency buckets (seconds): a phone conversation feels slow past ~1 s; dead air is apologised for at 5 s.
# 50 ms apart from 0.2 to 0.6 s, where good turns fall: a p50 read from the buckets is within ~10% there.
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
                   8.0, 13.0)
# pipeline/latency.py component (ms) -> the histogram's component label
COMPONENT_LABELS = {"eou_ms": "eou", "stt_final_ms": "stt_final", "llm_first_token_ms": "llm_first_token",
                    "tts_first_audio_ms": "tts_first_audio", "delivery_ms": "delivery", "total_ms": "total"}
DIAL_RESULTS = ("ok", "failed", "not_dialed", "deferred")
WEBHOOK_FAILURES = ("retrying", "gave_up")


class Metrics:
    """The event metrics. Built once per process by metrics()."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = REGISTRY if registry is None else registry
        self.turn_latency = Histogram(
            "voxbridge_turn_latency_seconds",
            "Agent turn latency by component (pipeline/latency.py) and the call's providers",
            ["component", "stt", "llm", "tts"], buckets=LATENCY_BUCKETS, registry=registry)
        self.dial_attempts = Counter(
            "voxbridge_dial_attempts_total",
            "Outbound dial attempts by result: ok (+OK), failed (-ERR), not_dialed (refused before sending), "
            "deferred (back to the queue: limits or no node)", ["result"], registry=registry)
        self.webhook_failures = Counter(
            "voxbridge_webhook_failures_total",
            "Failed webhook delivery attempts: retrying (another attempt is due) or gave_up (final)",
            ["outcome"], registry=registry)
        self.tts_cache = Counter(
            "voxbridge_tts_cache_lookups_total",
            "Sentences an offline TTS looked up in the process's synthesized-speech cache (TTS_CACHE_MB), by "
            "provider and result: hit (no synthesis) or miss", ["provider", "result"], registry=registry)
        self._define_stt_pool(registry, Counter, Gauge)

    def _define_stt_pool(self, registry: Any, Counter: Any, Gauge: Any) -> None:  # noqa: N803 - classes
        """The offline recognizer pool (pipeline/providers/pocketsphinx_pool.py). Its gauges are set by the
        process that holds the pool; "livesum" adds up the live processes' pools (API_WORKERS > 1)."""
        self.stt_pool_streams = Counter(
            "voxbridge_stt_pool_streams_total", "Recognizer streams opened on the offline STT pool (one per call "
            "leg heard)", registry=registry)
        self.stt_pool_overflows = Counter(
            "voxbridge_stt_pool_overflows_total", "Times a stream's queued audio passed its bound because its "
            "worker was behind (audio was then dropped, quiet frames first)", registry=registry)
        self.stt_pool_dropped = Counter(
            "voxbridge_stt_pool_dropped_audio_seconds_total", "Seconds of caller audio the pool dropped because "
            "a worker was behind (CPU overload)", registry=registry)
        self.stt_pool_restarts = Counter(
            "voxbridge_stt_pool_worker_restarts_total", "Pool worker processes that exited unexpectedly and were "
            "restarted (their open utterances were lost)", registry=registry)
        self.stt_pool_workers = Gauge(
            "voxbridge_stt_pool_workers", "Pool worker processes, by state: ready (model loaded, taking streams) "
            "or starting (loading or restarting)", ["state"], multiprocess_mode="livesum", registry=registry)
        self.stt_pool_open_streams = Gauge(
            "voxbridge_stt_pool_open_streams", "Recognizer streams open on the pool now",
            multiprocess_mode="livesum", registry=registry)
        self.stt_pool_queued_audio = Gauge(
            "voxbridge_stt_pool_queued_audio_seconds", "Caller audio waiting for a worker, summed over the "
            "streams (rising: the workers are behind; the queue depth of the offline STT)",
            multiprocess_mode="livesum", registry=registry)


_metrics: Metrics | None = None


def metrics() -> Metrics:
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def guarded(fn: Callable[..., None]) -> Callable[..., None]:
    """Measuring must never break what is measured: a metric error is logged, not raised."""
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("metric update failed")

    return run


def _provider_label(provider: Any) -> str:
    """A provider's name for a label: its own `name` (a fallback wrapper is named by its primary), bounded."""
    provider = getattr(provider, "primary", provider)
    name = getattr(provider, "name", None) or type(provider).__name__
    return str(name)[:40]


def provider_labels(stt: Any, llm: Any, tts: Any) -> dict[str, str]:
    return {"stt": _provider_label(stt), "llm": _provider_label(llm), "tts": _provider_label(tts)}


@guarded
def observe_turn(latency: Mapping[str, float | None] | None, providers: Mapping[str, str]) -> None:
    """One agent turn's breakdown (ms) into the histogram, labelled with the call's provider names."""
    if not latency:
        return
    histogram = metrics().turn_latency
    for key, component in COMPONENT_LABELS.items():
        value = latency.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            histogram.labels(component=component, **providers).observe(value / 1000.0)


@guarded
def count_dial(result: str) -> None:
    metrics().dial_attempts.labels(result=result if result in DIAL_RESULTS else "failed").inc()


@guarded
def count_webhook_failure(gave_up: bool) -> None:
    metrics().webhook_failures.labels(outcome="gave_up" if gave_up else "retrying").inc()


@guarded
def count_tts_cache(provider: str, hit: bool) -> None:
    metrics().tts_cache.labels(provider=str(provider)[:40], result="hit" if hit else "miss").inc()


@guarded
def count_stt_pool_stream() -> None:
    metrics().stt_pool_streams.inc()


@guarded
def count_stt_pool_overflow(dropped_s: float) -> None:
    metrics().stt_pool_overflows.inc()
    metrics().stt_pool_dropped.inc(max(0.0, dropped_s))


@guarded
def count_stt_pool_restart() -> None:
    metrics().stt_pool_restarts.inc()


@guarded
def set_stt_pool_state(ready: int, starting: int, open_streams: int, queued_audio_s: float) -> None:
    m = metrics()
    m.stt_pool_workers.labels(state="ready").set(ready)
    m.stt_pool_workers.labels(state="starting").set(starting)
    m.stt_pool_open_streams.set(open_streams)
    m.stt_pool_queued_audio.set(queued_audio_s)


# ----- state read at scrape time ---------------------------------------------------------------------------------
class StateCollector:
    """Gauges read from the database (and call control) on each scrape: one grouped query per gauge."""

    def __init__(self, call_control: Any = None) -> None:
        self.call_control = call_control

    def describe(self) -> list:
        return []  # collected fresh on every scrape; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            database.connect(reuse_if_open=True)
            families = list(self._from_database(GaugeMetricFamily))
        except Exception as exc:  # a database outage must not hide the event metrics and nodes from the scrape
            log.warning("metrics: database unreachable: %s", type(exc).__name__)
            families = []
        yield GaugeMetricFamily("voxbridge_database_up", "The scrape could read the database (1) or not (0)",
                                value=1 if families else 0)
        yield from families

        nodes = GaugeMetricFamily("voxbridge_esl_node_up", "FreeSWITCH node connected (1) or down (0), as call "
                                  "control sees it", labels=["node"])
        for node in self._nodes():
            nodes.add_metric([str(node.get("node", ""))[:200]], 1 if node.get("alive") else 0)
        yield nodes

    def _from_database(self, GaugeMetricFamily: Any) -> Iterator[Any]:  # noqa: N803 - the class, imported late
        active = GaugeMetricFamily("voxbridge_active_calls", "Live calls (calling, ringing, in progress) per "
                                   "FreeSWITCH node and organization id", labels=["node", "organization"])
        rows = (Call.select(Call.node, Call.organization, fn.COUNT(Call.id).alias("n"))
                .where(Call.status.in_(LIVE_STATUSES)).group_by(Call.node, Call.organization).tuples())
        for node, organization, count in rows:
            active.add_metric([node or "", organization or ""], count)
        yield active

        queue = GaugeMetricFamily("voxbridge_queue_depth", "Calls waiting to be dialed, by status",
                                  labels=["status"])
        counts = dict(Call.select(Call.status, fn.COUNT(Call.id)).where(Call.status.in_(PENDING_STATUSES))
                      .group_by(Call.status).tuples())
        for status in PENDING_STATUSES:
            queue.add_metric([status], counts.get(status, 0))
        yield queue

        backlog = WebhookDelivery.select().where(WebhookDelivery.status == PENDING).count()
        yield GaugeMetricFamily("voxbridge_webhook_backlog", "Webhook deliveries not yet delivered nor given up",
                                value=backlog)

    def _nodes(self) -> list[Mapping[str, Any]]:
        if self.call_control is None or not hasattr(self.call_control, "health"):
            return []
        try:
            nodes = self.call_control.health()
        except Exception as exc:  # a failing health() must not fail the scrape or the probe
            log.warning("metrics: call control unavailable: %s", exc)
            return []
        return [n for n in nodes if isinstance(n, Mapping)] if isinstance(nodes, list) else []


def exposition(call_control: Any = None) -> tuple[bytes, str]:
    """The text a scrape gets: the event metrics (every process's, in multiprocess mode) and the state gauges."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    metrics()  # defined even before the first event, so a scrape always lists them
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        events = CollectorRegistry()
        MultiProcessCollector(events, path=directory)
    else:
        events = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector(call_control))
    return generate_latest(events) + generate_latest(state), CONTENT_TYPE_LATEST


def use_multiprocess_dir(configured: str, workers: int) -> str | None:
    """Before serve forks: share the event metrics through `configured` (else, with several workers, a private
    directory), emptied of an earlier run's files, which would be added to this run's counts. Returns it."""
    directory = configured or (tempfile.mkdtemp(prefix="voxbridge-metrics-") if workers > 1 else "")
    if not directory:
        return None
    loaded = sys.modules.get("prometheus_client.values")
    if loaded is not None and "MultiProcess" not in getattr(loaded.ValueClass, "__qualname__", ""):
        # Metrics already made in memory would never reach the files the other workers read.
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    os.environ[MULTIPROC_ENV] = directory
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))
    return directory
