"""The change feed's values: a change of the block lists, and the cursor that resumes the feed after it.

A position in the feed is a tick (a batch of committed changes, store/migrations/0013_change_feed.sql) and,
within it, the id of the last change delivered; a position at the end of a tick has no change id. Cursors
are those positions written out: "<tick>" (the end of a tick) or "<tick>.<change id>".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import NamedTuple

from stopgate_server.domain.ingest import Source

_CURSOR = re.compile(r"([1-9][0-9]{0,17})(?:\.([1-9][0-9]{0,17}))?")


class ChangeKind(Enum):
    QUARANTINED = "QUARANTINED"  # a licence's quarantine gained the number
    RELEASED = "RELEASED"  # ... lost it (an opt-in, or an administrator's release)
    STOP_LISTED = "STOP_LISTED"  # a shortcode's stop list gained the number
    STOP_LIST_REMOVED = "STOP_LIST_REMOVED"  # ... lost it (an opt-in to the shortcode)

    @classmethod
    def of(cls, quarantine: bool, added: bool) -> ChangeKind:
        return _KINDS[quarantine, added]


_KINDS = {
    (True, True): ChangeKind.QUARANTINED,
    (True, False): ChangeKind.RELEASED,
    (False, True): ChangeKind.STOP_LISTED,
    (False, False): ChangeKind.STOP_LIST_REMOVED,
}


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class Position:
    """Where a consumer is: after change `change_id` of `tick`, or after the whole tick (None). Positions
    are ordered as the feed is: the end of a tick comes after each of its changes."""

    tick: int
    change_id: int | None = None

    def __lt__(self, other: Position) -> bool:
        return self._key() < other._key()

    def _key(self) -> tuple[int, float]:
        return self.tick, float("inf") if self.change_id is None else self.change_id

    def cursor(self) -> str:
        return str(self.tick) if self.change_id is None else f"{self.tick}.{self.change_id}"

    @classmethod
    def parse(cls, cursor: str) -> Position | None:
        """The position a cursor holds, or None when it is not one."""
        match = _CURSOR.fullmatch(cursor)
        if match is None:
            return None
        return cls(int(match[1]), None if match[2] is None else int(match[2]))


class Change(NamedTuple):
    """One change of a block list. For a removal, `since`, `source`, `campaign_id` and `event_id` describe
    the entry removed. `shortcode` is set for a stop list's change, `licence_id` for a quarantine's. (A
    NamedTuple: a feed builds thousands a second.)"""

    position: Position
    kind: ChangeKind
    licence_id: str
    shortcode: str
    phone: str
    changed_at: datetime
    since: datetime
    source: Source | None
    campaign_id: str
    event_id: str

    @property
    def change_id(self) -> int:
        assert self.position.change_id is not None
        return self.position.change_id
