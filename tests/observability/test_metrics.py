"""GET /metrics: who may scrape, the state gauges read from the database, turn latency histograms on a scripted
timeline, and the multiprocess mode several API workers share."""
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from api import create_app
from config import ConfigError, load_config
from models import Call, Organization, WebhookDelivery
from observability.metrics import MULTIPROC_ENV, observe_turn, provider_labels, use_multiprocess_dir
from pipeline.clock import VirtualClock
from pipeline.fakes import CallScript, EnergyVAD, FakeLLM, FakeSTT, FakeTTS, Timeline, say
from pipeline.session import Session, SessionCallbacks, SessionConfig
from webhooks import enqueue

from .metrics_helpers import scrape, value

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-token-0123456789"


class Nodes:
    """Call control as the health check sees it: one node up, one down."""

    def health(self):
        return [{"node": "fs1:8021", "alive": True, "sessions": 2}, {"node": "fs2:8021", "alive": False}]


def app_with(config_env, call_control=None, **overrides):
    return create_app(load_config(config_env, **overrides), call_control=call_control).test_client()


def test_without_a_token_only_allowed_networks_are_answered(db):
    client = app_with({})
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1: loopback is the default
    far = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert far.status_code == 403 and "METRICS_ALLOW_FROM" in far.get_json()["error"]["message"]
    office = app_with({"METRICS_ALLOW_FROM": "10.1.0.0/16"})
    assert office.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert office.get("/metrics").status_code == 403  # the list replaces loopback
    assert app_with({"METRICS_ALLOW_FROM": ""}).get("/metrics").status_code == 403  # nobody


def test_with_a_token_every_scrape_must_carry_it(db):
    client = app_with({"METRICS_TOKEN": TOKEN})
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    far = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=far).status_code == 200


def test_bad_metrics_settings_are_refused_at_start(tmp_path):
    with pytest.raises(ConfigError, match="METRICS_TOKEN: 16 to 256"):
        load_config({"METRICS_TOKEN": "short"})
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        load_config({"METRICS_TOKEN": "has a space in it 0123456789"})
    with pytest.raises(ConfigError, match="METRICS_ALLOW_FROM: 'intranet' is not a network"):
        load_config({"METRICS_ALLOW_FROM": "10.0.0.0/8,intranet"})
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR: must be an existing directory"):
        load_config({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")})
    assert load_config({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).prometheus_multiproc_dir == str(tmp_path)


def test_state_gauges_are_read_from_the_database_and_call_control_at_scrape(db, org):
    other = Organization.create(name="Other", minutes_included=10, webhook_url="http://127.0.0.1:9/hook")
    for status, node, owner in [("queued", None, org), ("queued", None, other), ("scheduled", None, org),
                                ("in-progress", "fs1:8021", org), ("ringing", "fs1:8021", org),
                                ("calling", "fs1:8021", other), ("completed", "fs1:8021", org)]:
        Call.create(organization=owner, direction="outbound", to_number="+14155550123", status=status, node=node)
    for _ in range(3):
        enqueue(org, "call.ended", {"x": 1})
    WebhookDelivery.update(status="delivered").where(WebhookDelivery.id == enqueue(org, "call.ended", {})).execute()
    text = scrape(app_with({}, call_control=Nodes()))
    assert value(text, "voxbridge_active_calls", node="fs1:8021", organization=org.id) == 2
    assert value(text, "voxbridge_active_calls", node="fs1:8021", organization=other.id) == 1
    assert value(text, "voxbridge_queue_depth", status="queued") == 2
    assert value(text, "voxbridge_queue_depth", status="scheduled") == 1
    assert value(text, "voxbridge_webhook_backlog") == 3
    assert value(text, "voxbridge_esl_node_up", node="fs1:8021") == 1
    assert value(text, "voxbridge_esl_node_up", node="fs2:8021") == 0
    assert org.name not in text and org.webhook_secret not in text  # ids only, never names or secrets
    # The event metrics are listed before anything happened.
    assert "voxbridge_turn_latency_seconds" in text and "voxbridge_dial_attempts_total" in text


def test_turn_latency_histograms_hold_the_scripted_latencies_by_provider(db):
    """A scripted call on a virtual clock: the histogram gets exactly the fakes' latencies, under their names."""
    clock = VirtualClock()
    stt, llm = FakeSTT(clock, latency=0.13), FakeLLM(clock, [say("Sure.")], latency=0.27)
    tts = FakeTTS(clock, latency=0.09)
    tts.name = f"tts-{uuid.uuid4().hex[:8]}"  # labels of this test only: the process's counters are shared
    labels = provider_labels(stt, llm, tts)
    assert labels == {"stt": "FakeSTT", "llm": "fake-llm", "tts": tts.name}
    timeline = Timeline(clock, CallScript().say(2.0, "a table please", duration=1.0), stt)
    callbacks = SessionCallbacks(on_turn=lambda turn: observe_turn(turn.latency, labels))
    session = Session(SessionConfig(greeting="Hello.", reprompt_after=30.0, end_silence_ms=600), stt, llm, tts,
                      timeline.sink, callbacks, clock=clock, vad=EnergyVAD())
    timeline.session = session
    session.start()
    timeline.run(6.0)
    text = scrape(app_with({}))

    def observed(component, what="sum"):
        return value(text, f"voxbridge_turn_latency_seconds_{what}", component=component, **labels)

    assert observed("llm_first_token", "count") == 1 and observed("llm_first_token") == pytest.approx(0.27)
    assert observed("tts_first_audio", "count") == 2  # the greeting and the reply
    assert observed("tts_first_audio") == pytest.approx(0.18)
    assert observed("eou") == pytest.approx(0.6) and observed("stt_final") == pytest.approx(0.73)
    assert observed("total", "count") == 1 and observed("total") == pytest.approx(0.6 + 0.13 + 0.27 + 0.09)
    assert value(text, "voxbridge_turn_latency_seconds_bucket", component="total", le="1.5", **labels) == 1
    assert value(text, "voxbridge_turn_latency_seconds_bucket", component="total", le="1.0", **labels) == 0


WRITER = textwrap.dedent("""
    import sys
    from observability.metrics import count_dial, count_webhook_failure, observe_turn
    for _ in range(int(sys.argv[1])):
        count_dial("ok")
    count_webhook_failure(gave_up=True)
    observe_turn({"total_ms": float(sys.argv[2])}, {"stt": "deepgram", "llm": "openai", "tts": "elevenlabs"})
""")


def test_multiprocess_mode_adds_up_what_two_processes_wrote(db, tmp_path, monkeypatch):
    """Two processes (as API_WORKERS forks) write to PROMETHEUS_MULTIPROC_DIR; a scrape anywhere sums them."""
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    for count, total_ms in ((3, 400), (4, 1200)):
        subprocess.run([sys.executable, "-c", WRITER, str(count), str(total_ms)], env=env, cwd=ROOT, check=True,
                       timeout=60)
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file per process and kind
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    text = scrape(app_with({}))
    assert value(text, "voxbridge_dial_attempts_total", result="ok") == 7
    assert value(text, "voxbridge_webhook_failures_total", outcome="gave_up") == 2
    providers = {"stt": "deepgram", "llm": "openai", "tts": "elevenlabs"}
    assert value(text, "voxbridge_turn_latency_seconds_count", component="total", **providers) == 2
    assert value(text, "voxbridge_turn_latency_seconds_sum", component="total", **providers) == pytest.approx(1.6)
    # serve empties the directory before the workers start: an earlier run's counts are not added
    monkeypatch.delenv(MULTIPROC_ENV)
    with pytest.raises(RuntimeError, match="imported before PROMETHEUS_MULTIPROC_DIR"):
        use_multiprocess_dir(str(tmp_path), 2)  # this test process already measures in memory
    assert use_multiprocess_dir("", 1) is None  # one process, no directory asked for: in memory


def test_serve_empties_the_directory_before_the_workers_start(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old run")
    (tmp_path / "keep.txt").write_text("not ours")
    script = textwrap.dedent(f"""
        import os
        from observability.metrics import use_multiprocess_dir
        assert use_multiprocess_dir({str(tmp_path)!r}, 2) == {str(tmp_path)!r}
        assert os.environ["{MULTIPROC_ENV}"] == {str(tmp_path)!r}
        import prometheus_client.values
        assert "MultiProcess" in prometheus_client.values.ValueClass.__qualname__
        private = use_multiprocess_dir("", 2)
        assert private and os.path.isdir(private) and private != {str(tmp_path)!r}
        os.rmdir(private)
    """)
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, check=True,
                   timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_database_outage_is_reported_and_the_rest_still_scraped(db, monkeypatch):
    import peewee

    from observability.metrics import StateCollector

    def unreachable(self, family):
        raise peewee.OperationalError("could not connect to server")

    text = scrape(app_with({}, call_control=Nodes()))
    assert value(text, "voxbridge_database_up") == 1
    monkeypatch.setattr(StateCollector, "_from_database", unreachable)
    text = scrape(app_with({}, call_control=Nodes()))
    assert value(text, "voxbridge_database_up") == 0
    assert value(text, "voxbridge_esl_node_up", node="fs1:8021") == 1 and "voxbridge_queue_depth" not in text
    assert "voxbridge_dial_attempts_total" in text
