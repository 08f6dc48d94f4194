"""One call to a customer tool endpoint: signed, SSRF-guarded, bounded; failures become results."""
import json

import pytest

from pipeline.tools.definitions import HttpTool
from pipeline.tools.http import MAX_RESULT_CHARS, call_http_tool
from tests.fakes.customer_tool import CustomerToolServer
from tests.fakes.faults import Fault

SECRET = "whsec_test_secret_0123456789"


@pytest.fixture
def endpoint():
    with CustomerToolServer(SECRET) as server:
        yield server


def tool(url, **kw):
    return HttpTool("check_slot", "Find a slot.", url, **kw)


def test_a_signed_post_returns_the_endpoints_json(endpoint):
    result = call_http_tool(tool(endpoint.url + "/slot", headers={"X-Tenant": "acme"}), {"day": "tue"}, SECRET,
                            call_id="call-1", agent_id="agent-1", allow_private=True)
    assert result.ok and result.http_status == 200
    assert json.loads(result.content) == {"slot": "Tuesday at 3 pm"}
    assert endpoint.verified == [{"tool": "check_slot", "arguments": {"day": "tue"}, "call_id": "call-1",
                                  "agent_id": "agent-1"}]
    assert endpoint.requests[0].headers["x-tenant"] == "acme"


def test_a_get_sends_the_arguments_as_the_query(endpoint):
    result = call_http_tool(tool(endpoint.url + "/slot", method="GET"), {"day": "tue", "n": 2}, SECRET,
                            allow_private=True)
    assert result.ok and endpoint.verified == [{"query": {"day": "tue", "n": "2"}}]


def test_a_wrong_secret_is_refused_by_the_endpoint_and_reported_as_an_error(endpoint):
    result = call_http_tool(tool(endpoint.url), {}, "another_secret_value_xyz", allow_private=True)
    assert result.status == "error" and result.http_status == 401 and '"ok": false' in result.content


def test_an_endpoint_that_hangs_past_the_timeout_is_a_timeout_result(endpoint):
    endpoint.faults.append(Fault(latency_s=5.0))
    result = call_http_tool(tool(endpoint.url, timeout_s=0.5), {}, SECRET, allow_private=True)
    assert result.status == "timeout" and "did not answer" in result.content


def test_a_huge_answer_is_cut(endpoint):
    endpoint.big = True
    result = call_http_tool(tool(endpoint.url), {}, SECRET, allow_private=True)
    assert result.ok and result.content.endswith("[truncated]")
    assert len(result.content) <= MAX_RESULT_CHARS + len(" [truncated]")


def test_a_private_address_is_refused_without_a_request(endpoint):
    result = call_http_tool(tool(endpoint.url), {}, SECRET)  # 127.0.0.1, not allowed
    assert result.status == "refused" and endpoint.requests == []


def test_a_server_error_is_an_error_result(endpoint):
    endpoint.faults.append(Fault(status=503))
    result = call_http_tool(tool(endpoint.url), {}, SECRET, allow_private=True)
    assert result.status == "error" and "HTTP 503" in result.content
