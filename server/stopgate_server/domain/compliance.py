"""The STOP-mention rules of a text for its destination country, and what it costs in SMS parts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from stopgate_server.domain import segments
from stopgate_server.domain.policies import (
    DEFAULT_MENTION,
    PLACEHOLDER,
    CountryPolicy,
    MentionPattern,
    ends_text,
)
from stopgate_server.domain.segments import Encoding, Segments
from stopgate_server.domain.senders import SenderKind

_LINK = re.compile(r"https?://\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S+", re.IGNORECASE)

# GSM-7 stand-ins for characters that would switch a text to UCS-2.
TYPOGRAPHIC_REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u2022": "-", "\t": " ",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2002": " ", "\u2003": " ", "\u200b": "",
}  # fmt: skip
# Lossy replacements (accents dropped), used only when the caller allows them.
ACCENT_REPLACEMENTS = {
    "ç": "c", "â": "a", "ê": "e", "î": "i", "ô": "o", "û": "u", "ë": "e", "ï": "i", "ÿ": "y",
    "á": "a", "í": "i", "ó": "o", "ú": "u", "ã": "a", "õ": "o", "ý": "y", "œ": "oe", "Œ": "OE",
    "À": "A", "Â": "A", "È": "E", "Ê": "E", "Ë": "E", "Î": "I", "Ï": "I", "Ô": "O", "Û": "U", "Ù": "U",
    "Á": "A", "Í": "I", "Ó": "O", "Ú": "U", "Ã": "A", "Õ": "O",
}  # fmt: skip


class Verdict(Enum):
    COMPLIANT = "COMPLIANT"
    WILL_BE_AMENDED = "WILL_BE_AMENDED"
    NON_COMPLIANT = "NON_COMPLIANT"
    NOT_APPLICABLE = "NOT_APPLICABLE"


class Position(Enum):
    END = "END"
    ELSEWHERE = "ELSEWHERE"
    ABSENT = "ABSENT"


class Severity(Enum):
    ERROR = "ERROR"
    ADVISORY = "ADVISORY"


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    severity: Severity


@dataclass(frozen=True)
class Mention:
    position: Position
    text: str = ""
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class Ucs2Character:
    character: str
    replacement: str
    occurrences: int


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    violations: list[Violation]
    mention_required: bool
    mention: Mention
    segments: Segments
    suggested_text: str
    suggested_segments: Segments
    delivered_text: str
    delivered_segments: Segments
    ucs2_characters: list[Ucs2Character] = field(default_factory=list)
    replaced_text: str = ""
    parts_saved_by_replacements: int = 0


def find_mention(text: str, pattern: MentionPattern = DEFAULT_MENTION) -> Mention:
    """The last mention of the text (a policy's mention_pattern, "STOP 00000" by default) and where it is."""
    last = pattern.last(text)
    if last is None:
        return Mention(Position.ABSENT)
    position = Position.END if ends_text(text, last) else Position.ELSEWHERE
    return Mention(position, last.group(0), last.start(), last.end())


def _append(text: str, mention: str) -> str:
    return f"{text.rstrip()} {mention}" if text.strip() else mention


def ucs2_characters(text: str, allow_accent_folding: bool) -> list[Ucs2Character]:
    """Characters that force UCS-2, in order of appearance, with their GSM-7 replacement ("" if none)."""
    outside = sorted(set(text) - segments.GSM7_ALL, key=text.index)
    replacements = ACCENT_REPLACEMENTS if allow_accent_folding else {}
    return [
        Ucs2Character(c, TYPOGRAPHIC_REPLACEMENTS.get(c, replacements.get(c, "")), text.count(c))
        for c in outside
    ]


def assess(
    text: str,
    policy: CountryPolicy,
    sender: SenderKind,
    category: str,
    shortcode: str = "",
    allow_accent_folding: bool = False,
) -> Assessment:
    """Check a text against its country's policy: verdict, violations, suggestion, operator preview, parts."""
    mention = find_mention(text, policy.mention_pattern)
    required = policy.requires_mention(sender, category)
    written_segments = segments.count(text)
    # The mention to suggest: with the shortcode written in, unless the operator fills the placeholder.
    suggested_mention = policy.mention_text
    if shortcode and not policy.operator_fills_shortcode:
        suggested_mention = suggested_mention.replace(PLACEHOLDER, shortcode)

    violations: list[Violation] = []
    delivered = text
    if not required:
        verdict = Verdict.NOT_APPLICABLE
        suggested = text
        if policy.unsubscribe_link_advised and category == "MARKETING" and not _LINK.search(text):
            violations.append(
                Violation(
                    "UNSUBSCRIBE_LINK_ADVISED",
                    "Operators here do not handle STOP: add the operator's unsubscribe short link at the "
                    "end of the message so that people can opt out.",
                    Severity.ADVISORY,
                )
            )
    elif mention.position is Position.END:
        verdict, suggested = Verdict.COMPLIANT, text
    elif mention.position is Position.ELSEWHERE:
        verdict = Verdict.NON_COMPLIANT
        without = " ".join(f"{text[: mention.start]} {text[mention.end :]}".split())
        suggested = _append(without, suggested_mention)
        violations.append(
            Violation(
                "STOP_MENTION_NOT_AT_END",
                f'The STOP mention "{mention.text}" must be at the very end of the message; '
                "it is not recognised anywhere else.",
                Severity.ERROR,
            )
        )
    elif policy.operator_appends_mention:
        verdict = Verdict.WILL_BE_AMENDED
        suggested = _append(text, suggested_mention)
        delivered = _append(text, policy.mention_text)
    else:
        verdict = Verdict.NON_COMPLIANT
        suggested = _append(text, suggested_mention)
        violations.append(
            Violation(
                "STOP_MENTION_MISSING",
                f"Marketing messages to {policy.country} must end with a STOP mention such as "
                f'"{suggested_mention}"; the operator does not add it.',
                Severity.ERROR,
            )
        )

    if sender is SenderKind.ALPHANUMERIC and policy.operator_fills_shortcode and shortcode:
        final = find_mention(delivered, policy.mention_pattern)
        if final.position is Position.END and PLACEHOLDER in final.text:
            filled = final.text.replace(PLACEHOLDER, shortcode)
            delivered = delivered[: final.start] + filled + delivered[final.end :]
    delivered_segments = segments.count(delivered)
    if verdict is Verdict.WILL_BE_AMENDED:
        added = delivered_segments.parts - written_segments.parts
        cost = (
            f", which takes it from {written_segments.parts} to {delivered_segments.parts} parts"
            if added
            else ""
        )
        violations.append(
            Violation(
                "STOP_MENTION_WILL_BE_APPENDED",
                f'The operator will append "{policy.mention_text}" to this message{cost}. Add it yourself to '
                "keep control of the text.",
                Severity.ADVISORY,
            )
        )

    characters = (
        [] if written_segments.encoding is Encoding.GSM7 else ucs2_characters(text, allow_accent_folding)
    )
    replaced = text
    for character in characters:
        if character.replacement or character.character in TYPOGRAPHIC_REPLACEMENTS:
            replaced = replaced.replace(character.character, character.replacement)
    saved = max(0, written_segments.parts - segments.count(replaced).parts)
    if saved:
        violations.append(
            Violation(
                "UCS2_CHARACTERS",
                f"{len(characters)} character(s) switch this message to UCS-2; their GSM-7 replacements "
                f"would save {saved} part(s).",
                Severity.ADVISORY,
            )
        )
    violations.sort(key=lambda v: v.severity is not Severity.ERROR)
    return Assessment(
        verdict=verdict,
        violations=violations,
        mention_required=required,
        mention=mention,
        segments=written_segments,
        suggested_text=suggested,
        suggested_segments=segments.count(suggested),
        delivered_text=delivered,
        delivered_segments=delivered_segments,
        ucs2_characters=characters,
        replaced_text=replaced,
        parts_saved_by_replacements=saved,
    )
