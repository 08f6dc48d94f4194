"""One call's view of its agent (calls/call_variables.py): texts rendered from the call, the stored agent unchanged;
the post-call analysis is told the call's prompt too."""
import datetime as dt
import json

from calls.call_variables import rendered_agent, values_for
from calls.media import MediaBridge
from models import Agent, Call, WebhookDelivery, utcnow

SCHEMA = {"type": "object", "properties": {"confirmed": {"type": "boolean"}}}


def make_agent(org, **fields):
    values = {"organization": org, "name": "Reminder", "direction": "outbound", "timezone": "America/New_York",
              "prompt": "Call {{name}} about {{slot}} for {{organization_name}}; it is {{current_time}}.",
              "greeting": "Hi {{name}}.", "variables": {"name": {"default": "there"}, "slot": {"default": None}},
              "settings": {"questions": ["Is {{slot}} ok?", {"key": "k", "text": "Still {{name}}?"}, 7],
                           "closing": "Bye {{name}}.", "silence_reprompt_s": 30},
              "analysis_schema": SCHEMA}
    return Agent.create(**{**values, **fields})


def make_call(org, agent, context):
    return Call.create(organization=org, agent=agent, direction="outbound", to_number="+14155550100",
                       from_number="+14155550000", status="in-progress", answered_at=utcnow(), context=context,
                       transcript=[{"speaker": "caller", "text": "yes"}])


def test_the_calls_copy_is_rendered_and_the_stored_agent_is_not(db, org):
    agent = make_agent(org)
    call = make_call(org, agent, {"slot": "Tuesday", "extra": {"nested": True}})
    now = dt.datetime(2026, 12, 7, 15, 5, tzinfo=dt.UTC)
    view = rendered_agent(agent, call, now)
    assert view.prompt == f"Call there about Tuesday for {org.name}; it is 10:05."
    assert view.greeting == "Hi there."
    assert view.settings["questions"] == ["Is Tuesday ok?", {"key": "k", "text": "Still there?"}, 7]
    assert view.settings["closing"] == "Bye there."
    stored = Agent.get_by_id(agent.id)
    assert stored.greeting == "Hi {{name}}." and stored.settings["questions"][0] == "Is {{slot}} ok?"
    assert values_for(agent, call, now)["called_number"] == "+14155550100"


class PromptLLM:
    def __init__(self):
        self.system_prompts = []

    def complete_json(self, system_prompt, user_text):
        self.system_prompts.append(system_prompt)
        return {"confirmed": True}


def test_the_analysis_is_told_the_calls_prompt(db, org):
    from config import load_config

    llm = PromptLLM()
    bridge = MediaBridge(load_config({"AUDIO_WS_LISTEN": "127.0.0.1:0"}), analysis_llm=lambda _agent: llm)
    call = make_call(org, make_agent(org), {"name": "Ada", "slot": "Friday"})
    bridge.finish_call(call.id)
    [system] = llm.system_prompts
    assert "Call Ada about Friday" in system and "{{" not in system
    data = json.loads(WebhookDelivery.get(WebhookDelivery.call_id == call.id).payload)["data"]
    assert data["answers"] == {"confirmed": True}


def test_a_tool_url_gets_the_calls_values_percent_encoded(db, org):
    tool = {"name": "slots", "url": "https://api.example.com/p/{{slot}}/x?who={{name}}", "method": "get"}
    agent = make_agent(org, tools=[tool])
    call = make_call(org, agent, {"slot": "1/../admin?x=1", "name": "Ada Lovelace"})
    view = rendered_agent(agent, call)
    assert view.tools[0]["url"] == "https://api.example.com/p/1%2F..%2Fadmin%3Fx%3D1/x?who=Ada%20Lovelace"
    assert Agent.get_by_id(agent.id).tools[0]["url"] == tool["url"]
