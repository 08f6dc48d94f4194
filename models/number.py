"""Phone numbers (DIDs) owned by organizations; inbound calls to them reach an agent."""
from __future__ import annotations

import peewee

from models.agent import Agent
from models.base import BaseModel, new_id, utcnow
from models.sip_account import SipAccount
from models.tenancy import Organization


class PhoneNumber(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    organization = peewee.ForeignKeyField(Organization, backref="numbers", on_delete="CASCADE")
    number = peewee.CharField(max_length=20, unique=True)
    agent = peewee.ForeignKeyField(Agent, null=True, on_delete="SET NULL")
    label = peewee.CharField(max_length=200, null=True)
    # Set when the number is bound to a customer's SIP account (its PBX sends and receives it).
    sip_account = peewee.ForeignKeyField(SipAccount, null=True, backref="numbers", on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow)
