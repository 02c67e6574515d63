"""Country STOP policies: data (country_policies.toml), validated when loaded."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stopgate_server.domain.senders import SenderKind

POLICY_FILE = Path(__file__).with_name("country_policies.toml")
DEFAULT_COUNTRY = "*"
PLACEHOLDER = "00000"
CATEGORIES = frozenset({"MARKETING", "TRANSACTIONAL", "OPT_OUT_CONFIRMATION"})

# Between the words of a mention: spacing, punctuation and connecting words ("STOP au 36180",
# "Stop SMS 36180", "STOP to 60999", "BAJA al 36180").
_GAP = r"(?:[\s:=.\-]*\b(?:sms|au|to|at|an|al|allo|envoyez|send)\b)*[\s:=.\-]*"
_WORD = re.compile(r"\w+")
# What may follow a mention while it still counts as "at the end".
_TRAILING = re.compile(r"[\s.!;,)\]*]*")
# The text a policy's mention is appended to, as written and with this shortcode, to check it is found.
_SAMPLE_TEXT, _SAMPLE_SHORTCODE = "Soldes -50% ce week-end.", "36180"


class PolicyError(ValueError):
    """The policy file is invalid; the message names the entry and the field."""


@dataclass(frozen=True)
class MentionPattern:
    """A mention as the checker finds it in a text, derived from a mention_text: its words in that order, in
    any case, with spacing, punctuation or connecting words between them, and a shortcode of 3 to 8 digits
    (00000 itself included) where the placeholder is."""

    first_word: re.Pattern[str]
    whole: re.Pattern[str]

    @classmethod
    def of(cls, mention_text: str) -> MentionPattern:
        """The pattern of a mention_text that holds at least one word."""
        words = [
            r"\d{3,8}" if word == PLACEHOLDER else re.escape(word) for word in _WORD.findall(mention_text)
        ]
        return cls(
            re.compile(words[0], re.IGNORECASE),
            re.compile(_GAP.join(rf"\b{word}\b" for word in words), re.IGNORECASE),
        )

    def last(self, text: str) -> re.Match[str] | None:
        """The last mention of the text."""
        # Try the whole pattern only where its first word is found, last first: the first that matches is the
        # last mention (a hit can only hide another inside one word, where no mention starts).
        for candidate in reversed([m.start() for m in self.first_word.finditer(text)]):
            if (found := self.whole.match(text, candidate)) is not None:
                return found
        return None


def ends_text(text: str, mention: re.Match[str]) -> bool:
    """Whether only spaces and closing punctuation follow the mention."""
    return _TRAILING.fullmatch(text, mention.end()) is not None


# What the checker reports as a mention for a policy without a mention_text of its own.
DEFAULT_MENTION = MentionPattern.of(f"STOP {PLACEHOLDER}")


@dataclass(frozen=True)
class CountryPolicy:
    country: str
    stop_handled: bool
    mention_required_sender_types: frozenset[SenderKind]
    mention_required_categories: frozenset[str]
    operator_appends_mention: bool
    operator_fills_shortcode: bool
    mention_text: str
    unsubscribe_link_advised: bool
    description: str
    mention_pattern: MentionPattern  # derived from mention_text, compiled once at load

    def requires_mention(self, sender: SenderKind, category: str) -> bool:
        return (
            self.stop_handled
            and sender in self.mention_required_sender_types
            and category in self.mention_required_categories
        )


@dataclass(frozen=True)
class PolicyTable:
    version: str
    policies: tuple[CountryPolicy, ...]  # the default ("*") last

    def for_country(self, country: str) -> CountryPolicy:
        code = country.upper()
        for policy in self.policies:
            if policy.country in (code, DEFAULT_COUNTRY):
                return policy
        raise LookupError(country)  # unreachable: load() guarantees a default


_FIELDS = {
    "country": str,
    "stop_handled": bool,
    "mention_required_sender_types": list,
    "mention_required_categories": list,
    "operator_appends_mention": bool,
    "operator_fills_shortcode": bool,
    "mention_text": str,
    "unsubscribe_link_advised": bool,
    "description": str,
}


def _policy(entry: dict[str, Any], where: str) -> CountryPolicy:
    missing = sorted(set(_FIELDS) - set(entry))
    unknown = sorted(set(entry) - set(_FIELDS))
    if missing or unknown:
        raise PolicyError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    for field, kind in _FIELDS.items():
        if not isinstance(entry[field], kind):
            raise PolicyError(f"{where}.{field}: expected {kind.__name__}, got {entry[field]!r}")
    country = entry["country"]
    if country != DEFAULT_COUNTRY and not (len(country) == 2 and country.isalpha() and country.isupper()):
        raise PolicyError(f"{where}.country: expected an upper-case ISO 3166-1 alpha-2 code or '*'")
    try:
        sender_types = frozenset(SenderKind(name) for name in entry["mention_required_sender_types"])
    except ValueError as exc:
        raise PolicyError(f"{where}.mention_required_sender_types: {exc}") from None
    categories = frozenset(entry["mention_required_categories"])
    if not categories <= CATEGORIES:
        raise PolicyError(f"{where}.mention_required_categories: unknown {sorted(categories - CATEGORIES)}")
    mention_text = entry["mention_text"]
    if (sender_types or categories) and not mention_text.strip():
        raise PolicyError(f"{where}.mention_text: required when a mention is required")
    if entry["operator_fills_shortcode"] and PLACEHOLDER not in mention_text:
        raise PolicyError(f"{where}.mention_text: must hold the placeholder {PLACEHOLDER}")
    return CountryPolicy(
        country=country,
        stop_handled=entry["stop_handled"],
        mention_required_sender_types=sender_types,
        mention_required_categories=categories,
        operator_appends_mention=entry["operator_appends_mention"],
        operator_fills_shortcode=entry["operator_fills_shortcode"],
        mention_text=mention_text,
        unsubscribe_link_advised=entry["unsubscribe_link_advised"],
        description=" ".join(entry["description"].split()),
        mention_pattern=_mention_pattern(mention_text, f"{where}.mention_text"),
    )


def _mention_pattern(mention_text: str, where: str) -> MentionPattern:
    """The pattern of a mention_text, refused unless the checker finds the mention at the end of a text."""
    if not mention_text.strip():
        return DEFAULT_MENTION
    if not set(_WORD.findall(mention_text)) - {PLACEHOLDER}:
        raise PolicyError(f"{where}: needs a word besides the placeholder {PLACEHOLDER}, such as STOP")
    pattern = MentionPattern.of(mention_text)
    for written in (mention_text, mention_text.replace(PLACEHOLDER, _SAMPLE_SHORTCODE)):
        sample = f"{_SAMPLE_TEXT} {written}"
        found = pattern.last(sample)
        if found is None or found.start() < len(sample) - len(written) or not ends_text(sample, found):
            raise PolicyError(
                f'{where}: the checker would not find "{written}" at the end of a text (see mention_text at '
                f"the top of {POLICY_FILE.name})"
            )
    return pattern


def load(path: Path = POLICY_FILE) -> PolicyTable:
    """Read and validate a policy file (see the comment at the top of country_policies.toml)."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path.name}: {exc}") from None
    version = document.get("version")
    if not isinstance(version, str) or not version:
        raise PolicyError(f"{path.name}: `version` is required")
    entries = document.get("policy")
    if not isinstance(entries, list) or not entries:
        raise PolicyError(f"{path.name}: at least one [[policy]] is required")
    policies = [_policy(entry, f"{path.name}: policy[{i}]") for i, entry in enumerate(entries)]
    countries = [p.country for p in policies]
    if duplicates := sorted({c for c in countries if countries.count(c) > 1}):
        raise PolicyError(f"{path.name}: countries listed twice: {duplicates}")
    if DEFAULT_COUNTRY not in countries:
        raise PolicyError(f"{path.name}: a default policy (country = '*') is required")
    ordered = sorted(policies, key=lambda p: (p.country == DEFAULT_COUNTRY, p.country))
    return PolicyTable(version=version, policies=tuple(ordered))
