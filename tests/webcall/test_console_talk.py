"""The console's "Talk to this agent" button: the signed-in session (with its CSRF token) starts the web call, and
the talk page opens with that call's single-use token."""
from tests.console.helpers import make_user, signed_in


def test_the_agent_page_has_the_button_and_the_session_starts_a_web_call(web_client, org, talk_agent):
    make_user(org, "ana@acme.test")
    csrf = signed_in(web_client, "ana@acme.test")
    page = web_client.get(f"/console/agents/{talk_agent.id}").text
    assert 'id="talk-start"' in page and f'data-agent-id="{talk_agent.id}"' in page
    # A session write without the page's CSRF token is refused and starts nothing.
    refused = web_client.post(f"/v1/agents/{talk_agent.id}/web-calls")
    assert refused.status_code == 403
    started = web_client.post(f"/v1/agents/{talk_agent.id}/web-calls", headers={"X-CSRF-Token": csrf})
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    assert body["call"]["direction"] == "web" and body["token"]
    talk = web_client.get(f"/talk/{talk_agent.id}?call={body['call']['id']}&token={body['token']}")
    assert talk.status_code == 200 and "talk.js" in talk.text


def test_another_organizations_agent_cannot_be_talked_to_from_the_session(web_client, org, talk_agent):
    from models import Agent, Organization

    other = Agent.create(organization=Organization.create(name="Beta"), name="Beta desk", direction="inbound")
    make_user(org, "ana@acme.test")
    csrf = signed_in(web_client, "ana@acme.test")
    response = web_client.post(f"/v1/agents/{other.id}/web-calls", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 404
