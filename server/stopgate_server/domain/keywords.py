"""What an inbound SMS asks for: opt-out, opt-in, help, or nothing.

Texts are normalised first (accents, case, punctuation, spaces). Then, in order:
1. exact keywords, in every language listed below, optionally followed by a shortcode ("STOP 36180");
2. the gateway form "ask <company-code> <keyword>" ("ask cc stop");
3. obvious misspellings of STOP (adjacent letters swapped, a letter doubled: TSOP, SOTP, STPO, STOOP);
4. natural-language revocation ("please stop texting me", "remove me from your list", "unsubscribe me"),
   never when negated ("don't stop") and never for chatter that merely contains "stop" ("stop by the
   shop tomorrow?", "can't stop laughing").
Rules 1-2 are exact matches, 3-4 inferred.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from enum import Enum


class Intent(Enum):
    OPT_OUT = "OPT_OUT"
    OPT_IN = "OPT_IN"
    HELP = "HELP"
    NONE = "NONE"


class MatchKind(Enum):
    EXACT = "EXACT"
    INFERRED = "INFERRED"
    NONE = "NONE"


@dataclass(frozen=True)
class Classification:
    intent: Intent
    keyword: str = ""  # the keyword or rule that matched, as documented ("STOP", "ask <company> stop")
    kind: MatchKind = MatchKind.NONE
    language: str = ""  # ISO 639-1 of the keyword, when it tells one


NOTHING = Classification(Intent.NONE)

# normalised keyword -> (intent, keyword as documented, language or "" when it tells none)
KEYWORDS: dict[str, tuple[Intent, str, str]] = {
    "stop": (Intent.OPT_OUT, "STOP", ""),
    "stopall": (Intent.OPT_OUT, "STOPALL", "en"),
    "stop all": (Intent.OPT_OUT, "STOP ALL", "en"),
    "unsubscribe": (Intent.OPT_OUT, "UNSUBSCRIBE", "en"),
    "unsub": (Intent.OPT_OUT, "UNSUB", "en"),
    "cancel": (Intent.OPT_OUT, "CANCEL", "en"),
    "end": (Intent.OPT_OUT, "END", "en"),
    "quit": (Intent.OPT_OUT, "QUIT", "en"),
    "revoke": (Intent.OPT_OUT, "REVOKE", "en"),
    "optout": (Intent.OPT_OUT, "OPTOUT", "en"),
    "opt out": (Intent.OPT_OUT, "OPT OUT", "en"),
    "remove": (Intent.OPT_OUT, "REMOVE", "en"),
    "arret": (Intent.OPT_OUT, "ARRET", "fr"),
    "stopp": (Intent.OPT_OUT, "STOPP", "de"),
    "baja": (Intent.OPT_OUT, "BAJA", "es"),
    "start": (Intent.OPT_IN, "START", ""),
    "unstop": (Intent.OPT_IN, "UNSTOP", "en"),
    "yes": (Intent.OPT_IN, "YES", "en"),
    "help": (Intent.HELP, "HELP", "en"),
    "info": (Intent.HELP, "INFO", ""),
    "aide": (Intent.HELP, "AIDE", "fr"),
}
# Language of STOPP by country (it is German, Norwegian and Swedish), and of the universal keywords.
COUNTRY_LANGUAGES = {
    "FR": "fr", "BE": "fr", "LU": "fr", "MC": "fr", "CA": "en", "DE": "de", "AT": "de", "CH": "de",
    "NO": "no", "SE": "sv", "ES": "es", "MX": "es", "AR": "es", "GB": "en", "IE": "en", "US": "en",
}  # fmt: skip

_SHORTCODE_SUFFIX = re.compile(r"^(?P<keyword>.+?) (?P<shortcode>\d{3,8})$")
_GATEWAY = re.compile(r"^ask (?P<company>[a-z0-9]+) (?P<keyword>.+)$")
_STOP_MISSPELLINGS = frozenset(
    {"tsop", "sotp", "stpo"}  # adjacent letters swapped
    | {"sstop", "sttop", "stoop", "stopp"}  # a letter doubled ("stopp" is also German: exact above)
)

_NEGATION = r"(?:dont|do not|didnt|did not|doesnt|does not|cant|cannot|can not|wont|will not|never|not)"
_OBJECT = r"(?:texting|txting|messaging|msging|sending|contacting|emailing|calling|spamming|bothering)"
_MESSAGES = r"(?:texts?|txts?|messages?|msgs?|sms|alerts?|promos?|offers?|notifications?)"
# (rule as reported, pattern): phrases that revoke consent in plain words.
_REVOCATION_RULES = [
    ("stop <texting>", rf"\b(?:stop|quit|cease)\s+(?:\w+\s+)?{_OBJECT}\b"),
    ("stop <these messages>", rf"\b(?:stop|quit)\s+(?:\w+\s+)?(?:these|those|the|your|all)\s+{_MESSAGES}\b"),
    ("remove me", r"\b(?:remove|delete|take|drop|erase)\s+(?:me|my number|my phone number|this number|us)\b"),
    (
        "unsubscribe me",
        r"\bunsubscribe\s+(?:me|us|this number|my number)\b|\bi (?:want|wish|would like) to unsubscribe\b",
    ),
    ("opt me out", r"\bopt\s*(?:me\s+)?out\b"),
    ("do not text me", r"\b(?:dont|do not|never)\s+(?:text|txt|message|msg|contact|sms|call)\s+me\b"),
    ("no more texts", rf"\bno more\s+{_MESSAGES}\b"),
    ("I do not want these messages", rf"\b(?:dont|do not) want (?:\w+\s+){{0,2}}{_MESSAGES}\b"),
    ("cancel my subscription", rf"\bcancel (?:my |the |all )?(?:subscription|{_MESSAGES})\b"),
    ("leave me alone", r"\bleave me alone\b"),
    # both anywhere, each found by one scan: "a.*b|b.*a" rescanned the rest of the text after every "stop"
    # (quadratic in the length of a text of repeated "stop")
    ("wrong number", r"\A(?=.*\bwrong number\b)(?=.*\b(?:stop|remove)\b)"),
]
_REVOCATIONS = [(re.compile(pattern), rule) for rule, pattern in _REVOCATION_RULES]
# A lone STOP (or UNSUBSCRIBE) among nothing but politeness is still an opt-out: "stop please", "STOP NOW!!".
_FILLER = frozenset(
    {"please", "pls", "plz", "now", "it", "thanks", "thank", "you", "thx", "ty", "asap", "immediately"}
    | {"right", "away", "already", "ok", "okay", "all", "me", "sms", "messages", "texts", "this", "just"}
)
_NEGATED_STOP = re.compile(rf"\b{_NEGATION}\s+(?:\w+\s+)?(?:stop|unsubscribe|remove)\b")


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, apostrophes dropped ("don't" -> "dont"), spaces single."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = re.sub(r"['\u2019`´]", "", plain)
    return " ".join(re.sub(r"[^\w]+|_", " ", plain).split())


def _language(keyword_language: str, country: str) -> str:
    if keyword_language == "de" and country.upper() in ("NO", "SE"):
        return COUNTRY_LANGUAGES[country.upper()]
    return keyword_language or COUNTRY_LANGUAGES.get(country.upper(), "")


def _keyword(normalised: str, country: str) -> Classification | None:
    entry = KEYWORDS.get(normalised)
    if entry is None:
        return None
    intent, keyword, language = entry
    return Classification(intent, keyword, MatchKind.EXACT, _language(language, country))


@functools.lru_cache(maxsize=4096)
def classify(text: str, country: str = "") -> Classification:
    """The intent of an inbound text (see the module documentation for the rules, in order). Cached:
    inbound texts repeat ("STOP", "Stop", "ARRET") and a classification is immutable."""
    normalised = normalise(text)
    if not normalised:
        return NOTHING
    if found := _keyword(normalised, country):
        return found
    if (suffixed := _SHORTCODE_SUFFIX.match(normalised)) and (
        found := _keyword(suffixed["keyword"], country)
    ):
        return found
    if (gateway := _GATEWAY.match(normalised)) and (found := _keyword(gateway["keyword"], country)):
        keyword = f"ask <company> {found.keyword.lower()}"
        return Classification(found.intent, keyword, MatchKind.EXACT, found.language)
    if normalised in _STOP_MISSPELLINGS:
        return Classification(Intent.OPT_OUT, "STOP (misspelt)", MatchKind.INFERRED, _language("", country))
    if _NEGATED_STOP.search(normalised):
        return NOTHING
    for pattern, rule in _REVOCATIONS:
        if pattern.search(normalised):
            return Classification(Intent.OPT_OUT, rule, MatchKind.INFERRED, _language("en", country))
    words = normalised.split()
    if any(w in ("stop", "unsubscribe", "stopall") for w in words) and all(
        w in _FILLER or w in ("stop", "unsubscribe", "stopall") for w in words
    ):
        return Classification(
            Intent.OPT_OUT, "STOP (with politeness)", MatchKind.INFERRED, _language("", country)
        )
    return NOTHING
