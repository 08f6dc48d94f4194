"""The console's pages render the organization's data, and the agent form is held to the API's own rules."""
import pytest

from models import Agent, Call, CallEvent, Organization, PhoneNumber, SipAccount, WebhookDelivery
from tests.console.helpers import make_user, signed_in


@pytest.fixture
def token(client, org):
    make_user(org, "ana@acme.test")
    return signed_in(client, "ana@acme.test")


def test_every_page_renders(client, token, org, outbound_agent):
    call = Call.create(organization=org, agent=outbound_agent, direction="outbound", to_number="+14155550001",
                       status="completed", billed_minutes=3, ended_at=Call.created_at.default(),
                       transcript=[{"speaker": "agent", "text": "Hello there"}], answers={"confirmed": True})
    CallEvent.create(call=call, from_status="queued", to_status="calling", reason="dialed")
    inbound = Agent.create(organization=org, name="Front desk", direction="inbound")
    account = SipAccount.create(organization=org, name="Office PBX", sip_server="pbx.example.com")
    PhoneNumber.create(organization=org, number="+14155550100", agent=inbound, sip_account=account, label="Main")
    for path in ("/console/calls", "/console/agents", "/console/agents/new", f"/console/agents/{outbound_agent.id}",
                 "/console/numbers", "/console/usage", "/console/webhooks", "/console/api-keys",
                 f"/console/calls/{call.id}"):
        assert client.get(path).status_code == 200, path
    page = client.get(f"/console/calls/{call.id}").text
    assert "Hello there" in page and "\"confirmed\": true" in page and "queued → calling" in page
    assert "<td>3</td>" in client.get("/console/usage").text
    numbers = client.get("/console/numbers").text
    assert "+14155550100" in numbers and "Office PBX" in numbers
    assert f'<option value="{inbound.id}" selected>Front desk</option>' in numbers
    card = client.get(f"/console/sip-accounts/{account.id}").text
    assert "sip.voxbridge.local:5080" in card and "+14155550100" in card and 'id="verify"' in card


def test_the_agent_page_has_the_talk_button_slot(client, token, outbound_agent):
    page = client.get(f"/console/agents/{outbound_agent.id}").text
    assert '<div class="talk">' in page


def test_agent_form_errors_are_the_apis_and_name_the_field(client, token):
    # What the form sends: the API's validation answers, field by field.
    bad = client.post("/v1/agents", json={"name": "", "direction": "outbound"}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "name"
    bad = client.post("/v1/agents", json={"name": "A", "direction": "sideways"}, headers={"X-CSRF-Token": token})
    assert bad.get_json()["error"]["field"] == "direction"
    page = client.get("/console/agents/new").text
    for field in ("name", "direction", "greeting", "prompt", "voice", "language", "stt", "llm", "tts", "settings",
                  "analysis_schema", "active"):
        assert f'data-error-for="{field}"' in page, field


def test_filters_narrow_the_calls_list(client, token, org, outbound_agent):
    Call.create(organization=org, agent=outbound_agent, direction="outbound", to_number="+14155550001",
                status="queued")
    Call.create(organization=org, direction="inbound", to_number="+14155550002", status="completed")
    queued = client.get("/console/calls?status=queued").text
    assert "+14155550001" in queued and "+14155550002" not in queued
    inbound = client.get("/console/calls?direction=inbound").text
    assert "+14155550002" in inbound and "+14155550001" not in inbound
    by_agent = client.get(f"/console/calls?agent_id={outbound_agent.id}").text
    assert "+14155550001" in by_agent and "+14155550002" not in by_agent


def test_webhooks_page_shows_the_delivery_log_and_test_event_queues_one(client, token, org):
    queued = client.post("/v1/webhook-deliveries/test", headers={"X-CSRF-Token": token})
    assert queued.status_code == 202
    page = client.get("/console/webhooks").text
    assert 'data-delivery="webhook.test"' in page and org.webhook_url in page
    other = Organization.create(name="Beta", webhook_url="http://127.0.0.1:9/beta")
    WebhookDelivery.create(organization=other, event_type="call.ended", url=other.webhook_url, payload="{}")
    assert "call.ended" not in client.get("/console/webhooks").text


def test_api_keys_are_issued_and_revoked_from_the_page(client, token):
    issued = client.post("/v1/api-keys", json={"name": "ci"}, headers={"X-CSRF-Token": token})
    assert issued.status_code == 201 and issued.get_json()["current"] is False
    key = issued.get_json()
    assert key["prefix"].removeprefix("vb_live_") in client.get("/console/api-keys").text
    assert key["secret"] not in client.get("/console/api-keys").text
    revoked = client.delete(f"/v1/api-keys/{key['id']}", headers={"X-CSRF-Token": token})
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert client.get("/v1/calls", headers={"Authorization": f"Bearer {key['secret']}"}).status_code == 401


def test_docs_are_served_without_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "http" not in page.text.split("<body>")[1].replace("/openapi.json", "")
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.data
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert client.get("/docs/assets/..%2Fapp.py").status_code == 404
    assert "/openapi.json" in client.get("/console/static/docs.js").text


def test_the_docs_read_the_served_document_as_openapi_3_0(client):
    served = client.get("/openapi.json").get_json()
    shown = client.get("/docs/openapi-3.0.json").get_json()
    assert shown["openapi"] == "3.0.3" and shown["paths"].keys() == served["paths"].keys()
    text = str(shown)
    assert "'null'" not in text and "'const'" not in text
    call = shown["components"]["schemas"]["Call"]["properties"]
    assert call["hangup_cause"] == {"type": "string", "nullable": True}
    assert call["object"]["enum"] == ["call"]


def test_pages_forbid_framing_and_foreign_scripts(client, token):
    page = client.get("/console/agents")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in page.text  # every script is a file of the app's: the policy allows no inline one
    assert client.get("/docs").headers["Referrer-Policy"] == "same-origin"
