"""The text a phone number may be written in, checked before phonenumbers parses it.

phonenumbers.parse is lenient on purpose: it skips leading and trailing junk, whitespace and non-ASCII
digits, so "+14155559011\\n" or "+14155559011 <junk>" would normalize to a clean number and the junk would
be silently dropped. Every validator of a number that a user or an LLM supplies checks this grammar first,
matched whole (`fullmatch`; a `$` anchor would let a trailing newline through).
"""
from __future__ import annotations

import re

MAX_LENGTH = 40
# An optional +, ASCII digits, spaces and ( ) . - only; no letters (vanity numbers), tabs or newlines.
PHONE_TEXT = re.compile(r"\+?[0-9(][0-9 ().-]{1,38}")


def plausible_phone_text(value: object) -> bool:
    """True when `value` is a string written only with the characters a phone number is typed with."""
    return isinstance(value, str) and len(value) <= MAX_LENGTH and PHONE_TEXT.fullmatch(value) is not None
