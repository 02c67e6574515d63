"""Shortcodes bound to the licences that use them. A shortcode's stop list belongs to the shortcode and
blocks every licence sending through it; a caller limited to licences may use and see it only when the
shortcode is bound to one of its licences (SECURITY.md, "Shortcodes and licences")."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Binding:
    licence_id: str
    shortcode: str  # ASCII digits
    bound_at: datetime
    bound_by: str


class BindingSet:
    """Every (licence, shortcode) binding, as one server process holds them: replaced as a whole when they
    change, never modified, so a check reads one consistent set without a lock."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), revision: int = -1) -> None:
        self.revision = revision
        self._pairs = frozenset(pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def allows(self, licences: Collection[str], shortcode: str) -> bool:
        """Whether `shortcode` is bound to one of `licences`."""
        return any((licence, shortcode) in self._pairs for licence in licences)
