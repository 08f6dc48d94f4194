"""A number is refused, not cleaned, when its text carries anything but a phone number (issue 12, defect 9).

phonenumbers.parse skips trailing junk and whitespace, so "+14155559011\\n" used to be stored as
"+14155559011" by POST /v1/numbers. Every API field that takes a number refuses the same inputs.
"""
import json

import pytest

from calls.inbound import UUID_RE as INBOUND_UUID
from calls.live_call import UUID_RE as CONTROLLER_UUID
from calls.media import e164 as transfer_target
from models import PhoneNumber
from pipeline.session import DESTINATION
from pipeline.tokens import CALL_ID

BAD = ['+14155559011ZQB"/><x/>', "+14155559011\n", "+14155559011\t", " +14155559011",
       "+14155559011" + "0" * 10_000, "+14155559011" + " " * 10_000, "+1415555901\u0661", "+1-800-FLOWERS",
       "tel:+14155559011"]
GOOD = ["+14155559011", "+1 415 555 9011", "(415) 555-9011", "415.555.9011"]


def send(client, path, auth, body):
    return client.post(path, data=json.dumps(body), headers=auth, content_type="application/json")


@pytest.mark.parametrize("text", BAD)
def test_every_number_field_refuses_junk_around_a_number(client, auth, outbound_agent, text):
    account = send(client, "/v1/sip-accounts", auth, {"name": "PBX", "allowed_ips": "203.0.113.7"}).get_json()
    for path, field, extra in (("/v1/numbers", "number", {}),
                               (f"/v1/sip-accounts/{account['id']}/numbers", "number", {}),
                               ("/v1/calls/outbound", "to", {}),
                               ("/v1/calls/outbound", "from", {"to": "+14155550123"})):
        response = send(client, path, auth, {field: text, **extra})
        assert response.status_code == 422, (path, field, response.get_json())
        assert response.get_json()["error"] == {**response.get_json()["error"], "code": "invalid_phone_number",
                                                "field": field}
    assert PhoneNumber.select().count() == 0
    assert transfer_target(text) is None


def test_numbers_written_the_usual_ways_are_still_accepted(client, auth):
    for i, text in enumerate(GOOD):
        response = send(client, "/v1/numbers", auth, {"number": text[:-1] + str(i)})
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["number"] == "+1415555901" + str(i)
        assert transfer_target(text) == "+14155559011"


def test_identifier_patterns_do_not_let_a_trailing_newline_through():
    uuid = "0b0f4a4e-3c55-4a0e-9c1e-7d2f8f0e6a11"
    for pattern in (CONTROLLER_UUID, INBOUND_UUID):
        assert pattern.match(uuid) and not pattern.match(uuid + "\n")
    assert DESTINATION.fullmatch("+14155550123") and not DESTINATION.fullmatch("+14155550123\n")
    assert CALL_ID.match("call-1") and not CALL_ID.match("call-1\n")
