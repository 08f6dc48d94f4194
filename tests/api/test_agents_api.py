"""/v1/agents and /v1/numbers: validation, soft delete, isolation."""
import json

from models import Agent, ApiKey, Organization


def send(client, method, path, auth, body):
    return client.open(path, method=method, data=json.dumps(body), headers=auth, content_type="application/json")


def test_agent_crud(client, auth):
    created = send(client, "POST", "/v1/agents", auth, {
        "name": "Reminder", "direction": "outbound", "greeting": "Hi", "tts": {"provider": "espeak"},
        "analysis_schema": {"type": "object", "properties": {"confirmed": {"type": "boolean"}}}})
    assert created.status_code == 201
    agent_id = created.get_json()["id"]
    assert created.get_json()["stt"] == {}
    patched = send(client, "PATCH", f"/v1/agents/{agent_id}", auth, {"active": False, "greeting": "Hello"})
    assert patched.get_json()["active"] is False and patched.get_json()["greeting"] == "Hello"
    assert [a["id"] for a in client.get("/v1/agents", headers=auth).get_json()["data"]] == [agent_id]
    assert client.delete(f"/v1/agents/{agent_id}", headers=auth).status_code == 204
    assert client.get(f"/v1/agents/{agent_id}", headers=auth).status_code == 404
    assert Agent.get_by_id(agent_id).deleted_at is not None


def test_agent_validation(client, auth):
    cases = [({"direction": "outbound"}, "name"), ({"name": "x", "direction": "sideways"}, "direction"),
             ({"name": "x", "direction": "inbound", "llm": {"provider": "skynet"}}, "llm"),
             ({"name": "x", "direction": "inbound", "llm": {"provider": "openai", "api_key": "sk"}}, "llm"),
             ({"name": "x", "direction": "inbound", "analysis_schema": {"type": "array"}}, "analysis_schema"),
             ({"name": "x", "direction": "inbound", "active": "yes"}, "active")]
    for body, field in cases:
        response = send(client, "POST", "/v1/agents", auth, body)
        assert response.status_code == 422, body
        assert response.get_json()["error"]["field"] == field


def test_agents_of_another_organization_are_404(client, auth):
    other = Organization.create(name="Other")
    agent = Agent.create(organization=other, name="Theirs", direction="outbound")
    assert client.get(f"/v1/agents/{agent.id}", headers=auth).status_code == 404
    assert send(client, "PATCH", f"/v1/agents/{agent.id}", auth, {"name": "mine"}).status_code == 404
    assert client.delete(f"/v1/agents/{agent.id}", headers=auth).status_code == 404
    assert Agent.get_by_id(agent.id).name == "Theirs"


def test_numbers_are_e164_unique_across_organizations(client, auth, org):
    inbound = Agent.create(organization=org, name="Desk", direction="inbound")
    created = send(client, "POST", "/v1/numbers", auth, {"number": "+1 415 555 0100", "agent_id": inbound.id})
    assert created.status_code == 201 and created.get_json()["number"] == "+14155550100"
    other = Organization.create(name="Other")
    other_auth = {"Authorization": "Bearer " + ApiKey.issue(other)[1]}
    taken = send(client, "POST", "/v1/numbers", other_auth, {"number": "+14155550100"})
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "number_taken"
    outbound = Agent.create(organization=org, name="Out", direction="outbound")
    wrong = send(client, "POST", "/v1/numbers", auth, {"number": "+14155550101", "agent_id": outbound.id})
    assert wrong.status_code == 422
    number_id = created.get_json()["id"]
    assert client.delete(f"/v1/numbers/{number_id}", headers=other_auth).status_code == 404
    assert client.delete(f"/v1/numbers/{number_id}", headers=auth).status_code == 204


def test_agent_settings_the_pipeline_does_not_read_are_rejected_by_name(client, auth):
    typo = send(client, "POST", "/v1/agents", auth,
                {"name": "x", "direction": "outbound", "settings": {"reprompt_after_s": 5}})
    assert typo.status_code == 422
    error = typo.get_json()["error"]
    assert error["field"] == "settings" and "reprompt_after_s" in error["message"]
    wrong_type = send(client, "POST", "/v1/agents", auth,
                      {"name": "x", "direction": "outbound", "settings": {"barge_in": "no"}})
    assert wrong_type.status_code == 422 and "barge_in" in wrong_type.get_json()["error"]["message"]
    good = send(client, "POST", "/v1/agents", auth,
                {"name": "x", "direction": "outbound", "settings": {"barge_in": False, "silence_reprompt_s": 6}})
    assert good.status_code == 201 and good.get_json()["settings"] == {"barge_in": False, "silence_reprompt_s": 6}
    patched = send(client, "PATCH", f"/v1/agents/{good.get_json()['id']}", auth, {"settings": {"recrod": True}})
    assert patched.status_code == 422
    assert Agent.get_by_id(good.get_json()["id"]).settings == {"barge_in": False, "silence_reprompt_s": 6}


def test_an_agent_whose_provider_cannot_be_built_here_is_refused_at_save(client, auth, app):
    """No OPENAI_API_KEY / ELEVENLABS_API_KEY in this deployment: saving such an agent is a 422 naming the
    missing setting, not a call that silently talks with the offline voice later."""
    response = send(client, "POST", "/v1/agents", auth,
                    {"name": "Cloud", "direction": "outbound", "llm": {"provider": "openai", "model": "gpt-x"}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "provider_unavailable" and error["field"] == "llm"
    assert "OPENAI_API_KEY" in error["message"]
    assert Agent.select().count() == 0
    created = send(client, "POST", "/v1/agents", auth, {"name": "Offline", "direction": "outbound"})
    assert created.status_code == 201
    agent_id = created.get_json()["id"]
    patched = send(client, "PATCH", f"/v1/agents/{agent_id}", auth, {"tts": {"provider": "elevenlabs"}})
    assert patched.status_code == 422 and patched.get_json()["error"]["field"] == "tts"
    assert "ELEVENLABS_API_KEY" in patched.get_json()["error"]["message"]
    assert Agent.get_by_id(agent_id).tts == {}


def test_an_agent_whose_provider_is_configured_is_saved(client, auth, app):
    from dataclasses import replace

    app.config["VOXBRIDGE"] = replace(app.config["VOXBRIDGE"], openai_api_key="sk-test", llm_model="gpt-test")
    response = send(client, "POST", "/v1/agents", auth,
                    {"name": "Cloud", "direction": "outbound", "llm": {"provider": "openai"}})
    assert response.status_code == 201, response.get_json()
    assert "sk-test" not in response.get_data(as_text=True)
