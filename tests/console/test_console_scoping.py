"""A console user sees and changes only their own organization: pages and the JSON they call answer 404 for
another organization's call, recording, SIP account or agent, and lists never show another's rows."""
import pytest

from models import Agent, Call, Organization, PhoneNumber, SipAccount
from tests.console.helpers import make_user, signed_in


@pytest.fixture
def other(db):
    """Organization B with an agent, a finished recorded call, a SIP account and a number."""
    org_b = Organization.create(name="Beta")
    agent = Agent.create(organization=org_b, name="Beta agent", direction="outbound")
    call = Call.create(organization=org_b, agent=agent, direction="outbound", to_number="+14155559999",
                       status="completed", recording_path="var/recordings/b.wav",
                       transcript=[{"speaker": "agent", "text": "beta secret words"}])
    account = SipAccount.create(organization=org_b, name="Beta PBX", sip_server="pbx.beta.test")
    PhoneNumber.create(organization=org_b, number="+14155558888", sip_account=account)
    return {"agent": agent, "call": call, "account": account}


@pytest.fixture
def token(client, org):
    make_user(org, "ana@acme.test")
    return signed_in(client, "ana@acme.test")


def test_another_organizations_pages_are_not_found(client, token, other):
    for path in (f"/console/calls/{other['call'].id}", f"/console/sip-accounts/{other['account'].id}",
                 f"/console/agents/{other['agent'].id}"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html", path
        assert "not found" in response.text
        assert "Beta" not in response.text and "beta secret" not in response.text


def test_another_organizations_json_is_not_found(client, token, other):
    call, account = other["call"].id, other["account"].id
    headers = {"X-CSRF-Token": token}
    for method, path in (("get", f"/v1/calls/{call}"), ("get", f"/v1/calls/{call}/events"),
                         ("get", f"/v1/calls/{call}/recording"), ("get", f"/v1/sip-accounts/{account}"),
                         ("post", f"/v1/sip-accounts/{account}/verify"),
                         ("post", f"/v1/sip-accounts/{account}/reprovision"),
                         ("delete", f"/v1/sip-accounts/{account}"), ("get", f"/v1/agents/{other['agent'].id}")):
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == 404, (method, path, response.get_json())
    assert SipAccount.get_by_id(account).deleted_at is None


def test_lists_show_only_the_users_organization(client, token, other, org):
    Call.create(organization=org, direction="outbound", to_number="+14155550001", status="queued")
    calls = client.get("/console/calls").text
    assert "+14155550001" in calls and "+14155559999" not in calls
    assert "+14155558888" not in client.get("/console/numbers").text
    assert "Beta PBX" not in client.get("/console/numbers").text
    assert "Beta agent" not in client.get("/console/agents").text
    assert [c["to"] for c in client.get("/v1/calls").get_json()["data"]] == ["+14155550001"]


def test_the_users_own_recording_plays_through_the_session(client, token, org, tmp_path, app):
    import dataclasses

    from api import create_app

    config = dataclasses.replace(app.config["VOXBRIDGE"], recordings_dir=str(tmp_path))
    call = Call.create(organization=org, direction="outbound", to_number="+14155550001", status="completed",
                       recording_path="x")
    (tmp_path / f"{call.id}.wav").write_bytes(b"RIFF....WAVEfmt ")
    own = create_app(config).test_client()
    own_token = signed_in(own, "ana@acme.test")
    assert own_token
    page = own.get(f"/console/calls/{call.id}")
    assert page.status_code == 200 and f'src="/v1/calls/{call.id}/recording"' in page.text
    played = own.get(f"/v1/calls/{call.id}/recording")
    assert played.status_code == 200 and played.data.startswith(b"RIFF")
