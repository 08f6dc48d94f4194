"""/v1/agents tools and keypad: stored as sent, every bad field a 422 naming it."""
import json

import pytest

from models import Agent

TOOL = {"name": "check_slot", "description": "Find the next free appointment slot.",
        "parameters": {"type": "object", "properties": {"day": {"type": "string", "description": "A weekday."}},
                       "required": ["day"]},
        "method": "post", "url": "https://api.example.com/slots", "timeout_s": 3, "headers": {"X-Tenant": "acme"}}


def send(client, method, path, auth, body):
    return client.open(path, method=method, data=json.dumps(body), headers=auth, content_type="application/json")


def test_tools_and_keypad_are_stored_and_returned(client, auth):
    created = send(client, "POST", "/v1/agents", auth, {"name": "Desk", "direction": "outbound", "tools": [TOOL],
                                                        "keypad": {"send_dtmf": True}})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["tools"] == [{**TOOL, "method": "POST"}] and body["keypad"] == {"send_dtmf": True}
    assert Agent.get_by_id(body["id"]).tools[0]["url"] == TOOL["url"]
    bare = send(client, "POST", "/v1/agents", auth, {"name": "Bare", "direction": "outbound"}).get_json()
    assert (bare["tools"], bare["keypad"]) == ([], {})


BAD = [
    ({"tools": {"name": "x"}}, "tools"),
    ({"tools": [{**TOOL, "name": "end_call"}]}, "tools[0].name"),
    ({"tools": [{**TOOL, "name": "send_dtmf"}]}, "tools[0].name"),
    ({"tools": [{**TOOL, "name": "has space"}]}, "tools[0].name"),
    ({"tools": [TOOL, TOOL]}, "tools[1].name"),
    ({"tools": [{**TOOL, "method": "TRACE"}]}, "tools[0].method"),
    ({"tools": [{**TOOL, "url": "ftp://example.com/x"}]}, "tools[0].url"),
    ({"tools": [{**TOOL, "url": "https://user:pw@example.com/x"}]}, "tools[0].url"),
    ({"tools": [{**TOOL, "timeout_s": 120}]}, "tools[0].timeout_s"),
    ({"tools": [{**TOOL, "timeout_s": "3"}]}, "tools[0].timeout_s"),
    ({"tools": [{**TOOL, "description": ""}]}, "tools[0].description"),
    ({"tools": [{**TOOL, "parameters": {"type": "array"}}]}, "tools[0].parameters.type"),
    ({"tools": [{**TOOL, "parameters": {"type": "object", "properties": {"day": {"type": "date"}}}}]},
     "tools[0].parameters.properties.day.type"),
    ({"tools": [{**TOOL, "parameters": {"type": "object", "properties": {}, "required": ["day"]}}]},
     "tools[0].parameters.required"),
    ({"tools": [{**TOOL, "headers": {"Authorization": "Bearer x"}}]}, "tools[0].headers.Authorization"),
    ({"tools": [{**TOOL, "headers": {"X-A": "a\r\nInjected: 1"}}]}, "tools[0].headers.X-A"),
    ({"tools": [{**TOOL, "secret": "x"}]}, "tools[0].secret"),
    ({"keypad": {"send_dtmf": "yes"}}, "keypad.send_dtmf"),
    ({"keypad": {"volume": 3}}, "keypad.volume"),
    ({"settings": {"questions": [{"key": "a", "text": "Code?", "input": "dtmf", "max_digits": 99}]}},
     "settings.questions[0].max_digits"),
    ({"settings": {"questions": [{"key": "a", "text": "Code?", "input": "dtmf", "terminator": "5"}]}},
     "settings.questions[0].terminator"),
    ({"settings": {"questions": [{"key": "a", "text": "Code?", "input": "keys"}]}}, "settings.questions[0].input"),
    ({"settings": {"questions": [{"key": "s", "tool": "nope", "say": "x"}]}}, "settings.questions[0].tool"),
]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_tools_keypad_and_keypad_questions_are_422_naming_the_field(client, auth, body, field):
    response = send(client, "POST", "/v1/agents", auth, {"name": "x", "direction": "outbound", **body})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert Agent.select().count() == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/slot", "http://[::1]/slot", "http://localhost/slot",
                                 "http://10.0.0.5/slot", "http://169.254.169.254/latest/meta-data"])
def test_a_private_tool_address_is_refused_unless_private_targets_are_allowed(db, config, client, auth, url):
    import dataclasses

    from api import create_app

    body = {"name": "x", "direction": "outbound", "tools": [{**TOOL, "url": url}]}
    strict = create_app(dataclasses.replace(config, webhook_allow_private=False)).test_client()
    response = send(strict, "POST", "/v1/agents", auth, body)
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "tools[0].url"
    assert send(client, "POST", "/v1/agents", auth, body).status_code == 201  # allowed here: a local endpoint


def test_a_tool_step_must_name_a_tool_the_agent_has_after_a_patch_too(client, auth):
    agent = send(client, "POST", "/v1/agents", auth, {"name": "x", "direction": "outbound", "tools": [TOOL]})
    agent_id = agent.get_json()["id"]
    step = {"questions": [{"key": "slot", "tool": "check_slot", "say": "The next slot is {slot}."}]}
    assert send(client, "PATCH", f"/v1/agents/{agent_id}", auth, {"settings": step}).status_code == 200
    # Removing the tool the script calls is refused, and nothing is lost.
    response = send(client, "PATCH", f"/v1/agents/{agent_id}", auth, {"tools": []})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "settings.questions[0].tool"
    assert Agent.get_by_id(agent_id).tools[0]["name"] == "check_slot"


def test_a_tool_url_may_use_declared_variables_and_an_unknown_one_is_422(client, auth):
    templated = {**TOOL, "url": "https://api.example.com/patients/{{patient_id}}/slots?clinic={{organization_name}}"}
    saved = send(client, "POST", "/v1/agents", auth, {"name": "x", "direction": "outbound", "tools": [templated],
                                                      "variables": {"patient_id": {"default": None}}})
    assert saved.status_code == 201, saved.get_json()
    unknown = send(client, "POST", "/v1/agents", auth, {"name": "y", "direction": "outbound",
                                                        "tools": [{**TOOL, "url": "https://x.example.com/{{nope}}"}]})
    assert unknown.status_code == 422
    assert unknown.get_json()["error"]["field"] == "tools[0].url"
