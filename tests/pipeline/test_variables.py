"""{{name}} placeholders: finding, rendering, sanitizing, built-ins and precedence."""
import datetime as dt

from pipeline.variables import (
    BUILT_INS,
    MAX_VALUE_CHARS,
    built_in_values,
    call_values,
    missing_required,
    placeholders,
    render,
    sanitize,
    unknown_placeholders,
    valid_timezone,
)


def test_placeholders_are_found_once_each_in_order_with_spaces_inside_the_braces():
    assert placeholders("Hi {{name}}, {{ order_id }} for {{name}}; {{ 9bad }} {{a-b}} {name}") == ["name", "order_id"]
    assert placeholders(None) == []


def test_render_fills_values_and_never_leaves_braces():
    assert render("Hi {{name}}!", {"name": "Ada"}) == "Hi Ada!"
    assert render("Hi {{ name }}, your order {{order}} is ready.", {"name": "Ada", "order": 42}) == \
        "Hi Ada, your order 42 is ready."
    assert render("Hi {{name}}, welcome.", {}) == "Hi, welcome."
    assert render("Hi {{name}}", {"name": {"nested": 1}}) == "Hi"
    assert render("no placeholders", {"name": "x"}) == "no placeholders"


def test_values_are_plain_bounded_text():
    assert sanitize("Ada\r\nsendmsg\x00 uuid_kill\x1b[31m\u2028x") == "Ada sendmsg uuid_kill [31m x"
    assert sanitize("  lots   of\tspace ") == "lots of space"
    assert len(sanitize("x" * 10_000)) == MAX_VALUE_CHARS
    assert sanitize(True) == "yes" and sanitize(3.5) == "3.5" and sanitize(None) == ""
    assert render("Hi {{name}}", {"name": "{{call_id}}\n"}) == "Hi call_id"  # never a placeholder, never braces


def test_built_ins_use_the_agent_time_zone():
    now = dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.UTC)
    values = built_in_values(caller="+14155550100", called="+14155550199", organization="Acme", agent="Desk",
                             call_id="c1", timezone="Europe/Berlin", now=now)
    assert set(values) == set(BUILT_INS)
    assert values["current_date"] == "Monday 7 December 2026" and values["current_time"] == "00:30"
    assert values["current_weekday"] == "Monday" and values["timezone"] == "Europe/Berlin"
    assert built_in_values(caller=None, called=None, organization=None, agent=None, call_id=None,
                           timezone="Not/AZone", now=now)["current_time"] == "23:30"


def test_precedence_defaults_then_context_then_built_ins():
    declared = {"name": {"default": "there"}, "plan": {"default": "basic"}, "order": {"default": None}}
    values = call_values(declared, {"plan": "gold", "agent_name": "spoof", "deep": {"x": 1}},
                         {"agent_name": "Desk"})
    assert values == {"name": "there", "plan": "gold", "agent_name": "Desk"}


def test_unknown_and_missing_variables():
    texts = {"prompt": "You call {{name}} on {{current_date}}", "greeting": "Hi {{nick}}"}
    assert unknown_placeholders(texts, ["name"]) == {"greeting": ["nick"]}
    declared = {"name": {"default": None}, "plan": {"default": "basic"}}
    assert missing_required(declared, {}) == ["name"]
    assert missing_required(declared, {"name": "  "}) == ["name"]
    assert missing_required(declared, {"name": ["Ada"]}) == ["name"]
    assert missing_required(declared, {"name": "Ada"}) == []


def test_time_zone_names_are_checked_with_zoneinfo():
    assert valid_timezone("Europe/Berlin") and valid_timezone("UTC")
    assert not valid_timezone("Mars/Olympus") and not valid_timezone("../../etc/passwd") and not valid_timezone(3)
