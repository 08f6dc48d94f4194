"""calls/dialing.py decides like dialplan/outbound.xml: the same numbers refused for the same reason."""
import re

import pytest

from calls import dialing
from calls.dialing import DialRules
from fsconf.dialplan import Dialplan
from tests.fsconf.conftest import CONF, DIALPLAN

NUMBERS = ["+14155550100", "14155550100", "0014155550100", "4155550100", "+12425550100", "+442071234567",
           "00442071234567", "0301234567", "+4930123456", "911", "+911", "112", "+112", "000", "15", "933",
           "12ab", "", "+1", "123", "sip:evil@example.com", "+999", "9110", "+4915112345678"]
SETTINGS = [DialRules("1", False), DialRules("1", True), DialRules("49", False), DialRules("44", False),
            DialRules("", False)]


@pytest.fixture(scope="module")
def dialplan():
    return Dialplan.load(CONF, DIALPLAN, env={"OUTBOUND_GATEWAY": "carrier_default"})


def _dialplan_decision(dialplan, number: str, rules: DialRules) -> str | None:
    variables = {"vb_gateway": "carrier_default",
                 "vb_international_enabled": "true" if rules.international_enabled else "false"}
    if rules.country_code:
        variables["vb_country_code"] = rules.country_code
    result = dialplan.hunt("voxbridge_outbound", number, variables)
    if result.extension == "dial_gateway":
        return None
    return result.variables.get("vb_reject_reason", result.extension)


@pytest.mark.parametrize("rules", SETTINGS, ids=lambda r: f"cc{r.country_code or 'none'}-intl{r.international_enabled}")
def test_the_app_and_the_dialplan_refuse_the_same_numbers_for_the_same_reason(dialplan, rules):
    for number in NUMBERS:
        refusal = dialing.check(number, rules)
        assert (refusal.rule if refusal else None) == _dialplan_decision(dialplan, number, rules), number


def test_the_emergency_list_is_the_dialplans():
    text = (DIALPLAN / "outbound.xml").read_text()
    listed = re.search(r'data="vb_emergency_numbers=([0-9|]+)"', text).group(1).split("|")
    assert tuple(listed) == dialing.EMERGENCY_NUMBERS


@pytest.mark.parametrize("number, rule, cause", [
    ("+442079460000", "international_disabled", "CALL_REJECTED"),
    ("911", "emergency", "CALL_REJECTED"),
    ("+112", "emergency", "CALL_REJECTED"),
    ("12ab", "invalid_number", "INVALID_NUMBER_FORMAT"),
])
def test_refusals_carry_the_rule_and_the_dialplans_cause(number, rule, cause):
    refusal = dialing.check(number, DialRules("1", False))
    assert (refusal.rule, refusal.cause) == (rule, cause)
    assert number.lstrip("0") in refusal.reason or rule == "invalid_number"


def test_rules_follow_the_configuration():
    from config import load_config

    assert DialRules.from_config(load_config({"DEFAULT_REGION": "GB"})) == DialRules("44", False)
    assert DialRules.from_config(load_config({"INTERNATIONAL_CALLS": "true"})) == DialRules("1", True)


def test_check_config_lists_which_rules_apply_on_which_path():
    lines = dialing.describe_paths(DialRules("1", False), "carrier1")
    assert "international: refused outside +1" in lines[0]
    by_path = {line.split()[0]: line for line in lines[1:]}
    assert set(by_path) == set(dialing.PATHS)
    assert "dialplan/outbound.xml" in by_path["default"] and "dialplan/outbound.xml" not in by_path["gateway"]
    assert "[OUTBOUND_GATEWAY=carrier1]" in by_path["gateway"]
    assert all("app before dialing" in line for line in by_path.values())
