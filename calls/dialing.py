"""The outbound dialing rules, enforced by the app before anything is dialed, on every path.

Outbound calls leave in one of these ways (PATHS):
  - default:  originate loopback/<number>/voxbridge_outbound (no OUTBOUND_GATEWAY, no trunk)
  - gateway:  originate sofia/gateway/<OUTBOUND_GATEWAY>/<number> (the platform trunk)
  - trunk:    originate sofia/gateway/vb_gw_<id>/<number> (the organization's provisioned SIP account)
  - transfer: uuid_transfer into voxbridge_transfer (bridge) or uuid_deflect, a SIP REFER (refer)
Only the default path and bridge transfers run through dialplan/outbound.xml; a gateway originate goes
straight to sofia and a REFER hands the number to the far end. So the rules of that context are also
checked here, identically, before every originate and every transfer (the dialplan stays as the second
line on the paths that pass it): emergency numbers refused, the number normalized to E.164 the same way,
international destinations refused unless INTERNATIONAL_CALLS is on. tests/calls/test_dialing.py runs a
table of numbers through both this module and the shipped dialplan and requires the same decisions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

# dialplan/outbound.xml's vb_emergency_numbers (a test keeps the two lists equal).
EMERGENCY_NUMBERS = ("112", "911", "999", "000", "110", "119", "118", "15", "17", "18", "933")
_EMERGENCY = re.compile(r"^\+?(" + "|".join(EMERGENCY_NUMBERS) + r")$")
_INTERNATIONAL_FORMAT = re.compile(r"^(?:\+|00)([1-9][0-9]{6,14})$")   # extension normalize_international_format
_NATIONAL_FORMAT = re.compile(r"^0?([1-9][0-9]{5,13})$")                # extension normalize_national_format
_COUNTRY_CODE = re.compile(r"^[1-9][0-9]{0,2}$")

# What each outbound path is and whether the dialplan's rules run on it besides this module's check.
PATHS: dict[str, tuple[str, bool]] = {
    "default": ("originate loopback/<number>/voxbridge_outbound, then the dialplan bridges to "
                "vb_default_gateway", True),
    "gateway": ("originate sofia/gateway/<OUTBOUND_GATEWAY>/<number>", False),
    "trunk": ("originate sofia/gateway/vb_gw_<id>/<number> (the organization's provisioned SIP account)", False),
    "transfer-bridge": ("uuid_transfer into voxbridge_transfer, which re-enters voxbridge_outbound", True),
    "transfer-refer": ("uuid_deflect: a SIP REFER, the far end dials the number", False),
}
RULES = ("emergency", "invalid_number", "international_disabled")


@dataclass(frozen=True)
class DialRules:
    """The organization-independent settings the rules read (config: DEFAULT_REGION, INTERNATIONAL_CALLS)."""

    country_code: str
    international_enabled: bool

    @classmethod
    def from_config(cls, config) -> DialRules:
        return cls(str(phonenumbers.country_code_for_region(config.default_region)), bool(config.international_calls))


@dataclass(frozen=True)
class Refusal:
    """Why a number may not be dialed: the rule (the dialplan's vb_reject_reason) and the hangup cause
    the dialplan would have used."""

    rule: str
    cause: str
    reason: str


def normalize(number: str, country_code: str) -> str | None:
    """E.164 as voxbridge_outbound normalizes it, or None when it cannot (the invalid_number rule)."""
    match = _INTERNATIONAL_FORMAT.match(number)
    if match:
        return f"+{match.group(1)}"
    match = _NATIONAL_FORMAT.match(number)
    if match and _COUNTRY_CODE.match(country_code or ""):
        return f"+{country_code}{match.group(1)}"
    return None


def check(number: str, rules: DialRules) -> Refusal | None:
    """None when `number` may be dialed, else the first rule it breaks (the dialplan's order)."""
    if _EMERGENCY.match(number):
        return Refusal("emergency", "CALL_REJECTED",
                       f"{number} is an emergency number: an AI agent never places these calls")
    e164 = normalize(number, rules.country_code)
    if e164 is None:
        return Refusal("invalid_number", "INVALID_NUMBER_FORMAT", f"{number!r} is not a dialable number")
    domestic = bool(_COUNTRY_CODE.match(rules.country_code or "")) and re.match(
        rf"^\+{rules.country_code}[0-9]", e164) is not None
    if not rules.international_enabled and not domestic:
        return Refusal("international_disabled", "CALL_REJECTED",
                       f"{e164} is outside country code +{rules.country_code} and international calls are off "
                       "(INTERNATIONAL_CALLS=false)")
    return None


def describe_paths(rules: DialRules, outbound_gateway: str) -> list[str]:
    """check-config's summary: which rules apply on which path, with the settings in force."""
    intl = "allowed" if rules.international_enabled else f"refused outside +{rules.country_code}"
    lines = [f"outbound rules ({', '.join(RULES)}; international: {intl}) apply on every path:"]
    for name, (how, dialplan) in PATHS.items():
        where = "app before dialing + dialplan/outbound.xml" if dialplan else "app before dialing"
        active = ""
        if name == "gateway":
            active = (f" [OUTBOUND_GATEWAY={outbound_gateway}]" if outbound_gateway
                      else " [unused: OUTBOUND_GATEWAY empty]")
        elif name == "default" and outbound_gateway:
            active = " [unused for originates: OUTBOUND_GATEWAY is set]"
        lines.append(f"  {name:<16} {where:<45} {how}{active}")
    return lines
