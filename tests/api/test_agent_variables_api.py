"""Agent variables through the API: placeholders checked at save, required ones at queue (per batch item)."""
import json

from models import Agent, Call


def send(client, method, path, auth, body):
    return client.open(path, method=method, data=json.dumps(body), headers=auth, content_type="application/json")


def error(response):
    body = response.get_json()
    return response.status_code, body["error"]["code"], body["error"]["field"]


def test_declared_and_built_in_placeholders_are_saved_with_the_time_zone(client, auth):
    created = send(client, "POST", "/v1/agents", auth, {
        "name": "Reminder", "direction": "outbound", "timezone": "Europe/Berlin",
        "greeting": "Hi {{name}}, this is {{ agent_name }} from {{organization_name}}.",
        "prompt": "Today is {{current_date}}. The order is {{order_id}}.",
        "settings": {"questions": [{"key": "ok", "text": "Is {{current_weekday}} fine, {{name}}?"}],
                     "closing": "Bye {{name}}."},
        "variables": {"name": {"default": "there", "description": "the callee's first name"},
                      "order_id": {"default": None}}})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["timezone"] == "Europe/Berlin"
    assert body["variables"] == {"name": {"default": "there", "description": "the callee's first name"},
                                 "order_id": {"default": None}}
    assert Agent.get_by_id(body["id"]).variables["order_id"] == {"default": None}


def test_an_unknown_placeholder_is_422_naming_the_field(client, auth):
    cases = [({"greeting": "Hi {{name}}"}, "greeting"), ({"prompt": "About {{order}}"}, "prompt"),
             ({"settings": {"questions": ["ok?", {"key": "b", "text": "{{x}}?"}]}}, "settings.questions[1].text"),
             ({"settings": {"closing": "Bye {{name}}"}}, "settings.closing")]
    for extra, field in cases:
        response = send(client, "POST", "/v1/agents", auth, {"name": "x", "direction": "outbound", **extra})
        assert error(response) == (422, "unknown_variable", field), extra
        assert "{{" in response.get_json()["error"]["message"]
    assert Agent.select().count() == 0


def test_a_patch_is_checked_against_the_declared_variables(client, auth):
    agent_id = send(client, "POST", "/v1/agents", auth, {
        "name": "x", "direction": "outbound", "greeting": "Hi {{name}}",
        "variables": {"name": {"default": "there"}}}).get_json()["id"]
    dropped = send(client, "PATCH", f"/v1/agents/{agent_id}", auth, {"variables": {}})
    assert error(dropped) == (422, "unknown_variable", "greeting")
    assert Agent.get_by_id(agent_id).variables == {"name": {"default": "there"}}


def test_bad_variables_and_time_zones_are_422(client, auth):
    cases = [({"variables": ["name"]}, "variables", "invalid_field"),
             ({"variables": {"9lives": {}}}, "variables", "invalid_field"),
             ({"variables": {"call_id": {"default": "x"}}}, "variables", "invalid_field"),
             ({"variables": {"name": {"default": {"a": 1}}}}, "variables", "invalid_field"),
             ({"variables": {"name": {"fallback": "x"}}}, "variables", "invalid_field"),
             ({"timezone": "Mars/Olympus"}, "timezone", "invalid_timezone"),
             ({"timezone": "../etc/passwd"}, "timezone", "invalid_timezone")]
    for extra, field, code in cases:
        response = send(client, "POST", "/v1/agents", auth, {"name": "x", "direction": "outbound", **extra})
        assert error(response) == (422, code, field), extra


def test_an_inbound_agent_needs_defaults_for_its_variables(client, auth):
    response = send(client, "POST", "/v1/agents", auth, {
        "name": "Desk", "direction": "inbound", "greeting": "Hi {{name}}", "variables": {"name": {}}})
    assert error(response) == (422, "missing_default", "variables")


def _agent(client, auth):
    return send(client, "POST", "/v1/agents", auth, {
        "name": "Reminder", "direction": "outbound", "greeting": "Hi {{name}}, about {{order_id}}.",
        "variables": {"name": {"default": "there"}, "order_id": {}}}).get_json()["id"]


def test_a_call_missing_a_required_variable_is_422_on_context(client, auth):
    agent_id = _agent(client, auth)
    for context in ({}, {"order_id": ""}, {"order_id": {"n": 1}}):
        response = send(client, "POST", "/v1/calls/outbound", auth,
                        {"to": "+14155550123", "agent_id": agent_id, "context": context})
        assert error(response) == (422, "missing_variable", "context"), context
        assert "order_id" in response.get_json()["error"]["message"]
    assert Call.select().count() == 0
    ok = send(client, "POST", "/v1/calls/outbound", auth,
              {"to": "+14155550123", "agent_id": agent_id, "context": {"order_id": 42}})
    assert ok.status_code == 201 and ok.get_json()["context"] == {"order_id": 42}


def test_a_batch_rejects_only_the_items_missing_a_required_variable(client, auth):
    agent_id = _agent(client, auth)
    calls = [{"to": "+14155550123", "agent_id": agent_id, "context": {"order_id": "A1", "name": "Ada"}},
             {"to": "+14155550124", "agent_id": agent_id, "context": {"name": "Bob"}},
             {"to": "+14155550125", "agent_id": agent_id, "context": {"order_id": "A3"}}]
    response = send(client, "POST", "/v1/calls/outbound/batch", auth, {"calls": calls})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r.get("error", {}).get("code") for r in results] == [None, "missing_variable", None]
    assert results[1]["error"]["field"] == "context"
    assert Call.select().count() == 2
