"""The verdict rules, one row per case."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from stopgate_server.domain.verdicts import Decision, Reason, Verdict, decide

Q = datetime(2026, 1, 1, tzinfo=UTC)
S = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("e164", "quarantined", "stop_listed", "claimed", "expected"),
    [
        (None, None, None, False, Decision(Verdict.INVALID, Reason.INVALID_NUMBER)),
        (None, Q, S, True, Decision(Verdict.INVALID, Reason.INVALID_NUMBER)),
        ("+33612345678", None, None, False, Decision(Verdict.ALLOW)),
        ("+33612345678", None, None, True, Decision(Verdict.ALLOW)),
        ("+33612345678", Q, None, False, Decision(Verdict.BLOCK, Reason.QUARANTINED, Q)),
        ("+33612345678", None, S, False, Decision(Verdict.BLOCK, Reason.SHORTCODE_STOP_LIST, S)),
        ("+33612345678", Q, S, False, Decision(Verdict.BLOCK, Reason.QUARANTINED, Q)),
        ("+33612345678", Q, None, True, Decision(Verdict.ALLOW, Reason.CONFIRMATION_WINDOW)),
        ("+33612345678", Q, S, True, Decision(Verdict.ALLOW, Reason.CONFIRMATION_WINDOW)),
    ],
)
def test_decide(
    e164: str | None,
    quarantined: datetime | None,
    stop_listed: datetime | None,
    claimed: bool,
    expected: Decision,
) -> None:
    assert decide(e164, quarantined, stop_listed, claimed) == expected
