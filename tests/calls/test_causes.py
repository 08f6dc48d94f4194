"""The hangup-cause table, as the captures from a real FreeSWITCH report causes."""
import pytest

from calls.causes import outcome_for
from models import BUSY, CANCELED, COMPLETED, FAILED, NO_ANSWER


@pytest.mark.parametrize("cause, sip, status, retry", [
    ("USER_BUSY", 486, BUSY, True),
    ("NO_ANSWER", None, NO_ANSWER, True),
    ("NORMAL_TEMPORARY_FAILURE", 503, FAILED, True),
    ("CALL_REJECTED", None, FAILED, False),
    ("UNALLOCATED_NUMBER", 404, FAILED, False),
    ("INVALID_GATEWAY", None, FAILED, False),
    ("MANAGER_REQUEST", None, CANCELED, False),
    ("SOMETHING_NEW", None, FAILED, False),
    ("NORMAL_CLEARING", 486, BUSY, True),  # a telling SIP code beats a generic cause
    ("NORMAL_CLEARING", None, NO_ANSWER, True),
    # The far end answered and hung up before the loopback A-leg saw the answer (a live run): picked up, so
    # completed and never dialed again, not a retryable no-answer "(SIP 200)".
    ("NORMAL_CLEARING", 200, COMPLETED, False),
])
def test_unanswered_causes(cause, sip, status, retry):
    outcome = outcome_for(cause, sip)
    assert (outcome.status, outcome.retryable) == (status, retry)


def test_answered_calls_complete_whatever_the_cause():
    for cause in ("NORMAL_CLEARING", "MEDIA_TIMEOUT", "USER_BUSY"):
        assert outcome_for(cause, 200, answered=True).status == COMPLETED
        assert outcome_for(cause, 200, answered=True).retryable is False


def test_causes_seen_in_the_captures_are_all_mapped(captures_dir):
    import json
    import re

    seen = set()
    for path in captures_dir.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            data = json.loads(line).get("data") or ""
            seen |= set(re.findall(r"Hangup-Cause: ([A-Z_]+)", data))
            seen |= set(re.findall(r'"Hangup-Cause":\\s*"([A-Z_]+)"', data))
            seen |= set(re.findall(r"-ERR ([A-Z_]{5,})", data))
    assert seen, "the captures should report hangup causes"
    unknown = {c for c in seen if outcome_for(c).meaning == "unrecognized hangup cause"}
    assert not unknown
