"""/v1/calls: queue outbound calls (single and batch), read, list, cancel, hang up, transfer."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import peewee
from flask import Blueprint, current_app, g, jsonify, request

from api.agent_variables import check_context
from api.errors import ApiError, invalid
from api.validation import e164, int_in, json_body, optional_str, reject_unknown, utc_datetime
from calls.machine_detection import check as check_machine_detection
from calls.representation import call_to_dict, iso
from calls.state import transition
from models import (
    CALL_DIRECTIONS,
    CANCELED,
    LIVE_STATUSES,
    PENDING_STATUSES,
    QUEUED,
    SCHEDULED,
    STATUSES,
    WEB,
    Agent,
    Call,
    CallEvent,
    IdempotencyRecord,
    Organization,
    PhoneNumber,
    WebhookDelivery,
    database,
    new_id,
    utcnow,
)
from models.bulk import write
from models.idempotency import expired_before
from webhooks.outbox import delivery_row
from webhooks.targets import UnsafeTarget, validate_url_syntax

bp = Blueprint("calls", __name__, url_prefix="/v1/calls")

OUTBOUND_FIELDS = {"to", "from", "agent_id", "context", "webhook_url", "schedule_at", "max_attempts",
                   "machine_detection"}
MAX_CONTEXT_BYTES = 16 * 1024
MAX_BATCH = 1000


@dataclass
class OutboundContext:
    """What validating one outbound request needs, loaded once per request (or per batch)."""

    org: Any
    region: str
    telephony: bool
    agents: dict[str, Agent] = field(default_factory=dict)
    default_agent: Agent | None = None
    owned_numbers: set[str] = field(default_factory=set)

    _loaded: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, org, config) -> OutboundContext:
        return cls(org, config.default_region, config.telephony_configured)

    # Each lookup runs at most once per request and only when a request needs it: a single POST
    # with no agent_id and no from costs one agent query, a batch of 1,000 the same.
    def agent(self, agent_id: str) -> Agent | None:
        if agent_id not in self.agents:
            self.agents[agent_id] = Agent.get_or_none(Agent.id == agent_id, Agent.organization == self.org,
                                                      Agent.deleted_at.is_null())
        return self.agents[agent_id]

    def default_outbound_agent(self) -> Agent | None:
        if "default_agent" not in self._loaded:
            self._loaded.add("default_agent")
            self.default_agent = (Agent.select().where(Agent.organization == self.org, Agent.direction == "outbound",
                                                       Agent.active, Agent.deleted_at.is_null())
                                  .order_by(Agent.created_at, Agent.id).first())
        return self.default_agent

    def owns(self, number: str) -> bool:
        if "numbers" not in self._loaded:
            self._loaded.add("numbers")
            self.owned_numbers = {n for (n,) in PhoneNumber.select(PhoneNumber.number)
                                  .where(PhoneNumber.organization == self.org).tuples()}
        return number in self.owned_numbers


def _agent(body: dict[str, Any], ctx: OutboundContext) -> Agent:
    agent_id = body.get("agent_id")
    if agent_id is None:
        default = ctx.default_outbound_agent()
        if default is None:
            raise invalid("agent_id", "the organization has no active outbound agent; create one or pass agent_id",
                          "no_outbound_agent")
        return default
    if not isinstance(agent_id, str):
        raise invalid("agent_id", "agent_id must be a string")
    agent = ctx.agent(agent_id)
    if agent is None:
        raise invalid("agent_id", f"agent {agent_id!r} not found in this organization", "agent_not_found")
    if agent.direction != "outbound":
        raise invalid("agent_id", "agent is an inbound agent; outbound calls need an outbound agent",
                      "agent_wrong_direction")
    if not agent.active:
        raise invalid("agent_id", "agent is inactive", "agent_inactive")
    return agent


def _from_number(body: dict[str, Any], ctx: OutboundContext) -> str | None:
    value = body.get("from")
    if value is None:
        if ctx.telephony and not ctx.org.default_caller_id:
            raise invalid("from", "from (caller ID) is required once telephony is configured", "from_required")
        return ctx.org.default_caller_id
    number = e164(value, "from", ctx.region)
    if ctx.telephony and not ctx.owns(number) and number != ctx.org.default_caller_id:
        raise invalid("from", f"{number} is not a number this organization owns or its caller ID",
                      "from_not_owned")
    return number


def _context(body: dict[str, Any]) -> dict[str, Any]:
    context = body.get("context", {})
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise invalid("context", "context must be a JSON object")
    if len(json.dumps(context, separators=(",", ":")).encode()) > MAX_CONTEXT_BYTES:
        raise invalid("context", "context is larger than 16 KB", "context_too_large")
    return context


def build_call(body: Any, ctx: OutboundContext, now: dt.datetime) -> dict[str, Any]:
    """Validate one outbound request and return the Call row to insert."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "each call must be a JSON object")
    reject_unknown(body, OUTBOUND_FIELDS)
    if "to" not in body:
        raise invalid("to", "to is required", "missing_field")
    to = e164(body["to"], "to", ctx.region)
    agent = _agent(body, ctx)
    webhook_url = optional_str(body, "webhook_url", 2000)
    if webhook_url:
        try:
            validate_url_syntax(webhook_url)
        except UnsafeTarget as exc:
            raise invalid("webhook_url", str(exc)) from None
    # Any value but an absent or null one must be a real date: "", 0 or false silently meaning
    # "now" would dial a call its sender meant for later.
    schedule_at = utc_datetime(body["schedule_at"], "schedule_at") if body.get("schedule_at") is not None else None
    max_attempts = int_in(body.get("max_attempts", 3), "max_attempts", 1, 10)
    detection = body.get("machine_detection")
    if detection is not None and (problems := check_machine_detection(detection)):
        raise invalid("machine_detection", "; ".join(problems))
    status = SCHEDULED if schedule_at and schedule_at > now else QUEUED
    context = _context(body)
    check_context(agent, context)  # the agent's variables without a default must come with the call
    return {"id": new_id(), "organization": ctx.org.id, "agent": agent.id, "direction": "outbound",
            "to_number": to, "from_number": _from_number(body, ctx), "status": status,
            "context": context, "webhook_url": webhook_url, "schedule_at": schedule_at,
            "max_attempts": max_attempts, "machine_detection": detection, "next_attempt_at": schedule_at or now,
            "queued_at": now, "created_at": now, "updated_at": now}


def _check_allowance(org) -> None:
    # Read from the database, not the (key-cached) organization: minutes used up a second ago count.
    used, included = (Organization.select(Organization.minutes_used, Organization.minutes_included)
                      .where(Organization.id == org.id).tuples().get())
    if used >= included:
        raise ApiError(402, "minutes_exhausted",
                       f"the organization used {used} of {included} included minutes")


def _insert(rows: list[dict[str, Any]], org) -> list[dict[str, Any]]:
    """Insert calls, their first timeline event and call.queued webhooks in the caller's transaction. Returns each
    call's public representation: the call.queued payload is also the API's reply, built once."""
    calls = [Call(**{**row, "organization": org}) for row in rows]
    for call, row in zip(calls, rows, strict=True):
        call.organization_id = org.id
        call.agent_id = row["agent"]
    events = [{"call": c.id, "from_status": None, "to_status": c.status, "reason": "created",
               "created_at": c.created_at} for c in calls]
    bodies = [call_to_dict(c) for c in calls]
    deliveries = [d for d in (delivery_row(org, "call.queued", body, c) for body, c in zip(bodies, calls, strict=True))
                  if d]
    write([(Call, rows), (CallEvent, events), (WebhookDelivery, deliveries)])
    return bodies


def _request_hash(body: Any) -> str:
    canonical = json.dumps({"path": request.path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord, body_hash: str):
    if record.request_hash != body_hash:
        raise ApiError(409, "idempotency_key_reused",
                       "this Idempotency-Key was used with a different request body")
    response = current_app.response_class(record.response_body, status=record.status_code,
                                          mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _lookup(org, key: str) -> IdempotencyRecord | None:
    """The stored response for this key, if one is still inside its 24 h window."""
    return IdempotencyRecord.get_or_none(IdempotencyRecord.organization == org, IdempotencyRecord.key == key,
                                         IdempotencyRecord.created_at > expired_before())


def _idempotent(create):
    """Run `create` (returning (status, body)) once per organization and Idempotency-Key for 24 h."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        status, payload = create(None)
        return jsonify(payload), status
    if not key.strip() or len(key) > 255:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters")
    body_hash = _request_hash(json_body())
    org = g.org
    record = _lookup(org, key)
    if record is not None:
        return _replay(record, body_hash)

    def store(status: int, payload: dict[str, Any]) -> None:
        # Only an expired record may be replaced. A live one (a concurrent request that committed
        # after our lookup) stays, and our INSERT hits the primary key: IntegrityError below.
        IdempotencyRecord.delete().where(IdempotencyRecord.organization == org, IdempotencyRecord.key == key,
                                         IdempotencyRecord.created_at <= expired_before()).execute()
        IdempotencyRecord.create(organization=org, key=key, request_hash=body_hash, status_code=status,
                                 response_body=json.dumps(payload))

    try:
        status, payload = create(store)
    except peewee.IntegrityError:
        # A concurrent request with the same key won the race; our transaction (the call with it)
        # rolled back. Answer as the winner did.
        record = IdempotencyRecord.get_or_none(IdempotencyRecord.organization == org,
                                               IdempotencyRecord.key == key)
        if record is None:  # some other constraint failed: not ours to hide
            raise
        return _replay(record, body_hash)
    return jsonify(payload), status


@bp.post("/outbound")
def create_outbound():
    body = json_body()
    config = current_app.config["VOXBRIDGE"]

    def create(store):
        org = g.org
        _check_allowance(org)
        ctx = OutboundContext.load(org, config)
        row = build_call(body, ctx, utcnow())
        if store is None:
            return 201, _insert([row], org)[0]
        with database.atomic():
            payload = _insert([row], org)[0]
            store(201, payload)
        return 201, payload

    return _idempotent(create)


@bp.post("/outbound/batch")
def create_batch():
    body = json_body()
    reject_unknown(body, {"calls"})
    items = body.get("calls")
    if not isinstance(items, list) or not items:
        raise invalid("calls", "calls must be a non-empty array")
    if len(items) > MAX_BATCH:
        raise invalid("calls", f"a batch holds at most {MAX_BATCH} calls", "batch_too_large")
    config = current_app.config["VOXBRIDGE"]

    def create(store):
        org = g.org
        _check_allowance(org)
        ctx = OutboundContext.load(org, config)
        now = utcnow()
        rows, results = [], []
        for index, item in enumerate(items):
            try:
                rows.append(build_call(item, ctx, now))
                results.append({"index": index})
            except ApiError as exc:
                results.append({"index": index, **exc.body()})
        with database.atomic():
            bodies = iter(_insert(rows, org) if rows else [])
            for result in results:
                if "error" not in result:
                    # A batch's results leave out each call's transcript (empty at creation) to keep the reply small.
                    result["call"] = {k: v for k, v in next(bodies).items() if k != "transcript"}
            payload = {"object": "batch", "created": len(rows), "failed": len(items) - len(rows),
                       "results": results}
            if not rows:
                # Nothing was created: a failure, so it carries the one error shape every client
                # checks, with the per-item reasons alongside.
                payload = {"error": {"code": "batch_rejected",
                                     "message": f"all {len(items)} calls were rejected; see results"}, **payload}
            if store:
                store(200 if rows else 422, payload)
        return (200 if rows else 422), payload

    return _idempotent(create)


def get_call(call_id: str) -> Call:
    call = Call.get_or_none(Call.id == call_id, Call.organization == g.org)
    if call is None:
        raise ApiError(404, "not_found", f"call {call_id} not found")
    return call


@bp.get("/<call_id>")
def read(call_id: str):
    return jsonify(call_to_dict(get_call(call_id)))


def _cursor_decode(value: str) -> tuple[dt.datetime, str]:
    try:
        created, call_id = base64.urlsafe_b64decode(value.encode()).decode().split("|", 1)
        return dt.datetime.fromisoformat(created), call_id
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from None


def _cursor_encode(call: Call) -> str:
    return base64.urlsafe_b64encode(f"{call.created_at.isoformat()}|{call.id}".encode()).decode()


@bp.get("")
def list_calls():
    args = request.args
    query = Call.select().where(Call.organization == g.org)
    if "status" in args:
        statuses = args["status"].split(",")
        if not set(statuses) <= set(STATUSES):
            raise invalid("status", f"status must be among {', '.join(STATUSES)}")
        query = query.where(Call.status.in_(statuses))
    if "direction" in args:
        if args["direction"] not in CALL_DIRECTIONS:
            raise invalid("direction", f"direction must be one of {', '.join(CALL_DIRECTIONS)}")
        query = query.where(Call.direction == args["direction"])
    if "agent_id" in args:
        if not args["agent_id"]:  # present means filter: an empty id is a client bug, not "all agents"
            raise invalid("agent_id", "agent_id must be an agent id")
        query = query.where(Call.agent == args["agent_id"])
    if "created_after" in args:
        query = query.where(Call.created_at >= utc_datetime(args["created_after"], "created_after"))
    if "created_before" in args:
        query = query.where(Call.created_at < utc_datetime(args["created_before"], "created_before"))
    try:
        limit = int(args.get("limit", 50))
    except ValueError:
        raise invalid("limit", "limit must be an integer from 1 to 200") from None
    limit = int_in(limit, "limit", 1, 200)
    if "cursor" in args:
        created, call_id = _cursor_decode(args["cursor"])
        query = query.where((Call.created_at < created) | ((Call.created_at == created) & (Call.id < call_id)))
    page = list(query.order_by(Call.created_at.desc(), Call.id.desc()).limit(limit + 1))
    has_more = len(page) > limit
    page = page[:limit]
    return jsonify({"object": "list", "data": [call_to_dict(c, include_transcript=False) for c in page],
                    "has_more": has_more, "next_cursor": _cursor_encode(page[-1]) if has_more else None})


def _call_control():
    return current_app.extensions.get("voxbridge.call_control")


@bp.post("/<call_id>/cancel")
def cancel(call_id: str):
    call = get_call(call_id)
    if call.status in PENDING_STATUSES:
        if not transition(call, CANCELED, reason="canceled through the API"):
            call = get_call(call_id)
            raise ApiError(409, "call_not_cancelable", f"call is {call.status} and can no longer be canceled")
        return jsonify(call_to_dict(call))
    if call.status in LIVE_STATUSES and call.direction == WEB:
        _hang_up_web_call(call, "canceled through the API")
        return jsonify(call_to_dict(get_call(call_id))), 202
    if call.status in LIVE_STATUSES:
        control = _call_control()
        if control is None:
            raise ApiError(409, "telephony_not_configured", "the call is live but telephony is not configured")
        control.hangup(call, reason="canceled through the API")
        return jsonify(call_to_dict(get_call(call_id))), 202
    raise ApiError(409, "call_not_cancelable", f"call is {call.status} and can no longer be canceled")


@bp.get("/<call_id>/events")
def events(call_id: str):
    call = get_call(call_id)
    rows = CallEvent.select().where(CallEvent.call == call).order_by(CallEvent.id)
    return jsonify({"object": "list", "data": [
        {"from": e.from_status, "to": e.to_status, "reason": e.reason, "data": e.data, "at": iso(e.created_at)}
        for e in rows]})


def _hang_up_web_call(call: Call, reason: str) -> None:
    """A web call has no channel: the process serving its stream ends it (and tells the page); an API process
    that does not serve it ends the call's record, and the stream ends with the page."""
    control = current_app.extensions.get("voxbridge.web_call_control")
    if control is not None:
        control.hangup(call, reason=reason)
    else:
        from webcall.calls import end

        end(call.id, reason)


def _live_call_and_control(call_id: str, action: str = "changed"):
    call = get_call(call_id)
    if call.status not in LIVE_STATUSES:
        raise ApiError(409, "call_not_live", f"call is {call.status}; only a live call can be changed")
    if call.direction == WEB and action == "transferred":
        raise ApiError(409, "call_not_transferable", "a web call has no phone line to transfer")
    control = _call_control()
    if control is None:
        raise ApiError(409, "telephony_not_configured", "telephony is not configured")
    return call, control


@bp.post("/<call_id>/hangup")
def hangup(call_id: str):
    call = get_call(call_id)
    if call.status in LIVE_STATUSES and call.direction == WEB:
        _hang_up_web_call(call, "hung up through the API")
        return jsonify(call_to_dict(get_call(call_id))), 202
    call, control = _live_call_and_control(call_id)
    control.hangup(call, reason="hung up through the API")
    return jsonify(call_to_dict(get_call(call_id))), 202


@bp.post("/<call_id>/transfer")
def transfer(call_id: str):
    body = json_body()
    reject_unknown(body, {"to", "mode"})
    mode = body.get("mode", "bridge")
    if mode not in ("bridge", "refer"):
        raise invalid("mode", "mode must be bridge or refer")
    target = e164(body.get("to"), "to", current_app.config["VOXBRIDGE"].default_region)
    call, control = _live_call_and_control(call_id, "transferred")
    control.transfer(call, target, mode)
    return jsonify({"id": call.id, "object": "transfer", "to": target, "mode": mode, "status": "requested"}), 202
