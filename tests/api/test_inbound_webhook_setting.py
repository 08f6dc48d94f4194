"""PATCH /v1/organization inbound_webhook_url: checked like webhook_url, scoped to the organization."""
import json

from models import Organization


def _patch(client, auth, body):
    return client.patch("/v1/organization", data=json.dumps(body), headers=auth, content_type="application/json")


def test_the_inbound_webhook_url_is_set_read_and_cleared(client, auth, org):
    other = Organization.create(name="Other", inbound_webhook_url="https://other.example/in")
    response = _patch(client, auth, {"inbound_webhook_url": "http://127.0.0.1:8/inbound"})
    assert response.status_code == 200 and response.get_json()["inbound_webhook_url"] == "http://127.0.0.1:8/inbound"
    assert client.get("/v1/organization", headers=auth).get_json()["inbound_webhook_url"] == \
        "http://127.0.0.1:8/inbound"
    assert _patch(client, auth, {"inbound_webhook_url": ""}).get_json()["inbound_webhook_url"] is None
    assert Organization.get_by_id(other.id).inbound_webhook_url == "https://other.example/in"


def test_a_bad_inbound_webhook_url_is_422_naming_it(client, auth, org):
    for value, code in (("ftp://example.com/x", "invalid_webhook_url"),
                        ("https://u:p@example.com/", "invalid_webhook_url"), (5, "invalid_field")):
        response = _patch(client, auth, {"inbound_webhook_url": value})
        assert response.status_code == 422
        assert (response.get_json()["error"]["field"], response.get_json()["error"]["code"]) == \
            ("inbound_webhook_url", code)
    assert Organization.get_by_id(org.id).inbound_webhook_url is None


def test_the_served_document_describes_the_inbound_webhook_and_agent_variables(client):
    from api.agents import FIELDS
    from webhooks.inbound_hook import REPLY_KEYS

    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    reply = document["webhooks"]["call.inbound"]["post"]["responses"]["200"]["content"]["application/json"]
    assert reply["schema"] == {"$ref": "#/components/schemas/InboundWebhookReply"}
    assert set(schemas["InboundWebhookReply"]["properties"]) == REPLY_KEYS
    assert set(schemas["InboundWebhookEvent"]["example"]["data"]) == \
        set(schemas["InboundWebhookEvent"]["properties"]["data"]["properties"])
    agent = schemas["Agent"]["properties"]
    assert {"variables", "timezone"} <= set(agent) and {"variables", "timezone"} <= FIELDS
    assert agent["variables"]["example"]["order_id"] == {"default": None}
    assert "inbound_webhook_url" in schemas["OrganizationSettings"]["properties"]
