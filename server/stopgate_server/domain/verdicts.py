"""The verdict for one number of a check, from what blocks it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

CONFIRMATION_WINDOW = timedelta(minutes=5)
"""After a STOP, one confirmation (category OPT_OUT_CONFIRMATION) may still be sent within this window."""


class Category(Enum):
    """What a message is for: only OPT_OUT_CONFIRMATION may pass a quarantine (once, see decide)."""

    MARKETING = "MARKETING"
    TRANSACTIONAL = "TRANSACTIONAL"
    OPT_OUT_CONFIRMATION = "OPT_OUT_CONFIRMATION"


class Verdict(Enum):
    ALLOW = "ALLOW"
    BLOCK = "BLOCK"
    INVALID = "INVALID"


class Reason(Enum):
    NONE = "NONE"
    QUARANTINED = "QUARANTINED"
    SHORTCODE_STOP_LIST = "SHORTCODE_STOP_LIST"
    INVALID_NUMBER = "INVALID_NUMBER"
    CONFIRMATION_WINDOW = "CONFIRMATION_WINDOW"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: Reason = Reason.NONE
    since: datetime | None = None


ALLOW = Decision(Verdict.ALLOW)
INVALID = Decision(Verdict.INVALID, Reason.INVALID_NUMBER)


def decide(
    e164: str | None,
    quarantined_since: datetime | None,
    stop_listed_since: datetime | None,
    confirmation_claimed: bool = False,
) -> Decision:
    """Invalid numbers are never allowed. A number in the licence's quarantine, or on the sending
    shortcode's stop list, is blocked (the licence quarantine is reported first), unless its one free
    confirmation was just claimed for it."""
    if e164 is None:
        return INVALID
    if quarantined_since is None and stop_listed_since is None:
        return ALLOW
    if confirmation_claimed:
        return Decision(Verdict.ALLOW, Reason.CONFIRMATION_WINDOW)
    if quarantined_since is not None:
        return Decision(Verdict.BLOCK, Reason.QUARANTINED, quarantined_since)
    return Decision(Verdict.BLOCK, Reason.SHORTCODE_STOP_LIST, stop_listed_since)
