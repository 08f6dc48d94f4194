"""Console pages for phone numbers and Custom SIP accounts (the card: Domain, our IPs, Verify with its four
checks, Reprovision with its warning, Delete). Changes go through /v1/numbers and /v1/sip-accounts."""
from __future__ import annotations

from flask import Blueprint, g, render_template

from api.sip_accounts import account_to_dict, get_account
from console.auth import login_required
from console.errors import html_errors
from models import TRANSPORTS, Agent, PhoneNumber, SipAccount

bp = html_errors(Blueprint("console_numbers", __name__, template_folder="templates"))


@bp.get("/console/numbers")
@login_required
def list_numbers():
    numbers = (PhoneNumber.select().where(PhoneNumber.organization == g.org).order_by(PhoneNumber.number))
    accounts = (SipAccount.select().where(SipAccount.organization == g.org, SipAccount.deleted_at.is_null())
                .order_by(SipAccount.created_at))
    inbound = (Agent.select().where(Agent.organization == g.org, Agent.direction == "inbound",
                                    Agent.deleted_at.is_null()).order_by(Agent.name))
    return render_template("numbers.html", numbers=list(numbers), accounts=list(accounts), inbound=list(inbound),
                           transports=TRANSPORTS)


@bp.get("/console/sip-accounts/<account_id>")
@login_required
def sip_account(account_id: str):
    account = get_account(account_id)  # 404 unless the account is the user's organization's
    numbers = PhoneNumber.select().where(PhoneNumber.sip_account == account).order_by(PhoneNumber.number)
    return render_template("sip_account.html", account=account_to_dict(account), numbers=list(numbers),
                           transports=TRANSPORTS)
