"""Console pages for the organization: usage (minutes), webhook settings with a test event and the delivery
log, and API keys (issue, revoke). Changes go through /v1/organization, /v1/webhook-deliveries, /v1/api-keys."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from flask import Blueprint, g, render_template

from api.deliveries import _attempts_of
from console.auth import login_required
from console.errors import html_errors
from models import Agent, ApiKey, Call, Organization, WebhookDelivery, utcnow
from models.tenancy import KEY_PREFIX

bp = html_errors(Blueprint("console_settings", __name__, template_folder="templates"))

USAGE_DAYS = 30
DELIVERIES_SHOWN = 50


@bp.get("/console/usage")
@login_required
def usage():
    org = Organization.get_by_id(g.org.id)  # fresh: minutes change while the session's copy is cached
    since = (utcnow() - dt.timedelta(days=USAGE_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    per_day: dict[dt.date, int] = defaultdict(int)
    per_agent: dict[str, int] = defaultdict(int)
    calls = (Call.select(Call.ended_at, Call.billed_minutes, Call.agent)
             .where(Call.organization == org, Call.ended_at >= since, Call.billed_minutes > 0))
    for call in calls:
        per_day[call.ended_at.date()] += call.billed_minutes
        per_agent[call.agent_id] += call.billed_minutes
    names = {a.id: a.name for a in Agent.select(Agent.id, Agent.name).where(Agent.organization == org)}
    return render_template("usage.html", org=org, days=sorted(per_day.items(), reverse=True),
                           agents=sorted(((names.get(k, k or "(none)"), v) for k, v in per_agent.items()),
                                         key=lambda row: -row[1]),
                           usage_days=USAGE_DAYS)


@bp.get("/console/webhooks")
@login_required
def webhooks():
    org = Organization.get_by_id(g.org.id)
    rows = list(WebhookDelivery.select().where(WebhookDelivery.organization == org)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(DELIVERIES_SHOWN))
    attempts = _attempts_of([r.id for r in rows])
    return render_template("webhooks.html", org=org, deliveries=rows, attempts=attempts, shown=DELIVERIES_SHOWN)


@bp.get("/console/api-keys")
@login_required
def api_keys():
    keys = ApiKey.select().where(ApiKey.organization == g.org.id).order_by(ApiKey.created_at, ApiKey.id)
    return render_template("api_keys.html", keys=list(keys), key_prefix=KEY_PREFIX)
