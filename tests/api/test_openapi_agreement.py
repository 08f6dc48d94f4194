"""Every operation of the served OpenAPI document against the validators behind it (issue 12, #11).

For each operation, from a request the validators accept:
  - each readOnly property of its request body, when sent, is a 422 read_only_field naming it;
  - each free-text string property (body, query, header) sent empty is refused (4xx naming it) exactly when the
    schema says it may not be empty (minLength, an enum, a pattern, a non-string type), and accepted otherwise;
  - a method the document does not list for the path is a 405 whose Allow header lists the documented ones.
A new operation with a request body needs a base request in BASES, so it cannot skip these checks.
"""
import itertools
import json
import re

import pytest

from api import create_app
from models import IN_PROGRESS, Agent, Call, PhoneNumber, SipAccount

NUMBERS = (f"+1415555{n:04d}" for n in itertools.count(2000))
METHODS = ("get", "post", "put", "patch", "delete")


class FakeControl:
    """Call control that touches no switch: hang-ups and transfers are accepted."""

    def hangup(self, call, reason, unserved=False):
        pass

    def transfer(self, call, target, mode):
        return True


# (path, method) -> a request body the validators accept (fresh numbers: a number can be taken only once)
BASES = {
    ("/v1/calls/outbound", "post"): lambda: {"to": next(NUMBERS)},
    ("/v1/calls/outbound/batch", "post"): lambda: {"calls": [{"to": next(NUMBERS)}]},
    ("/v1/calls/{call_id}/transfer", "post"): lambda: {"to": next(NUMBERS)},
    ("/v1/agents", "post"): lambda: {"name": "Ada", "direction": "outbound"},
    ("/v1/agents/{agent_id}", "patch"): lambda: {},
    ("/v1/numbers", "post"): lambda: {"number": next(NUMBERS)},
    ("/v1/numbers/{number_id}", "patch"): lambda: {},
    ("/v1/sip-accounts", "post"): lambda: {"name": "PBX"},
    ("/v1/sip-accounts/{account_id}", "patch"): lambda: {},
    ("/v1/sip-accounts/{account_id}/numbers", "post"): lambda: {"number": next(NUMBERS)},
    ("/v1/organization", "patch"): lambda: {},
    ("/v1/api-keys", "post"): lambda: {"name": "ci"},
}
SAMPLES = {"string": "x", "boolean": True, "integer": 1, "number": 1, "object": {}, "array": []}


def _resolve(doc, schema):
    """A schema with $ref and allOf merged: (properties, required)."""
    if "$ref" in schema:
        return _resolve(doc, doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
    properties, required = dict(schema.get("properties", {})), set(schema.get("required", ()))
    for part in schema.get("allOf", ()):
        more, needed = _resolve(doc, part)
        properties.update(more)
        required |= needed
    return properties, required


def _types(schema):
    kind = schema.get("type", [])
    return set(kind if isinstance(kind, list) else [kind])


def _may_be_empty(schema) -> bool:
    """Does the schema accept ""? (a string type, no minLength, enum, const or pattern)"""
    return ("string" in _types(schema) and not schema.get("minLength") and "enum" not in schema
            and "const" not in schema and "pattern" not in schema)


def _free_text(schema) -> bool:
    """A property worth sending empty: it can hold a string (an enum or non-string type makes "" plainly wrong,
    which the empty-string check then also asserts)."""
    return "string" in _types(schema) or "enum" in schema or bool(_types(schema) & {"integer", "number"})


@pytest.fixture
def world(db, config, org, auth):
    app = create_app(config, call_control=FakeControl())
    client = app.test_client()
    agent = Agent.create(organization=org, name="Out", direction="outbound")
    Agent.create(organization=org, name="Desk", direction="inbound")
    number = PhoneNumber.create(organization=org, number="+14155550100")
    account = SipAccount.create(organization=org, name="PBX", allowed_ips="203.0.113.7")
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number="+14155550123",
                       status=IN_PROGRESS)
    values = {"call_id": call.id, "agent_id": agent.id, "number_id": number.id, "account_id": account.id}
    return client, auth, values


def _url(path, values):
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def _send(client, method, url, auth, body=None, headers=None, query=""):
    return client.open(url + query, method=method.upper(), headers={**auth, **(headers or {})},
                       data=json.dumps(body) if body is not None else None,
                       content_type="application/json" if body is not None else None)


def _refused(response, field):
    error = (response.get_json() or {}).get("error", {})
    return 400 <= response.status_code < 500 and error.get("field", field) == field


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_request_bodies_agree_with_their_schemas(world):
    client, auth, values = world
    doc = client.get("/openapi.json").get_json()
    checked = 0
    for path, method, op in _operations(doc):
        if "requestBody" not in op:
            continue
        assert (path, method) in BASES, f"{method.upper()} {path} has a request body but no base request here"
        url = _url(path, values)
        base = BASES[(path, method)]
        accepted = _send(client, method, url, auth, base())
        assert accepted.status_code < 300, (method, path, accepted.get_json())
        properties, _required = _resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
        for name, schema in properties.items():
            if schema.get("readOnly"):
                kind = sorted(_types(schema) - {"null"} or {"string"})[0]
                sample = schema.get("const", SAMPLES[kind])
                response = _send(client, method, url, auth, {**base(), name: sample})
                assert response.status_code == 422, (method, path, name, response.get_json())
                assert response.get_json()["error"]["code"] == "read_only_field", (method, path, name)
                assert response.get_json()["error"]["field"] == name
            elif _free_text(schema):
                response = _send(client, method, url, auth, {**base(), name: ""})
                if _may_be_empty(schema):
                    assert response.status_code < 300, (method, path, name, response.get_json())
                else:
                    assert _refused(response, name), (method, path, name, response.status_code, response.get_json())
                checked += 1
    assert checked >= 20


def test_query_and_header_parameters_agree_with_their_schemas(world):
    client, auth, values = world
    doc = client.get("/openapi.json").get_json()
    checked = 0
    for path, method, op in _operations(doc):
        url = _url(path, values)
        for param in op.get("parameters", ()):
            if param["in"] == "path" or not _free_text(param["schema"]):
                continue
            base = BASES.get((path, method), lambda: None)
            if param["in"] == "query":
                response = _send(client, method, url, auth, base(), query=f"?{param['name']}=")
            else:
                response = _send(client, method, url, auth, base(), headers={param["name"]: ""})
            if _may_be_empty(param["schema"]):
                assert response.status_code < 300, (method, path, param["name"], response.get_json())
            else:
                assert _refused(response, param["name"]), (method, path, param["name"], response.get_json())
            checked += 1
    assert checked >= 8


def _template(path):
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(path)))


def test_a_method_the_document_does_not_list_is_405_with_allow(world):
    client, auth, values = world
    doc = client.get("/openapi.json").get_json()
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item}
        # GET /v1/calls/outbound is GET /v1/calls/{call_id} with the id "outbound": a 404, not a 405
        overlapping = {m for other, methods in doc["paths"].items() if other != path
                       and _template(other).fullmatch(path) for m in methods}
        for method in (m for m in METHODS if m not in item and m not in overlapping):
            response = _send(client, method, _url(path, values), auth)
            assert response.status_code == 405, (method, path)
            assert response.get_json()["error"]["code"] == "method_not_allowed"
            allowed = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
            expected = documented | {m.upper() for m in overlapping}
            assert allowed - {"HEAD", "OPTIONS"} == expected, (method, path, response.headers.get("Allow"))
