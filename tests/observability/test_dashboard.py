"""deploy/grafana/voxbridge.json stays in step with what /metrics exposes (a renamed metric breaks this test)."""
import json
import re
from pathlib import Path

from observability.metrics import count_dial, count_tts_cache, count_webhook_failure, observe_turn, set_stt_pool_state

from .metrics_helpers import names, scrape

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "voxbridge.json"


def test_every_metric_the_dashboard_queries_is_exposed_and_the_asked_panels_exist(client):
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    # One of each event, so the labelled histogram and counters have samples to show.
    observe_turn({"total_ms": 900.0, "llm_first_token_ms": 300.0}, {"stt": "s", "llm": "l", "tts": "t"})
    count_dial("ok")
    count_webhook_failure(gave_up=False)
    count_tts_cache("espeak", hit=True)
    set_stt_pool_state(ready=1, starting=0, open_streams=0, queued_audio_s=0.0)
    exposed = names(scrape(client))
    queried = {name for expr in exprs for name in re.findall(r"\bvoxbridge_[a-z_]+", expr)}
    assert queried and queried <= exposed, queried - exposed
    components = set(re.findall(r'component="([a-z_]+)"', " ".join(exprs)))
    assert {"total", "llm_first_token", "stt_final", "tts_first_audio", "eou", "delivery"} <= components
    titles = " | ".join(p["title"] for p in panels)
    for wanted in ("by LLM", "by STT", "by TTS", "Active calls", "Dial rate", "Queue depth", "Webhook backlog",
                   "Offline STT backlog", "TTS cache hit ratio"):
        assert wanted in titles
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)  # importable into any Grafana
