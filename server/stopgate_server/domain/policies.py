"""Country STOP policies: data (country_policies.toml), validated when loaded."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stopgate_server.domain.senders import SenderKind

POLICY_FILE = Path(__file__).with_name("country_policies.toml")
DEFAULT_COUNTRY = "*"
PLACEHOLDER = "00000"
CATEGORIES = frozenset({"MARKETING", "TRANSACTIONAL", "OPT_OUT_CONFIRMATION"})


class PolicyError(ValueError):
    """The policy file is invalid; the message names the entry and the field."""


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
    if (sender_types or categories) and not entry["mention_text"]:
        raise PolicyError(f"{where}.mention_text: required when a mention is required")
    if entry["operator_fills_shortcode"] and PLACEHOLDER not in entry["mention_text"]:
        raise PolicyError(f"{where}.mention_text: must hold the placeholder {PLACEHOLDER}")
    return CountryPolicy(
        country=country,
        stop_handled=entry["stop_handled"],
        mention_required_sender_types=sender_types,
        mention_required_categories=categories,
        operator_appends_mention=entry["operator_appends_mention"],
        operator_fills_shortcode=entry["operator_fills_shortcode"],
        mention_text=entry["mention_text"],
        unsubscribe_link_advised=entry["unsubscribe_link_advised"],
        description=" ".join(entry["description"].split()),
    )


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
