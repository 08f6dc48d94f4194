"""/v1/numbers: DIDs owned by the organization and the inbound agent that answers each."""
from __future__ import annotations

import peewee
from flask import Blueprint, current_app, g, jsonify

from api.errors import ApiError, invalid
from api.validation import e164, json_body, optional_str, reject_unknown
from calls.representation import iso
from models import Agent, PhoneNumber, database

bp = Blueprint("numbers", __name__, url_prefix="/v1/numbers")


def number_to_dict(number: PhoneNumber) -> dict:
    return {"id": number.id, "object": "phone_number", "number": number.number, "agent_id": number.agent_id,
            "label": number.label, "created_at": iso(number.created_at)}


def _inbound_agent(agent_id) -> str | None:
    if agent_id is None:
        return None
    agent = Agent.get_or_none(Agent.id == agent_id, Agent.organization == g.org, Agent.deleted_at.is_null()) \
        if isinstance(agent_id, str) else None
    if agent is None:
        raise invalid("agent_id", "agent not found in this organization", "agent_not_found")
    if agent.direction != "inbound":
        raise invalid("agent_id", "numbers are answered by inbound agents", "agent_wrong_direction")
    return agent.id


@bp.get("")
def list_numbers():
    rows = PhoneNumber.select().where(PhoneNumber.organization == g.org).order_by(PhoneNumber.number)
    return jsonify({"object": "list", "data": [number_to_dict(n) for n in rows]})


@bp.post("")
def create():
    body = json_body()
    reject_unknown(body, {"number", "agent_id", "label"}, "PhoneNumber")
    number = e164(body.get("number"), "number", current_app.config["VOXBRIDGE"].default_region)
    agent_id = _inbound_agent(body.get("agent_id"))
    label = optional_str(body, "label", 200)
    try:
        with database.atomic():
            row = PhoneNumber.create(organization=g.org, number=number, agent=agent_id, label=label)
    except peewee.IntegrityError:
        # Ownership elsewhere is not disclosed beyond the fact that the number is taken.
        raise ApiError(409, "number_taken", f"{number} is already assigned to an organization",
                       "number") from None
    return jsonify(number_to_dict(row)), 201


def _get(number_id: str) -> PhoneNumber:
    row = PhoneNumber.get_or_none(PhoneNumber.id == number_id, PhoneNumber.organization == g.org)
    if row is None:
        raise ApiError(404, "not_found", f"number {number_id} not found")
    return row


@bp.patch("/<number_id>")
def update(number_id: str):
    row = _get(number_id)
    body = json_body()
    reject_unknown(body, {"agent_id", "label"}, "PhoneNumber")
    if "agent_id" in body:
        row.agent = _inbound_agent(body["agent_id"])
    if "label" in body:
        row.label = optional_str(body, "label", 200)
    row.save()
    return jsonify(number_to_dict(row))


@bp.delete("/<number_id>")
def delete(number_id: str):
    _get(number_id).delete_instance()
    return "", 204
