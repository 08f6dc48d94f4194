"""/v1/sip-accounts: customers' own PBX trunks, their numbers, Verify and Reprovision."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify

from api.errors import ApiError, invalid
from api.numbers import number_to_dict
from api.validation import e164, json_body, optional_str, reject_unknown
from calls.representation import iso
from models import TRANSPORTS, PhoneNumber, SipAccount, database, utcnow
from sip import validation
from sip.provisioning import Provisioner
from sip.secrets_box import SecretBox, SecretsUnavailable

bp = Blueprint("sip_accounts", __name__, url_prefix="/v1/sip-accounts")

FIELDS = {"name", "sip_server", "transport", "country", "allowed_ips", "outbound_username", "outbound_password",
          "inbound_username", "inbound_password"}


def _box() -> SecretBox:
    return current_app.extensions["voxbridge.secret_box"]


def _provisioner() -> Provisioner:
    return current_app.extensions["voxbridge.provisioner"]


def account_to_dict(account: SipAccount) -> dict[str, Any]:
    config = current_app.config["VOXBRIDGE"]
    return {
        "id": account.id, "object": "sip_account", "name": account.name, "sip_server": account.sip_server,
        "transport": account.transport, "country": account.country,
        "allowed_ips": account.allowed_ips.split(",") if account.allowed_ips else [],
        "outbound_username": account.outbound_username,
        "outbound_auth": "digest" if account.outbound_password_enc else "ip",
        "outbound_enabled": bool(account.sip_server),
        "inbound_username": account.inbound_username,
        "inbound_auth": "digest" if account.inbound_password_enc else "ip_allow_list",
        "provisioned": account.provisioned, "provision_error": account.provision_error,
        "provisioned_at": iso(account.provisioned_at),
        # What the PBX administrator needs on their side: where to send INVITEs, whom to allow-list.
        "platform": {"sip_domain": config.sip_domain,
                     "outbound_addresses": [a.strip() for a in config.sip_outbound_addresses.split(",") if a.strip()],
                     "gateway_name": account.gateway_name},
        "created_at": iso(account.created_at), "updated_at": iso(account.updated_at),
    }


def _credential(fields: dict[str, Any], body: dict[str, Any], account: SipAccount | None, direction: str) -> None:
    """Apply one direction's username/password with the pair invariant and three-state password edit.

    Password field absent: keep the stored one. null or "": clear it (the username must go too).
    A value: replace it.
    """
    user_key, pass_key = f"{direction}_username", f"{direction}_password"
    try:
        if user_key in body:
            fields[user_key] = (validation.inbound_username(body[user_key]) if direction == "inbound"
                                else validation.username(body[user_key], user_key))
        if pass_key in body:
            plaintext = validation.password(body[pass_key], pass_key)
            fields[f"{pass_key}_enc"] = _box().encrypt(plaintext) if plaintext else None
    except validation.FieldInvalid as exc:
        raise invalid(exc.field, str(exc)) from None
    except SecretsUnavailable as exc:
        raise ApiError(422, "secrets_unavailable", str(exc), pass_key) from None
    username = fields.get(user_key, account.__data__.get(user_key) if account else None)
    has_password = fields.get(f"{pass_key}_enc", account.__data__.get(f"{pass_key}_enc") if account else None)
    if bool(username) != bool(has_password):
        missing = pass_key if username else user_key
        raise invalid(missing, f"{direction} username and password must be set together, or both left empty "
                               f"for {'IP trust' if direction == 'outbound' else 'the IP allow-list only'}",
                      "credential_pair")


def _fields(body: dict[str, Any], account: SipAccount | None) -> dict[str, Any]:
    reject_unknown(body, FIELDS, "SipAccount")
    fields: dict[str, Any] = {}
    if "name" in body or account is None:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise invalid("name", "name must be a non-empty string of at most 200 characters")
        fields["name"] = name.strip()
    try:
        if "sip_server" in body:
            fields["sip_server"] = validation.sip_server(body["sip_server"])
        if "allowed_ips" in body:
            fields["allowed_ips"] = validation.allowed_ips(body["allowed_ips"])
        if "country" in body:
            fields["country"] = validation.country(body["country"])
    except validation.FieldInvalid as exc:
        raise invalid(exc.field, str(exc)) from None
    if "transport" in body:
        if body["transport"] not in TRANSPORTS:
            raise invalid("transport", f"transport must be one of {', '.join(TRANSPORTS)}")
        fields["transport"] = body["transport"]
    _credential(fields, body, account, "outbound")
    _credential(fields, body, account, "inbound")
    return fields


def _unique_inbound_username(fields: dict[str, Any], account: SipAccount | None) -> None:
    """The PBX authenticates with the inbound username as a directory alias: it must be unique platform-wide."""
    name = fields.get("inbound_username")
    if not name:
        return
    clash = SipAccount.select().where(SipAccount.inbound_username == name, SipAccount.deleted_at.is_null())
    if account is not None:
        clash = clash.where(SipAccount.id != account.id)
    if clash.exists():
        raise ApiError(409, "inbound_username_taken", "this inbound username is already in use; choose another",
                       "inbound_username")


def _provision(account: SipAccount) -> None:
    result = _provisioner().provision(account)
    account.provisioned = result.ok
    account.provision_error = result.error
    account.provisioned_at = utcnow() if result.ok else account.provisioned_at
    account.save()


def get_account(account_id: str) -> SipAccount:
    account = SipAccount.get_or_none(SipAccount.id == account_id, SipAccount.organization == g.org,
                                     SipAccount.deleted_at.is_null())
    if account is None:
        raise ApiError(404, "not_found", f"SIP account {account_id} not found")
    return account


@bp.get("")
def list_accounts():
    rows = (SipAccount.select().where(SipAccount.organization == g.org, SipAccount.deleted_at.is_null())
            .order_by(SipAccount.created_at))
    return jsonify({"object": "list", "data": [account_to_dict(a) for a in rows]})


@bp.post("")
def create():
    fields = _fields(json_body(), None)
    _unique_inbound_username(fields, None)
    account = SipAccount.create(organization=g.org, **fields)
    _provision(account)
    return jsonify(account_to_dict(account)), 201


@bp.get("/<account_id>")
def read(account_id: str):
    return jsonify(account_to_dict(get_account(account_id)))


@bp.patch("/<account_id>")
def update(account_id: str):
    account = get_account(account_id)
    fields = _fields(json_body(), account)
    _unique_inbound_username(fields, account)
    for name, value in fields.items():
        setattr(account, name, value)
    account.updated_at = utcnow()
    account.save()
    _provision(account)
    return jsonify(account_to_dict(account))


@bp.delete("/<account_id>")
def delete(account_id: str):
    account = get_account(account_id)
    result = _provisioner().deprovision(account)
    with database.atomic():
        PhoneNumber.delete().where(PhoneNumber.sip_account == account).execute()
        account.deleted_at = utcnow()
        account.provisioned = False
        account.save()
    body = {"id": account.id, "object": "sip_account", "deleted": True}
    if not result.ok:
        body["warning"] = f"FreeSWITCH objects could not be removed now: {result.error}"
    return jsonify(body)


@bp.post("/<account_id>/numbers")
def bind_number(account_id: str):
    account = get_account(account_id)
    body = json_body()
    reject_unknown(body, {"number", "label"})
    number = e164(body.get("number"), "number", current_app.config["VOXBRIDGE"].default_region)
    label = optional_str(body, "label", 200)
    with database.atomic():
        existing = PhoneNumber.get_or_none(PhoneNumber.number == number)
        if existing is not None and existing.organization_id != g.org.id:
            # Say so, but not whose: the other organization's identity is not ours to show.
            raise ApiError(409, "number_bound_elsewhere",
                           f"{number} is in use by another organization on this platform; it cannot be bound "
                           "here (contact support if the number is yours)", "number")
        if existing is not None and existing.sip_account_id and existing.sip_account_id != account.id:
            raise ApiError(409, "number_bound_elsewhere",
                           f"{number} is already bound to your SIP account {existing.sip_account_id}; "
                           "unbind it there first", "number")
        if existing is None:
            existing = PhoneNumber.create(organization=g.org, number=number, sip_account=account, label=label)
        else:
            existing.sip_account = account
            existing.label = label if label is not None else existing.label
            existing.save()
    _provision(account)
    return jsonify({**number_to_dict(existing), "sip_account_id": account.id}), 201


@bp.get("/<account_id>/numbers")
def list_numbers(account_id: str):
    account = get_account(account_id)
    rows = PhoneNumber.select().where(PhoneNumber.sip_account == account).order_by(PhoneNumber.number)
    return jsonify({"object": "list", "data": [{**number_to_dict(n), "sip_account_id": account.id} for n in rows]})


@bp.delete("/<account_id>/numbers/<number_id>")
def unbind_number(account_id: str, number_id: str):
    account = get_account(account_id)
    row = PhoneNumber.get_or_none(PhoneNumber.id == number_id, PhoneNumber.sip_account == account)
    if row is None:
        raise ApiError(404, "not_found", f"number {number_id} is not bound to this account")
    row.delete_instance()
    _provision(account)
    return "", 204


@bp.post("/<account_id>/verify")
def verify(account_id: str):
    account = get_account(account_id)
    checks = _provisioner().verify(account)
    return jsonify({"id": account.id, "object": "sip_account_verification",
                    "ok": all(c.status != "failed" for c in checks), "checks": [c.as_dict() for c in checks]})


@bp.post("/<account_id>/reprovision")
def reprovision(account_id: str):
    account = get_account(account_id)
    provisioner = _provisioner()
    live = provisioner.live_calls(account)
    provisioner.deprovision(account)
    _provision(account)
    body = account_to_dict(account)
    if live:
        body["warning"] = f"{live} live call(s) used this account's gateway and were dropped by the reprovision"
    return jsonify(body)
