"""Readiness with telephony configured: ok only while a FreeSWITCH node is connected (issue 12, defect 6)."""
from api import create_app

from .conftest import wait_for


def test_health_is_degraded_naming_freeswitch_while_every_node_is_down(sim, controller, telephony_config):
    client = create_app(telephony_config, call_control=controller).test_client()
    up = client.get("/health")
    assert up.status_code == 200, up.get_json()
    body = up.get_json()
    assert body["status"] == "ok" and "down" not in body
    assert [node["alive"] for node in body["freeswitch"]] == [True]

    sim.stop()  # the only node goes away
    down = wait_for(lambda: (r := client.get("/health")).status_code == 503 and r, timeout=30)
    body = down.get_json()
    assert (body["status"], body["database"], body["down"]) == ("degraded", "ok", ["freeswitch"])
    assert [node["alive"] for node in body["freeswitch"]] == [False]
    assert client.get("/health/live").status_code == 200  # the process itself is fine


def test_health_without_a_call_control_to_ask_is_not_ok(db, telephony_config):
    """Telephony configured but nothing in this process can say whether a node is up: not ready."""
    response = create_app(telephony_config).test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["down"] == ["freeswitch"]
