"""PCRE expressions as FreeSWITCH writes them, read by Python the same way."""
import pytest

from fsconf.pcre import PcreError, compile_pcre

SAME = [
    (r"^(?<num>\d+)$", "123", "123"),
    (r"^\+?1?(\d{10})\z", "+14155550100", "+14155550100"),
    (r"/^sip:.+$/i", "SIP:x", "SIP:x"),
    (r"^[[:digit:][:upper:]]+$", "12AB", "12AB"),
    (r"^\Q+1.5\E$", "+1.5", "+1.5"),
    (r"^a\h+b$", "a \tb", "a \tb"),
    (r"^(?'x'ab)\k<x>$", "abab", "abab"),
    (r"^[]a]+$", "]a]", "]a]"),
]


@pytest.mark.parametrize("expr,subject,matched", SAME)
def test_translation_matches_like_pcre(expr, subject, matched):
    match = compile_pcre(expr).search(subject)
    assert match is not None and match.group(0) == matched


def test_literal_dot_in_quoted_text_does_not_match_anything():
    assert compile_pcre(r"^\Q+1.5\E$").search("+1x5") is None


def test_capital_z_allows_a_final_newline_only():
    assert compile_pcre(r"^ab\Z").search("ab\n")
    assert compile_pcre(r"^ab\z").search("ab\n") is None


@pytest.mark.parametrize("expr", [r"^(\d+$", r"^[a-", r"(?R)", r"^[[:nope:]]$", r"a{2,1}", r"*a"])
def test_invalid_or_unsupported_raise(expr):
    with pytest.raises(PcreError):
        compile_pcre(expr)
