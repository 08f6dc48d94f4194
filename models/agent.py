"""Voice agents: who answers or places a call, and how it talks."""
from __future__ import annotations

import peewee

from models.base import BaseModel, JSONField, new_id, utcnow
from models.tenancy import Organization

DIRECTIONS = ("inbound", "outbound")


class Agent(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    organization = peewee.ForeignKeyField(Organization, backref="agents", on_delete="CASCADE")
    name = peewee.CharField(max_length=200)
    direction = peewee.CharField(max_length=10)
    prompt = peewee.TextField(default="")
    greeting = peewee.TextField(default="")
    voice = peewee.CharField(max_length=100, default="")
    language = peewee.CharField(max_length=20, default="en-US")
    # {{name}} placeholders the agent's texts may use beyond the built-ins: {name: {"default", "description"}}
    # (pipeline/variables.py); migration 8, like timezone (IANA name: current_date/current_time are local).
    variables = JSONField(default=dict)
    timezone = peewee.CharField(max_length=64, default="UTC")
    stt = JSONField(default=dict)
    llm = JSONField(default=dict)
    tts = JSONField(default=dict)
    # Turn-taking and script settings: barge_in, silence_reprompt_s, max_duration_s, questions...
    settings = JSONField(default=dict)
    analysis_schema = JSONField(null=True)
    # Customer HTTP tools [{name, description, parameters, method, url, timeout_s, headers}] and keypad options
    # {"send_dtmf": bool}: pipeline/tools/definitions.py. Null on agents made before migration 9: none.
    tools = JSONField(null=True)
    keypad = JSONField(null=True)
    active = peewee.BooleanField(default=True)
    deleted_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("organization", "direction", "active"), False),)
