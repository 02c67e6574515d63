"""Keywords that admins add to a shortcode or a licence, on top of the built-in ones, and the reply each
suggests (what AWS End User Messaging and Twilio Advanced Opt-Out offer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from stopgate_server.domain import keywords
from stopgate_server.domain.keywords import Intent

MAX_KEYWORD = 40
MAX_WORDS = 3  # the longest keyword the classifier looks for, in words
MAX_REPLY = 160  # one SMS part in GSM-7: the free confirmation should cost no more
INTENTS = frozenset({Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP})


class Scope(Enum):
    SHORTCODE = "shortcode"
    LICENCE = "licence"


@dataclass(frozen=True)
class CustomKeyword:
    keyword: str  # as the admin wrote it
    intent: Intent
    scope: Scope
    scope_key: str  # the shortcode (ASCII digits) or the licence
    replies: dict[str, str] = field(default_factory=dict)  # ISO 639-1 language -> reply text
    updated_at: datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True)
class Applicable:
    """The custom keywords of one shortcode and licence: by normalised keyword, and as the classifier
    takes them (`custom` of `keywords.classify`; None when there are none)."""

    by_keyword: dict[str, CustomKeyword]
    for_classifier: dict[str, tuple[Intent, str]] | None


NONE_APPLICABLE = Applicable({}, None)


class KeywordBook:
    """Every custom keyword, by shortcode and by licence, as one server process holds them (replaced as a
    whole when they change, never modified)."""

    def __init__(self, custom: list[CustomKeyword] | None = None, revision: int = -1) -> None:
        self.revision = revision
        self._by_scope: dict[tuple[Scope, str], dict[str, CustomKeyword]] = {}
        for keyword in custom or []:
            # normalised again here, as the classifier reads texts now
            key = keywords.normalise(keyword.keyword)
            self._by_scope.setdefault((keyword.scope, keyword.scope_key), {})[key] = keyword
        self._applicable: dict[tuple[str, str], Applicable] = {}

    def __len__(self) -> int:
        return sum(map(len, self._by_scope.values()))

    def applicable(self, shortcode: str, licence_id: str) -> Applicable:
        """The keywords of a shortcode and of a licence (the shortcode's first when both define one); the
        common case, neither has any, costs two dict look-ups."""
        of_licence = self._by_scope.get((Scope.LICENCE, licence_id)) if licence_id else None
        of_shortcode = self._by_scope.get((Scope.SHORTCODE, shortcode)) if shortcode else None
        if of_licence is None and of_shortcode is None:
            return NONE_APPLICABLE
        found = self._applicable.get((shortcode, licence_id))
        if found is None:
            merged = {**(of_licence or {}), **(of_shortcode or {})}
            classifier = {key: (k.intent, k.keyword) for key, k in merged.items()}
            found = self._applicable[shortcode, licence_id] = Applicable(merged, classifier)
        return found
