"""What an inbound SMS asks for: opt-out, opt-in, help, or nothing. Pure: no I/O.

Languages: English, French, Dutch, German, Spanish, Italian, Portuguese, for keywords and natural requests.
Keyword lists are the operators' and regulators' published ones (CTIA; AWS End User Messaging's required
opt-out keywords, TD included; Twilio's and Braze's defaults; the Infobip defaults published in each of the
languages; SMS+/AF2M "STOP"; Brazil's SAIR/PARAR/CANCELAR; Belgian GOF guidelines, which count obvious
misspellings of STOP), widened with the forms people write.

The text is read as tokens (words and numbers): NFKC compatibility forms folded (fullwidth letters), accents
and case removed, apostrophes joined ("don't" -> "dont") except after an elided article or pronoun
("m'écrire" -> "m ecrire"), every other character a separator (emoji and punctuation around a keyword do
not matter). Each token keeps its offsets in the original text, so the span of a match points there.
Lines quoted from an earlier message ("> ...", everything after "On ... wrote:", a long "quoted" passage)
are left out when something else remains.

Rules, in order; `Classification.rule` names the one that matched:
- "keyword": the whole message is a keyword (EXACT), e.g. "STOP", "Arrêt", "uitschrijven".
- "keyword + shortcode": a keyword and the shortcode, glued or with "sms"/"au"/"to" between (EXACT):
  "STOP 36180", "STOP36180", "stop sms au 36180".
- "gateway form": "ask <company-code> <keyword>" (EXACT, keyword "ask <company> stop").
- "custom keyword": an admin's keyword for the shortcode or licence, matched like a keyword (EXACT); only
  when no built-in keyword matched exactly (reserved keywords cannot be redefined: `is_reserved`).
- "keyword + politeness": a keyword among politeness, emphasis and filler only, or repeated
  ("stop please", "STOP NOW!!", "bitte abmelden", "STOP STOP") (INFERRED).
- "misspelling": an obvious misspelling of an opt-out keyword, in every language: letters swapped, one
  doubled; for keywords of 6+ letters one missing; for 7+ letters one substituted or added; variants that
  are common words of any of the languages are left out ("TSOP", "unsubscibe", "desinscrir") (INFERRED).
- "repeated letters": a keyword with letters repeated ("stoooop", "yesss") (INFERRED).
- "spelled out": letters spaced, dotted or hyphenated ("S T O P", "s.t.o.p", "s-t-o-p") (INFERRED).
- "keyword on its own line": an opt-out keyword alone on a line of a longer reply (kind of the line).
- "wrong number": "wrong number" with "stop" or "remove" anywhere (INFERRED, keyword "wrong number").
- "keyword in a sentence": a sentence of a longer text that is an opt-out keyword with politeness only
  ("Who is this? Stop.") (INFERRED).
- "natural request": a phrase that asks, in one of the languages, to receive no more messages (or to
  receive them again, or for help) ("please stop texting me", "merci de ne plus m'écrire",
  "laat me met rust", "bitte nicht mehr schreiben", "no me manden nada", "cancellami",
  "pare de me enviar") (INFERRED; keyword names the phrase, e.g. "stop <texting>").

Never an opt-out (each has its test):
- negation of the opt-out verb, in every language ("don't stop", "ne m'arrêtez pas", "nicht abmelden",
  "no me des de baja", "non cancellare", "não cancelar", "niet afmelden", "stop niet", "I didn't cancel");
- being unsubscribed, told as a fact or a complaint ("why was I unsubscribed?");
- chatter that merely contains a keyword: places and things ("Stop & Shop", "bus stop", "stop sign"),
  titles ("Stop Making Sense"), idioms ("stop by tomorrow", "can't stop laughing", "the end of the
  movie", "quit smoking", "remove the stain", "estoy de baja", "sans arrêt");
- the opt-out instruction of a quoted message ("Reply STOP to unsubscribe", "envoyez STOP au 36180").

Cost: linear in the text. Regular expressions are only matched at token starts, anchored, over a window of
a bounded number of tokens, and have no nested unbounded quantifiers; lookups are dictionary hits. A phrase
is tried only where its first word is, and only when each word it needs (read from its pattern: `_triggers`)
occurs in the text, so repeated words that make no phrase ("no no no", "please do not") cost no match.
Tokens and sentences are made in bulk (`str.translate`, `re.split`, `itertools`), not character by
character. A bare keyword is one dictionary hit after the first time (`classify` is cached).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from re import _parser as _regex_parser  # type: ignore[attr-defined]  # the standard parser; no stub
from typing import Any, NamedTuple


def _split(words: str) -> list[str]:
    """A word list written as one string."""
    return words.split()


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
    keyword: str = ""  # the keyword or phrase as documented ("STOP", "BAJA", "ask <company> stop")
    kind: MatchKind = MatchKind.NONE
    language: str = ""  # ISO 639-1 of what matched, "" when it tells none (see COUNTRY_LANGUAGES)
    rule: str = ""  # which rule matched (the list is in the module documentation)
    span: tuple[int, int] | None = None  # [start, end) of the match in the original text


NOTHING = Classification(Intent.NONE)

OUT, IN, HELP = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP

# normalised keyword -> (intent, keyword as documented, language or "" when it tells none)
KEYWORDS: dict[str, tuple[Intent, str, str]] = {
    # opt-out: CTIA, AWS, Twilio, Braze, Telnyx defaults
    "stop": (OUT, "STOP", ""),
    "stopall": (OUT, "STOPALL", "en"),
    "stop all": (OUT, "STOP ALL", "en"),
    "unsubscribe": (OUT, "UNSUBSCRIBE", "en"),
    "unsubscribe all": (OUT, "UNSUBSCRIBE ALL", "en"),
    "unsub": (OUT, "UNSUB", "en"),
    "cancel": (OUT, "CANCEL", "en"),
    "cancel all": (OUT, "CANCEL ALL", "en"),
    "end": (OUT, "END", "en"),
    "end all": (OUT, "END ALL", "en"),
    "quit": (OUT, "QUIT", "en"),
    "quit all": (OUT, "QUIT ALL", "en"),
    "revoke": (OUT, "REVOKE", "en"),
    "optout": (OUT, "OPTOUT", "en"),
    "opt out": (OUT, "OPT OUT", "en"),
    "remove": (OUT, "REMOVE", "en"),
    "stop sms": (OUT, "STOP SMS", ""),
    # French (SMS+/AF2M, AWS for Canada)
    "arret": (OUT, "ARRET", "fr"),
    "arret sms": (OUT, "ARRET SMS", "fr"),
    "arreter": (OUT, "ARRETER", "fr"),
    "arretez": (OUT, "ARRETEZ", "fr"),
    "arrete": (OUT, "ARRETE", "fr"),
    "td": (OUT, "TD", "fr"),
    "desabonner": (OUT, "DESABONNER", "fr"),
    "desabonnement": (OUT, "DESABONNEMENT", "fr"),
    "desinscrire": (OUT, "DESINSCRIRE", "fr"),
    "desinscription": (OUT, "DESINSCRIPTION", "fr"),
    "annuler": (OUT, "ANNULER", "fr"),
    # Dutch
    "stoppen": (OUT, "STOPPEN", "nl"),
    "uit": (OUT, "UIT", "nl"),
    "afmelden": (OUT, "AFMELDEN", "nl"),
    "uitschrijven": (OUT, "UITSCHRIJVEN", "nl"),
    "opzeggen": (OUT, "OPZEGGEN", "nl"),
    "annuleren": (OUT, "ANNULEREN", "nl"),
    "einde": (OUT, "EINDE", "nl"),
    # German
    "stopp": (OUT, "STOPP", "de"),
    "abmelden": (OUT, "ABMELDEN", "de"),
    "abbestellen": (OUT, "ABBESTELLEN", "de"),
    "austragen": (OUT, "AUSTRAGEN", "de"),
    "beenden": (OUT, "BEENDEN", "de"),
    "kundigen": (OUT, "KUNDIGEN", "de"),
    "kuendigen": (OUT, "KUNDIGEN", "de"),
    "ende": (OUT, "ENDE", "de"),
    # Spanish
    "baja": (OUT, "BAJA", "es"),
    "alto": (OUT, "ALTO", "es"),
    "cancelar": (OUT, "CANCELAR", "es"),
    "cancelar suscripcion": (OUT, "CANCELAR SUSCRIPCION", "es"),
    "detener": (OUT, "DETENER", "es"),
    "salir": (OUT, "SALIR", "es"),
    "finalizar": (OUT, "FINALIZAR", "es"),
    "desuscribir": (OUT, "DESUSCRIBIR", "es"),
    "desuscribirme": (OUT, "DESUSCRIBIRME", "es"),
    "darme de baja": (OUT, "DARME DE BAJA", "es"),
    "dar de baja": (OUT, "DAR DE BAJA", "es"),
    # Italian (Infobip defaults: INTERROMPI, ESCI, ANNULLA, TERMINA, ANNULLA ISCRIZIONE)
    "interrompi": (OUT, "INTERROMPI", "it"),
    "esci": (OUT, "ESCI", "it"),
    "annulla": (OUT, "ANNULLA", "it"),
    "annulla iscrizione": (OUT, "ANNULLA ISCRIZIONE", "it"),
    "termina": (OUT, "TERMINA", "it"),
    "basta": (OUT, "BASTA", "it"),
    "cancella": (OUT, "CANCELLA", "it"),
    "cancellami": (OUT, "CANCELLAMI", "it"),
    "disiscrivi": (OUT, "DISISCRIVI", "it"),
    "disiscrivimi": (OUT, "DISISCRIVIMI", "it"),
    "disiscrizione": (OUT, "DISISCRIZIONE", "it"),
    # Portuguese (Brazil's SAIR, PARAR, CANCELAR; Infobip: ENCERRAR, CANCELAR INSCRICAO)
    "sair": (OUT, "SAIR", "pt"),
    "parar": (OUT, "PARAR", "pt"),
    "pare": (OUT, "PARE", "pt"),
    "encerrar": (OUT, "ENCERRAR", "pt"),
    "cancelar inscricao": (OUT, "CANCELAR INSCRICAO", "pt"),
    "descadastrar": (OUT, "DESCADASTRAR", "pt"),
    "descadastro": (OUT, "DESCADASTRO", "pt"),
    "remover": (OUT, "REMOVER", "pt"),
    "chega": (OUT, "CHEGA", "pt"),
    # opt-in: CTIA START, UNSTOP, YES; Infobip's SUBSCRIBE, RESUME... in each language
    "start": (IN, "START", ""),
    "unstop": (IN, "UNSTOP", "en"),
    "yes": (IN, "YES", "en"),
    "subscribe": (IN, "SUBSCRIBE", "en"),
    "resubscribe": (IN, "RESUBSCRIBE", "en"),
    "resume": (IN, "RESUME", "en"),
    "oui": (IN, "OUI", "fr"),
    "reprendre": (IN, "REPRENDRE", "fr"),
    "reabonner": (IN, "REABONNER", "fr"),
    "ja": (IN, "JA", ""),
    "aanmelden": (IN, "AANMELDEN", "nl"),
    "hervatten": (IN, "HERVATTEN", "nl"),
    "anmelden": (IN, "ANMELDEN", "de"),
    "starten": (IN, "STARTEN", "de"),
    "si": (IN, "SI", ""),
    "alta": (IN, "ALTA", "es"),
    "suscribir": (IN, "SUSCRIBIR", "es"),
    "reanudar": (IN, "REANUDAR", "es"),
    "iscrivimi": (IN, "ISCRIVIMI", "it"),
    "sottoscrivi": (IN, "SOTTOSCRIVI", "it"),
    "riprendi": (IN, "RIPRENDI", "it"),
    "avvia": (IN, "AVVIA", "it"),
    "iscrizione": (IN, "ISCRIZIONE", "it"),
    "inizia": (IN, "INIZIA", "it"),
    "riattiva": (IN, "RIATTIVA", "it"),
    "inscription": (IN, "INSCRIPTION", "fr"),
    "inschrijven": (IN, "INSCHRIJVEN", "nl"),
    "eintragen": (IN, "EINTRAGEN", "de"),
    "suscribirse": (IN, "SUSCRIBIRSE", "es"),
    "suscribirme": (IN, "SUSCRIBIRME", "es"),
    "iniciar": (IN, "INICIAR", "es"),
    "reactivar": (IN, "REACTIVAR", "es"),
    "reativar": (IN, "REATIVAR", "pt"),
    "sim": (IN, "SIM", "pt"),
    "assinar": (IN, "ASSINAR", "pt"),
    "retomar": (IN, "RETOMAR", "pt"),
    # help
    "help": (HELP, "HELP", "en"),
    "info": (HELP, "INFO", ""),
    "infos": (HELP, "INFO", ""),
    "information": (HELP, "INFORMATION", "en"),
    "informations": (HELP, "INFORMATIONS", "fr"),
    "informacion": (HELP, "INFORMACION", "es"),
    "informazioni": (HELP, "INFORMAZIONI", "it"),
    "informacoes": (HELP, "INFORMACOES", "pt"),
    "aide": (HELP, "AIDE", "fr"),
    "hulp": (HELP, "HULP", "nl"),
    "hilfe": (HELP, "HILFE", "de"),
    "ayuda": (HELP, "AYUDA", "es"),
    "aiuto": (HELP, "AIUTO", "it"),
    "guida": (HELP, "GUIDA", "it"),
    "ajuda": (HELP, "AJUDA", "pt"),
}
# Opt-out keywords that are also common words: they count alone (or with politeness) as the whole message,
# but not as one sentence of a longer text, and have no misspellings.
_WEAK = frozenset(
    {"end", "quit", "remove", "cancel", "td", "alto", "salir", "annuler", "einde", "ende", "beenden"}
    | {"esci", "annulla", "termina", "cancella", "pare", "chega", "remover", "detener", "finalizar"}
    | {"encerrar", "kundigen", "cancelar", "parar", "sair", "opzeggen", "annuleren", "interrompi"}
    | {"uit", "kuendigen"}
)
# Language of the keywords several languages share, by country (STOPP is German, Norwegian, Swedish...).
_SHARED = {
    "stopp": {"NO": "no", "SE": "sv", "DK": "da"},
    "stoppen": {"DE": "de", "AT": "de", "CH": "de"},
    "cancelar": {"PT": "pt", "BR": "pt", "AO": "pt", "MZ": "pt"},
    "basta": {"ES": "es", "MX": "es", "AR": "es", "PT": "pt", "BR": "pt"},
    "ja": {"NL": "nl", "BE": "nl", "DE": "de", "AT": "de", "CH": "de"},
    "si": {"IT": "it", "SM": "it"},
    "iniciar": {"PT": "pt", "BR": "pt"},
}
# Language of the keywords that tell none (STOP, START, INFO), by country.
COUNTRY_LANGUAGES = {
    "FR": "fr", "BE": "fr", "LU": "fr", "MC": "fr", "CA": "en", "DE": "de", "AT": "de", "CH": "de",
    "NO": "no", "SE": "sv", "ES": "es", "MX": "es", "AR": "es", "GB": "en", "IE": "en", "US": "en",
    "NL": "nl", "IT": "it", "SM": "it", "PT": "pt", "BR": "pt", "AO": "pt", "MZ": "pt", "CL": "es",
    "CO": "es", "PE": "es", "VE": "es", "UY": "es", "AU": "en", "NZ": "en", "DK": "da",
}  # fmt: skip


def is_reserved(normalised_keyword: str) -> bool:
    """True for a built-in keyword of any intent in any language, which an admin cannot redefine."""
    return normalised_keyword in KEYWORDS


def _language(keyword: str, language: str, country: str) -> str:
    country = country.upper()
    return _SHARED.get(keyword, {}).get(country) or language or COUNTRY_LANGUAGES.get(country, "")


# ---------------------------------------------------------------------------------------------- tokens

_APOSTROPHES = frozenset("'`\u00b4\u2019\u2018\u02bc")
# Elided articles and pronouns (French, Italian) are words of their own: "m'écrire" -> "m ecrire".
_ELISIONS = frozenset(
    {"l", "m", "n", "t", "s", "d", "j", "c", "qu", "jusqu", "lorsqu", "puisqu", "un", "dell", "all", "dall"}
    | {"nell", "sull", "quell", "po"}
)
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_BREAKS = frozenset(".,!?;:\n\r()[]…|¿¡")
_SPELLING_GAPS = frozenset(
    "".join(gap) for size in (1, 2) for gap in itertools.product(" .-_*/", repeat=size)
)


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class _FoldTable(dict[int, str]):
    """Code point -> its folded form, for `str.translate`; remembers the forms that are not one character
    (they shift the offsets). Bounded: a text of rare characters cannot make it grow without end."""

    def __init__(self) -> None:
        super().__init__()
        self.uneven: set[str] = set()

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = "'" if char in _APOSTROPHES else _fold_char(char)
        if len(folded) != 1:
            self.uneven.add(char)
        if len(self) < 8192:
            self[code] = folded
        return folded


_FOLDED = _FoldTable()


def _fold(text: str) -> tuple[str, list[int] | None]:
    """Case, accents and compatibility forms folded, apostrophes as "'"; with the index of each folded
    character in the original text (None: the same index)."""
    if text.isascii():
        return text.lower().replace("`", "'"), None
    folded = text.translate(_FOLDED)
    if _FOLDED.uneven.isdisjoint(text):
        return folded, None
    pieces: list[str] = []
    index: list[int] = []
    for position, char in enumerate(text):
        piece = "'" if char in _APOSTROPHES else _fold_char(char)
        pieces.append(piece)
        index.extend([position] * len(piece))
    return "".join(pieces), index


class _Token(NamedTuple):  # a tuple: tokens are made by the hundred per text
    word: str
    start: int  # offsets in the original text
    end: int
    brk: bool  # a sentence or clause break before it
    line: int
    spelled: bool = False  # merged from spaced letters


_WORD, _BRK, _SPELLED = map(operator.itemgetter, (0, 3, 5))  # _Token.word, .brk, .spelled, fast in bulk


def _raw_tokens(text: str) -> Iterator[tuple[str, int, int, str]]:
    """(word, start, end, gap before it) in original offsets."""
    folded, index = _fold(text)
    previous = 0
    for match in _TOKEN.finditer(folded):
        start, end = match.span()
        gap = folded[previous:start]
        previous = end
        word = match.group()
        original_start = start if index is None else index[start]
        original_end = end if index is None else index[end - 1] + 1
        if "'" not in word:
            yield word, original_start, original_end, gap
            continue
        yield from _pieces(word, start, gap, index)


def _pieces(word: str, start: int, gap: str, index: list[int] | None) -> Iterator[tuple[str, int, int, str]]:
    """A word with apostrophes split after an elision, joined otherwise ("don't" -> "dont"): (word, start,
    end, gap before it) in original offsets; `start` is in the folded text."""
    offset = start
    pending = ""
    pending_start = start
    parts = word.split("'")
    for part_index, part in enumerate(parts):
        last = part_index == len(parts) - 1
        part_end = offset + len(part)
        if not pending:
            pending_start = offset if index is None else index[offset]
        pending += part
        if last or pending in _ELISIONS:
            yield pending, pending_start, part_end if index is None else index[part_end - 1] + 1, gap
            gap = "'"
            pending = ""
        offset = part_end + 1


@dataclass(frozen=True)
class _Text:
    tokens: tuple[_Token, ...]  # of the person's own text (quotes left out when something else remains)
    lines: int
    spelled: bool  # a token is merged from spaced letters


_QUOTED_PASSAGE = re.compile(r"[\"“«„]([^\"”»“]{24,})[\"”»“]")
# "STOP <Reply to: ...>", "SAIR (resposta a: ...)", "STOP > Actie: ..." (to the end of the line)
_QUOTED_BRACKETS = re.compile(r"<[^<>\n]{20,}>?|\([^()\n]{24,}\)?|(?<=\s)>[^\n]{12,}")
# (the lookahead names the first letters of the alternatives: the search then skips other positions fast)
_REPLY_HEADER = re.compile(
    r"(?=[waseh-])(?:(?:wrote|a ecrit|a écrit|schreef|schrieb|escribio|escribió|ha scritto|escreveu)\s*:"
    r"|-{3,}\s*(?:original message|message d.origine|oorspronkelijk bericht|ursprüngliche nachricht))",
    re.IGNORECASE,
)


def _quoted_ranges(text: str) -> list[tuple[int, int]]:
    """Ranges of the original text quoted from an earlier message."""
    ranges: list[tuple[int, int]] = []
    if (":" in text or "---" in text) and (header := _REPLY_HEADER.search(text)):
        line_start = text.rfind("\n", 0, header.start()) + 1
        ranges.append((line_start, len(text)))
    if ">" in text:
        position = 0
        for line in text.splitlines(keepends=True):
            if line.lstrip().startswith(">"):
                ranges.append((position, position + len(line)))
            position += len(line)
    if len(text) >= 26:
        ranges.extend(m.span(1) for m in _QUOTED_PASSAGE.finditer(text))
        if "<" in text or "(" in text or ">" in text:
            ranges.extend(m.span() for m in _QUOTED_BRACKETS.finditer(text))
    return ranges


_LONGEST_KEYWORD = 24


def _merge_spelled(tokens: list[_Token], gaps: list[str]) -> list[_Token]:
    """Runs of spaced, dotted or hyphenated letters that spell a keyword made one token."""
    words = list(map(_WORD, tokens))
    letters = {word for word in set(words) if len(word) == 1 and word.isalpha()}
    if not letters:
        return tokens
    merged: list[_Token] = []
    letter = list(map(letters.__contains__, words))
    # follows[k]: token k is a letter after a short spelling gap, so it goes on a run (False at the end)
    follows = list(map(operator.and_, letter, map(_SPELLING_GAPS.__contains__, gaps)))
    follows.append(False)
    letter.append(True)  # after the last token: the end of the search for the next run
    done = 0  # tokens copied to `merged`
    i = letter.index(True)  # the start of a run of letters (each run is looked at once)
    while i < len(tokens):
        end = follows.index(False, i + 1)  # the end of the run of letters
        word = "".join(words[i:end]) if end - i <= _LONGEST_KEYWORD else ""
        if end - i >= 3 and (word in KEYWORDS or _squeeze(word) in _SQUEEZED):
            merged += tokens[done:i]
            token = tokens[i]
            merged.append(_Token(word, token.start, tokens[end - 1].end, token.brk, token.line, True))
            done = end
        i = letter.index(True, end)
    return merged + tokens[done:] if merged else tokens


_WORDS_AND_GAPS = re.compile(f"({_TOKEN.pattern})")
# the same where there is no apostrophe, faster; and faster again on ASCII (where [^\W_] is [a-zA-Z0-9])
_UNBROKEN_WORDS_AND_GAPS = re.compile(r"([^\W_]+)")
_ASCII_WORDS_AND_GAPS = re.compile(r"([a-zA-Z0-9]+)")


def _plain_tokens(text: str) -> tuple[list[_Token], list[str]] | None:
    """The tokens and the gap before each, made in bulk, for a text with no apostrophe and no folded form
    of another length (most texts); None otherwise."""
    folded, index = _fold(text)
    if index is not None:
        return None
    apostrophe = "'" in folded
    if apostrophe:
        splitter = _WORDS_AND_GAPS
    else:
        splitter = _ASCII_WORDS_AND_GAPS if folded.isascii() else _UNBROKEN_WORDS_AND_GAPS
    parts = splitter.split(folded)  # gap, word, gap, word, ..., gap
    words, gaps = parts[1::2], parts[0:-1:2]
    positions = list(itertools.accumulate(map(len, parts), initial=0))
    if "\n" in folded:
        lines: Iterable[int] = itertools.accumulate(map(str.count, gaps, itertools.repeat("\n")))
    else:
        lines = itertools.repeat(0)
    breaking = {gap for gap in set(gaps) if not _BREAKS.isdisjoint(gap)}
    breaks = list(map(breaking.__contains__, gaps))
    if breaks:
        breaks[0] = True
    ends = positions[2::2]
    fields = zip(words, positions[1::2], ends, breaks, lines, itertools.repeat(False))
    tokens = list(map(tuple.__new__, itertools.repeat(_Token), fields))
    if not apostrophe:
        return tokens, gaps
    split_tokens: list[_Token] = []
    split_gaps: list[str] = []
    done = 0
    for k in [k for k, word in enumerate(words) if "'" in word]:
        split_tokens += tokens[done:k]
        split_gaps += gaps[done:k]
        token = tokens[k]
        for number, (piece, start, end, gap) in enumerate(_pieces(token.word, token.start, gaps[k], None)):
            split_tokens.append(_Token(piece, start, end, token.brk and not number, token.line))
            split_gaps.append(gap)
        done = k + 1
    return split_tokens + tokens[done:], split_gaps + gaps[done:]


def _all_tokens(text: str) -> tuple[list[_Token], list[str]]:
    if (made := _plain_tokens(text)) is not None:
        return made
    tokens: list[_Token] = []
    gaps: list[str] = []
    line = 0
    for word, start, end, gap in _raw_tokens(text):
        line += gap.count("\n")
        brk = not tokens or not _BREAKS.isdisjoint(gap)
        tokens.append(_Token(word, start, end, brk, line))
        gaps.append(gap)
    return tokens, gaps


@functools.lru_cache(maxsize=4096)
def _analyse(text: str) -> _Text:
    tokens, gaps = _all_tokens(text)
    line = tokens[-1].line if tokens else 0
    merged = _merge_spelled(tokens, gaps)
    spelled = merged is not tokens  # (then some token is, unless a quote left it out)
    ranges = sorted(_quoted_ranges(text)) if len(text) >= 14 else []
    if ranges:
        own = []
        current = 0
        reach = -1  # the end of the ranges that start at or before the token (tokens and ranges in order)
        for t in merged:
            while current < len(ranges) and ranges[current][0] <= t.start:
                reach = max(reach, ranges[current][1])
                current += 1
            if t.start >= reach:
                own.append(t)
        if own:
            merged = own
    return _Text(tuple(merged), line + 1, spelled and any(map(_SPELLED, merged)))


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, apostrophes dropped ("don't" -> "dont") except after
    an elision ("m'écrire" -> "m ecrire"), spaces single: the form `KEYWORDS` and custom keywords use."""
    return " ".join(word for word, _, _, _ in _raw_tokens(text))


# ------------------------------------------------------------------------------ keywords and their forms


def _squeeze(word: str) -> str:
    """Repeated letters as one ("stoooop" -> "stop")."""
    return re.sub(r"(.)\1+", r"\1", word)


def _has_run(word: str, length: int) -> bool:
    run = 1
    for a, b in itertools.pairwise(word):
        run = run + 1 if a == b else 1
        if run >= length:
            return True
    return False


_SQUEEZED: dict[str, str] = {}
for _key in sorted(KEYWORDS, key=lambda k: (KEYWORDS[k][0] is not OUT, k)):
    if " " not in _key:
        _SQUEEZED.setdefault(_squeeze(_key), _key)

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _variants(word: str) -> set[str]:
    """Obvious misspellings: a letter moved (letters swapped) or doubled; for 4+ letters one missing,
    substituted or added."""
    found = {word[: i + 1] + word[i] + word[i + 1 :] for i in range(len(word))}
    for i in range(len(word)):
        rest = word[:i] + word[i + 1 :]
        found |= {rest[:j] + word[i] + rest[j:] for j in range(len(word)) if abs(j - i) <= 2}
    if len(word) >= 4:
        found |= {word[:i] + word[i + 1 :] for i in range(len(word))}
        found |= {word[:i] + c + word[i + 1 :] for i in range(len(word)) for c in _LETTERS}
        found |= {word[:i] + c + word[i:] for i in range(len(word) + 1) for c in _LETTERS}
    found.discard(word)
    return found


# Variants that are common words (generated with the word-frequency lists of the `wordfreq` package): a
# moved or doubled letter that is a word of the keyword's language with Zipf frequency >= 3, any other
# variant that is a word of the keyword's language or of English with Zipf >= 2.5 (all seven languages
# for keywords of no language, such as STOP). They are never read as a misspelt keyword. STPO and STOOP
# stay misspellings: the Belgian GOF guidelines name swapped and doubled letters of STOP.
_COMMON_WORDS = frozenset(
    _split(
        "abide acide acto acuda acuto ade agde aguda aid aida aided aiden aider aides aidez aids aie aile "
        "aime aine air aire aise aiuta aiuti aja ajudam ajudar ajudas ajude ajudo albo alde aldo algo allo "
        "alo also alt alte altho alton altos alzo ancella ande annular annule annulli annullo anto aparar "
        "apto arar are aride arrest arretes arto aside asta ato atop aude auftragen auto avide avuto ayto "
        "ayudan ayudar ayudas ayude ayudo baa baba baca bada bafta baia baita bajaj bajan bajar bajas baje "
        "bajo baka bala bama bana bara bare barret basa basata basra bassa bast basti bastia basto bata "
        "batta baya baza beende beendet bide blenden busta cair caja cancela cancelan cancelas cancellati "
        "cancelli cancello cancels cancer cannella care cascella casta cega chaga chancel checa chegam "
        "chegar chegas chego cheia dare den ede eden eide eind einden eindes eindje eine encerra encerram "
        "enda ended enden ender endes endet endo ends ene enge enke ense ente enterrar erde esc esca esce "
        "esco esi essi evoke fair faja falto fare fide finaliza finalizan fino finos fiuto gare garret gide "
        "giuda grida guide guidi guido guisa gulp hair hare hasta heap heinde hel hela held helfe heli hell "
        "helm helo helps hemp hep hide hilde hilf hilfen hilfs hilft hille hinde hul hula hulk hull huls "
        "hulu hump hup ide ifo inde indo ineos inf infor informazione ingo inno ino inso interrompa "
        "interrompe interrompo into jair jaja jarret kelp laide lair laja linde liuto mair maja mare mende "
        "nair ned opleggen pace padre pae pagar page pair paja pale pane pape par para param paras parc "
        "pared parei parem pares pari parir park parke paro parr parra pars parse part parte pasta pate pave "
        "pere pesci pirar pore post pots pre pulp pure pyre qui quid quiet quilt quin quint quip quite quito "
        "quits quiz quot raide raja rare rasta recover remote removed removem removes removeu retener "
        "revoked ride sadr sai saia said saif sail saio sais saiu saja salar sali salia salid salim salio "
        "salis salto samir sar sarar sci scop sende shop shoppen side sir slop soir sop soppen spare spot "
        "stair stap stappen step steppen stip stippen stir sto stoa stoep stoepen stof stok stolp stom stomp "
        "stompen stopf stopped stopper stopps stoppt stops stopt stopten stor stow stp strop stup suit "
        "termica terminal termine termini termino tide top topp toppen tops tui tulp usci vasta vide ware "
        "welp wende wide yelp"
    )
)
_MISSPELT: dict[str, str] = {}  # misspelling -> the opt-out keyword
for _key, (_intent, _, _) in KEYWORDS.items():
    if _intent is not IN and " " not in _key and len(_key) >= 3:
        for _variant in sorted(_variants(_key)):
            if _variant not in KEYWORDS and _variant not in _COMMON_WORDS:
                _MISSPELT.setdefault(_variant, _key)

# Politeness, emphasis and filler around a keyword, with the language they tell ("" none).
_FILLERS: dict[str, str] = {
    **dict.fromkeys(
        _split(
            "please pls plz plez now it thanks thank you thx ty asap immediately right away already ok okay "
            "me sms messages message texts text txt msgs msg this these them those just u all everything "
            "forever permanently anymore more your my number sir guys lol ads promos marketing said already "
            "told i again"
        ),
        "en",
    ),
    **dict.fromkeys(
        _split(
            "merci svp stp s il vous plait plaît tout tous toutes maintenant definitivement immediatement "
            "messages les vos ces aux de des mes textos moi pub pubs publicite publicites offres j ai dit "
            "deja nouveau"
        ),
        "fr",
    ),
    **dict.fromkeys(
        _split(
            "aub alsjeblieft alstublieft graag dank bedankt dankje dankjewel nu alles berichten reclame "
            "aanbiedingen ik zei toch heb opnieuw weer"
        ),
        "nl",
    ),
    **dict.fromkeys(
        _split(
            "bitte danke jetzt sofort alles nachrichten vielen dank endgultig werbung alle angebote ich habe "
            "schon geschrieben gesagt wieder"
        ),
        "de",
    ),
    **dict.fromkeys(
        _split("por favor gracias porfa ya todo todos mensajes ahora favor publicidad ofertas dije nuevo"),
        "es",
    ),
    **dict.fromkeys(
        _split(
            "per favore grazie subito ora tutto tutti messaggi pubblicita offerte ho gia scritto detto nuovo"
        ),
        "it",
    ),
    **dict.fromkeys(
        _split(
            "obrigado obrigada agora tudo mensagens pf pfv favor promocoes propaganda publicidade mandei "
            "disse escrevi novo novamente"
        ),
        "pt",
    ),
    "sms": "",
    "ok": "",
    "newsletter": "",
}
_FILLERS["favor"] = ""  # Spanish and Portuguese
# Between a keyword and the shortcode: "STOP SMS 36180", "STOP au 36180", "stop to 60999".
_CONNECTORS = frozenset(_split("sms au a to at al an aan naar ao para per on op numero nr"))
_GLUED = re.compile(r"([a-z]+)(\d{3,8})")


@dataclass(frozen=True, slots=True)
class _Hit:
    intent: Intent
    keyword: str  # as documented
    key: str  # normalised
    language: str
    rule: str
    start: int
    end: int


_MULTIWORD_FIRST = frozenset(key.split()[0] for key in KEYWORDS if " " in key)


def _keyword_at(
    words: list[str], i: int, custom: Mapping[str, tuple[Intent, str]] | None
) -> tuple[tuple[Intent, str, str, str] | None, int]:
    """The built-in (or custom) keyword starting at word i: ((intent, documented, language, key), words)."""
    sizes = (3, 2, 1) if custom is not None or words[i] in _MULTIWORD_FIRST else (1,)
    for size in sizes:
        if i + size > len(words):
            continue
        key = " ".join(words[i : i + size]) if size > 1 else words[i]
        if (entry := KEYWORDS.get(key)) is not None:
            return (entry[0], entry[1], entry[2], key), size
        if custom is not None and (own := custom.get(key)) is not None:
            return (own[0], own[1], "", key), size
    return None, 0


_RANK = {OUT: 0, HELP: 1, IN: 2}


def _shaped(
    tokens: tuple[_Token, ...] | list[_Token], custom: Mapping[str, tuple[Intent, str]] | None = None
) -> tuple[_Hit, bool, bool, str, tuple[int, int]] | None:
    """A message made of keywords, politeness and a shortcode only: (its keyword, with politeness or
    repetition, with a shortcode, the politeness's language, span including the shortcode)."""
    words = [t.word for t in tokens]
    hits = 0
    best: tuple[Intent, str, str, str, str, int, int] | None = None  # the first hit of the highest intent
    best_rank = 4
    fillers = connectors = 0
    filler_language = ""
    shortcode_end = -1
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if custom is None and token.word not in _MULTIWORD_FIRST:  # `_keyword_at`, without a call
            found = KEYWORDS.get(token.word)
            entry, size = (None, 0) if found is None else ((*found, token.word), 1)
        else:
            entry, size = _keyword_at(words, i, custom)
        rule = "spelled out" if token.spelled else "keyword"
        if entry is None and token.word[-1:].isdecimal() and (glued := _GLUED.fullmatch(token.word)):
            entry, size = _keyword_at([glued[1]], 0, custom)
            if entry is not None:
                shortcode_end = token.end
        if entry is None and not token.spelled:
            key = _MISSPELT.get(token.word)
            squeezed = _SQUEEZED.get(_squeeze(token.word)) if _has_run(token.word, 3) else None
            if squeezed is not None:
                entry, size, rule = (*KEYWORDS[squeezed], squeezed), 1, "repeated letters"
            elif key is not None:
                entry, size, rule = (*KEYWORDS[key], key), 1, "misspelling"
        if entry is not None:
            intent, documented, language, key = entry
            if custom is not None and key in custom and key not in KEYWORDS:
                rule = "custom keyword"
            elif rule in ("misspelling", "repeated letters"):
                documented = f"{documented} (misspelt)"
            hits += 1
            if (rank := _RANK.get(intent, 3)) < best_rank:
                best_rank = rank
                best = (intent, documented, key, language, rule, token.start, tokens[i + size - 1].end)
            i += size
            continue
        if token.word.isdecimal() and 3 <= len(token.word) <= 8:
            shortcode_end = token.end
        elif token.word in _CONNECTORS:
            connectors += 1
            if token.word in _FILLERS:
                filler_language = filler_language or _FILLERS[token.word]
        elif token.word in _FILLERS:
            fillers += 1
            filler_language = filler_language or _FILLERS[token.word]
        else:
            return None
        i += 1
    if best is None:
        return None
    if shortcode_end < 0:
        fillers += connectors
    hit = _Hit(*best)
    polite = fillers > 0 or hits > 1
    end = max(hit.end, shortcode_end)
    return hit, polite, shortcode_end >= 0, filler_language, (hit.start, end)


def _from_shape(
    shape: tuple[_Hit, bool, bool, str, tuple[int, int]], country: str, custom_only: bool = False
) -> Classification:
    hit, polite, shortcode, filler_language, span = shape
    language = _language(hit.key, hit.language or filler_language, country)
    if hit.rule in ("misspelling", "repeated letters", "spelled out"):
        return Classification(hit.intent, hit.keyword, MatchKind.INFERRED, language, hit.rule, span)
    if hit.rule == "custom keyword":
        return Classification(hit.intent, hit.keyword, MatchKind.EXACT, language, hit.rule, span)
    if polite:
        span = (hit.start, hit.end)
        return Classification(
            hit.intent, hit.keyword, MatchKind.INFERRED, language, "keyword + politeness", span
        )
    rule = "keyword + shortcode" if shortcode else "keyword"
    return Classification(hit.intent, hit.keyword, MatchKind.EXACT, language, rule, span)


# ------------------------------------------------------------------------------------ natural requests

_MSGS = (
    r"(?:texts?|txts?|messages?|msgs?|sms|smss|alerts?|promos?|promotions?|offers?|notifications?|updates?"
    r"|ads|adverts?|advertisements?|spam|marketing|e?mails?|reminders?|newsletters?|deals|crap|junk|shit|bs"
    r"|nonsense|garbage|stuff|subscriptions?|spamming)"
)
_SENDING = (
    r"(?:texting|txting|texing|messaging|msging|sending|contacting|emailing|calling|spamming|bothering"
    r"|harassing|harrassing|pestering|hitting me up|blowing up|smsing|writing|receiving|getting)"
)
_ME = (
    r"(?:me|us|my (?:\w+ )?(?:number|phone|cell|contact|details|info|information|"
    r"name|data)|this (?:\w+ )?number)"
)
_FR_SEND = (
    r"(?:ecri\w*|envoy\w*|contact\w*|derang\w*|harcel\w*|spam\w*|appel\w*|sollicit\w*|relanc\w*|text\w*)"
)
_FR_MSGS = r"(?:sms|messages?|textos?|pubs?|publicites?|spam|notifications?|relances?|promos?|mails?|offres?)"
_NL_SEND = (
    r"(?:sturen|sms\w*|bericht\w*|appen|mailen|bellen|spammen|versturen|toesturen|"
    r"zenden|contacteren|benaderen|ontvangen|lastig\w*)"
)
_DE_SEND = (
    r"(?:schreib\w*|send\w*|schick\w*|anschreib\w*|kontaktier\w*|belastig\w*|"
    r"nerv\w*|anruf\w*|zusend\w*|simsen|smsen|erhalten|bekommen|empfangen)"
)
_DE_MSGS = (
    r"(?:sms|nachricht\w*|werbung|mails?|textnachricht\w*|spam|angebote|newsletter|benachrichtigung\w*)"
)
_ES_MSGS = (
    r"(?:mensajes?|sms|publicidad|spam|promociones|textos?|notificaciones|correos|ofertas|avisos|alertas)"
)
_IT_SEND = r"(?:scriv|mand|invi|contatt|disturb|chiam)"
_PT_SEND = r"(?:envi|mand|escrev|lig|incomod|perturb|contat|receb)"
_PT_MSGS = r"(?:mensage\w*|sms|nada|promocoes|propagandas?|publicidade|spam)"

# (heads, rest, intent, language, keyword, flags). A phrase starts at a word among `heads` (a trailing "*"
# makes a head a prefix) and goes on with `rest`, a pattern over the following words (each preceded by one
# space). Flags: "neg" (a negation before it, or "niet"/"nicht"/"pas" after it, cancels it), "passive"
# ("was unsubscribed"), "end" (only politeness may follow in its sentence), "first" (first of its sentence).
_PHRASES: list[tuple[str, str, Intent, str, str, str]] = [
    # English (FCC: revocation by any reasonable means)
    ("stop quit cease end halt", rf"(?: \w+){{0,2}}? {_SENDING}", OUT, "en", "stop <texting>", "neg"),
    (
        "stop quit cease end halt cancel block",
        rf"(?: \w+){{0,2}}? {_MSGS}",
        OUT,
        "en",
        "stop <these messages>",
        "neg",
    ),
    ("remove delete erase drop lose scratch unlist", f" {_ME}", OUT, "en", "remove me", "neg"),
    ("take get", r" (?:me|us|my (?:\w+ )?number|this number) (?:off|out)", OUT, "en", "take me off", "neg"),
    ("unsubscrib* unsub unsubbed unsubing", "", OUT, "en", "unsubscribe", "neg passive"),
    ("opt", r"(?: me| us| my number)? out", OUT, "en", "opt me out", "neg passive"),
    ("opting opted optout optedout stopall", r"(?: out)?", OUT, "en", "opt me out", "neg passive"),
    (
        "dont",
        (
            r"(?: ever| you| u| even)? (?:text|txt|message|msg|contact|sms|call|email|"
            r"send|bother|spam|ping|write|hit)\w*(?: me| us| this number| again| anymore|"
            r" any more| no more| ever| anything)"
        ),
        OUT,
        "en",
        "do not text me",
        "",
    ),
    (
        "do",
        (
            r" not(?: ever| even)? (?:text|txt|message|msg|contact|sms|call|email|send|"
            r"bother|spam|ping|write)\w*(?: me| us| this number| again| anymore| any "
            r"more| ever| anything)"
        ),
        OUT,
        "en",
        "do not text me",
        "",
    ),
    (
        "never",
        (
            r"(?: ever)? (?:text|txt|message|msg|contact|sms|call|email|send|bother|"
            r"spam|write)\w*(?: me| us| this number| again)"
        ),
        OUT,
        "en",
        "do not text me",
        "",
    ),
    (
        "dont",
        rf" (?:want|need|wish|wanna|like)(?: to (?:receive|get|be sent|see))?(?: \w+){{0,2}}? {_MSGS}",
        OUT,
        "en",
        "I do not want these messages",
        "",
    ),
    (
        "do",
        rf" not (?:want|need|wish|like)(?: to (?:receive|get|be sent|see))?(?: \w+){{0,2}}? {_MSGS}",
        OUT,
        "en",
        "I do not want these messages",
        "",
    ),
    (
        "dont do",
        r"(?: not)? (?:want|wish) to (?:receive|get|be contacted|be texted|hear)",
        OUT,
        "en",
        "I do not want these messages",
        "",
    ),
    ("no", rf" (?:more|further)(?: \w+){{0,2}}? {_MSGS}", OUT, "en", "no more texts", ""),
    ("no", r" (?:more|further)", OUT, "en", "no more texts", "end first"),
    (
        "no",
        r" longer (?:want|wish|need|desire|require|consent|agree|interested|subscribe)",
        OUT,
        "en",
        "no longer want",
        "",
    ),
    ("leave", r" (?:me|us) alone", OUT, "en", "leave me alone", "neg"),
    ("go", r" away", OUT, "en", "go away", "end"),
    ("fuck fck fk f eff piss bugger sod back buzz", r" off", OUT, "en", "go away", ""),
    (
        "said told replied texted sent asked typed",
        r"(?: you| u| u guys| you guys)?(?: to)? (?:stop|unsubscribe|remove|opt out|quit)",
        OUT,
        "en",
        "I said stop",
        "neg",
    ),
    (
        "how",
        (
            r"(?: do| can| to| does one| would)?(?: i| we| you)? (?:unsubscribe|unsub|"
            r"opt out|get off (?:this|the|your|ur) list|get off of this|get removed)"
        ),
        OUT,
        "en",
        "how do I unsubscribe",
        "",
    ),
    (
        "how",
        (
            rf"(?: do| can| to| would)?(?: i| we)? (?:stop|cancel|end|turn off|block)(?: "
            rf"\w+){{0,2}}? (?:{_MSGS}|receiving|getting|this|these|them|it)"
        ),
        OUT,
        "en",
        "how do I stop these",
        "",
    ),
    (
        "never didnt",
        (
            r" (?:signed up|sign up|subscribed|subscribe|opted in|opt in|agreed|consented|"
            r"consent|gave (?:you )?(?:my number|permission|consent))"
        ),
        OUT,
        "en",
        "I never signed up",
        "",
    ),
    ("did", r" not (?:sign up|subscribe|opt in|agree|consent)", OUT, "en", "I never signed up", ""),
    (
        "revoke revoking revoked withdraw withdrawing",
        r" (?:my |all |any )?(?:consent|permission|authori[sz]ation)",
        OUT,
        "en",
        "revoke consent",
        "neg",
    ),
    ("dont", r" consent", OUT, "en", "revoke consent", ""),
    ("do", r" not consent", OUT, "en", "revoke consent", ""),
    ("not", r" interested(?: anymore| any more| at all)?", OUT, "en", "not interested", "end"),
    (
        "add put",
        (
            r" (?:me|my number|this number|us) (?:on|to) (?:the |your |ur )?(?:do not "
            r"(?:call|text|contact)|dnc|no contact|opt out|stop|block|blocked) list"
        ),
        OUT,
        "en",
        "do not call list",
        "",
    ),
    ("this thats its", r"(?: is)? (?:spam|harassment)", OUT, "en", "this is spam", "end"),
    (
        "reported reporting report",
        r"(?: this| you| it)?(?: as)? (?:spam|junk)",
        OUT,
        "en",
        "this is spam",
        "neg",
    ),
    ("want", r" out", OUT, "en", "I want out", "end"),
    ("count", r" me out", OUT, "en", "I want out", ""),
    (
        "enough",
        r"(?: already| with (?:the|these|your|all) \w+| of (?:this|these|the|your) \w+| texts| messages)?",
        OUT,
        "en",
        "enough",
        "end first",
    ),
    ("stop quit", r" (?:it|this|that)(?: now| already| please| pls)?", OUT, "en", "stop it", "neg end"),
    ("wish want", r" to be (?:removed|unsubscribed|taken off|opted out)", OUT, "en", "remove me", "neg"),
    # French
    (
        "desabonn* desinscri* desincri* desaboner desabone* desabonement",
        "",
        OUT,
        "fr",
        "désinscription",
        "neg",
    ),
    (
        "arret arrete arretez arreter arretes arrette arrettez stoppez stopper cessez cesser",
        rf"(?: de| d)?(?: me| m| nous)? {_FR_SEND}",
        OUT,
        "fr",
        "arrêtez de m'envoyer",
        "neg",
    ),
    (
        "arret arrete arretez arreter arretes stoppez stopper cessez cesser",
        rf"(?: \w+){{0,2}}? {_FR_MSGS}",
        OUT,
        "fr",
        "arrêtez les SMS",
        "neg",
    ),
    (
        "arrete arretez stoppez cessez",
        r" (?:ca|tout|cela|ce cirque|immediatement|maintenant)",
        OUT,
        "fr",
        "arrêtez",
        "neg end",
    ),
    ("ne n", rf"(?: me| m| nous)? {_FR_SEND}(?: \w+)? plus", OUT, "fr", "ne m'écrivez plus", ""),
    (
        "ne n",
        rf"(?: \w+)? plus(?: jamais)?(?: me| m| nous)?(?: \w+)? (?:{_FR_SEND}|recevoir|etre contacte\w*)",
        OUT,
        "fr",
        "ne plus m'écrire",
        "",
    ),
    (
        "ne n",
        (
            rf"(?: \w+)? (?:veux|voulons|souhaite|souhaitons|desire|voudrais|souhaiterais) "
            rf"(?:plus|pas|aucun\w*|rien)(?: \w+){{0,3}}? (?:{_FR_MSGS}|recevoir|rien|"
            rf"etre contacte\w*|vos|ces)"
        ),
        OUT,
        "fr",
        "je ne veux plus recevoir",
        "",
    ),
    (
        "veux souhaite",
        rf" plus(?: \w+){{0,3}}? (?:{_FR_MSGS}|recevoir|rien|etre contacte\w*|vos|ces)",
        OUT,
        "fr",
        "je ne veux plus recevoir",
        "",
    ),
    (
        "m",
        r" (?:ecrivez|envoyez|contactez|ecris|envoie|contacte|derangez) plus",
        OUT,
        "fr",
        "ne m'écrivez plus",
        "",
    ),
    ("plus", rf" (?:de|d) {_FR_MSGS}", OUT, "fr", "plus de SMS", ""),
    (
        (
            "retirez retirer retire enlevez enlever enleve supprimez supprimer supprime "
            "effacez effacer efface otez"
        ),
        r" (?:moi|nous|mon (?:numero|num|tel|telephone|contact|portable)|mes (?:coordonnees|donnees))",
        OUT,
        "fr",
        "retirez-moi",
        "neg",
    ),
    (
        "laissez laisse laissez",
        r" (?:moi|nous) (?:tranquille|en paix)",
        OUT,
        "fr",
        "laissez-moi tranquille",
        "neg",
    ),
    ("fichez fiche foutez fous foutes", r" (?:moi|nous) la paix", OUT, "fr", "laissez-moi tranquille", ""),
    ("lachez lache", r" (?:moi|nous)(?: la grappe)?", OUT, "fr", "laissez-moi tranquille", "neg"),
    ("pas", r" interesse\w*", OUT, "fr", "pas intéressé", "end"),
    ("interesse interessee", r" pas", OUT, "fr", "pas intéressé", "end"),
    ("jamais", r"(?: \w+)? inscrit\w*", OUT, "fr", "jamais inscrit", ""),
    # Dutch
    ("uitschrijv* afmeld*", "", OUT, "nl", "afmelden", "neg"),
    ("meld", r" (?:me|mij|ons|u) (?:(?!niet )\w+ )?af", OUT, "nl", "afmelden", "neg"),
    ("schrijf", r" (?:me|mij|ons) (?:(?!niet )\w+ )?uit", OUT, "nl", "afmelden", "neg"),
    (
        "stop stoppen stopt",
        r"(?: nou| maar| eens| alsjeblieft| aub)? (?:ermee|er mee|hiermee|hier mee|daarmee)",
        OUT,
        "nl",
        "stop ermee",
        "neg",
    ),
    (
        "stop stoppen stopt",
        rf"(?: \w+)? met(?: \w+)? (?:{_NL_SEND}|mij|me)",
        OUT,
        "nl",
        "stop met sturen",
        "neg",
    ),
    ("hou houd", r"(?: nou| eens| toch| alsjeblieft| dan)? op", OUT, "nl", "hou op", ""),
    ("kap", r" (?:ermee|er mee|nou|toch)", OUT, "nl", "hou op", ""),
    (
        "geen",
        (
            r"(?: \w+)? (?:sms\w*|bericht\w*|reclame|spam|tekst\w*|mails?|appjes|meldingen|"
            r"aanbiedingen|promoties?)(?: \w+)? meer"
        ),
        OUT,
        "nl",
        "geen sms meer",
        "",
    ),
    (
        "wil",
        r"(?: \w+)? (?:geen|niks|niets|nooit) (?:\w+ )?(?:meer|sms\w*|bericht\w*|reclame|ontvangen|spam)",
        OUT,
        "nl",
        "geen sms meer",
        "",
    ),
    ("niet", rf" meer(?: \w+)? {_NL_SEND}", OUT, "nl", "niet meer sturen", ""),
    ("stuur stuurt", r" (?:me |mij |ons )?(?:geen|niks|niets|nooit)", OUT, "nl", "niet meer sturen", ""),
    ("laat", r" (?:me|mij|ons) (?:met rust|gerust|in rust|met vrede)", OUT, "nl", "laat me met rust", ""),
    (
        "verwijder verwijderen verwijdert",
        r" (?:me|mij|ons|mijn (?:nummer|gegevens|telefoonnummer|06))",
        OUT,
        "nl",
        "verwijder mij",
        "neg",
    ),
    ("haal", r" (?:me|mij|ons|mijn nummer)(?: \w+){0,3}? (?:van|uit|af)", OUT, "nl", "verwijder mij", "neg"),
    ("niet", r" geinteresseerd", OUT, "nl", "niet geïnteresseerd", "end"),
    ("geen", r" interesse", OUT, "nl", "niet geïnteresseerd", "end"),
    # German
    ("abmeld* abbestell* austrag*", "", OUT, "de", "abmelden", "neg"),
    ("melden melde meld", r"(?: sie)? (?:mich|uns) (?:(?!nicht )\w+ )?ab", OUT, "de", "abmelden", "neg"),
    ("tragen trag tragt", r"(?: sie)? (?:mich|uns) (?:(?!nicht )\w+ )?aus", OUT, "de", "abmelden", "neg"),
    ("nicht", rf" mehr(?: \w+)? {_DE_SEND}", OUT, "de", "nicht mehr schreiben", ""),
    ("nie niemals", rf" (?:mehr|wieder)(?: \w+)? {_DE_SEND}", OUT, "de", "nicht mehr schreiben", ""),
    (
        (
            "schreib schreiben schreibt schick schicken schickt send sende senden sendet "
            "nerv nerven nervt belastigen kontaktieren"
        ),
        r"(?: (?:sie|mir|mich|uns|bitte|doch|endlich)){0,3} (?:nicht|nie|keine \w+) (?:mehr|wieder)",
        OUT,
        "de",
        "nicht mehr schreiben",
        "",
    ),
    ("keine kein", rf"(?: \w+)? {_DE_MSGS}(?: \w+)? mehr", OUT, "de", "keine SMS mehr", ""),
    ("will mochte moechte brauche", rf"(?: \w+)? keine {_DE_MSGS}", OUT, "de", "keine SMS mehr", ""),
    (
        "hor hort horen hoer hoert hoeren",
        r"(?: sie| endlich| bitte| doch| jetzt){0,2} auf",
        OUT,
        "de",
        "hör auf",
        "",
    ),
    ("aufhoren aufhoeren", "", OUT, "de", "hör auf", "neg"),
    ("lass lasst lassen", r"(?: sie)? (?:mich|uns)(?: \w+)? in ruhe", OUT, "de", "lass mich in Ruhe", ""),
    (
        "entfernen entfernt entferne losch losche loschen loscht loesch loeschen streichen streicht",
        r"(?: sie)? (?:mich|uns|meine (?:\w+ )?(?:nummer|handynummer|daten|telefonnummer|kontaktdaten))",
        OUT,
        "de",
        "löschen Sie mich",
        "neg",
    ),
    ("kein", r" interesse", OUT, "de", "kein Interesse", "end"),
    ("nicht", r" interessiert", OUT, "de", "kein Interesse", "end"),
    # Spanish
    (
        "dar darme dame denme deme dadme darnos darse doy den des da dan damos",
        r"(?: me| nos)? de baja",
        OUT,
        "es",
        "darme de baja",
        "neg",
    ),
    (
        "quiero solicito pido tramitar solicitar pedir",
        r" (?:la |mi |una |dar de |darme de )?baja",
        OUT,
        "es",
        "darme de baja",
        "neg",
    ),
    ("desuscrib* desinscrib* desafili* desapunt*", "", OUT, "es", "darme de baja", "neg"),
    (
        "no",
        (
            r" (?:me |nos )?(?:(?:mand|envi|contact|molest|llam|spame|text)(?:en|es|"
            r"e|eis)|escrib(?:an|as|a|ais))(?: mas| nada| nunca| mensajes| sms)?"
        ),
        OUT,
        "es",
        "no me manden",
        "",
    ),
    ("no", rf" mas(?: \w+)? {_ES_MSGS}", OUT, "es", "no más mensajes", ""),
    (
        "no",
        rf" (?:quiero|deseo|quisiera)(?: \w+)? (?:recibir|mas|nada|publicidad|{_ES_MSGS})",
        OUT,
        "es",
        "no quiero recibir",
        "",
    ),
    ("no", r" me interesa", OUT, "es", "no me interesa", "end"),
    ("no", r" (?:estoy|estamos) interesad\w*", OUT, "es", "no me interesa", "end"),
    (
        "deja dejen dejar deje dejad para paren parar pare parad",
        r" de (?:mandar|enviar|escribir|molestar|contactar|llamar|spamear|acosar|recibir)\w*",
        OUT,
        "es",
        "dejen de enviar",
        "neg",
    ),
    (
        "eliminame eliminenme borrame borrenme quitame quitenme sacame saquenme eliminadme borradme quitadme",
        "",
        OUT,
        "es",
        "elimíname",
        "neg",
    ),
    (
        (
            "eliminar elimina eliminen elimine borrar borra borren borre quitar quita "
            "quiten quite sacar saca saquen saque retirar retira retiren"
        ),
        (
            r" (?:mi (?:numero|telefono|celular|movil|contacto|datos)|de (?:la|su|sus|"
            r"esta|vuestra|tu) (?:lista|base))"
        ),
        OUT,
        "es",
        "elimíname",
        "neg",
    ),
    ("dejame dejenme dejadme", r" (?:en paz|tranquil\w*)", OUT, "es", "déjame en paz", ""),
    (
        "cancelar cancela cancelen cancele",
        rf" (?:mi |la |mis |los |las |estos |todos los )?(?:suscripcion|{_ES_MSGS})",
        OUT,
        "es",
        "cancelar suscripción",
        "neg",
    ),
    # Italian
    (
        (
            "disiscriv* disiscrizion* cancellami cancellatemi cancellarmi toglietemi "
            "toglimi togliermi rimuovetemi rimuovimi rimuovermi eliminatemi eliminami "
            "eliminarmi disabbon* disdic*"
        ),
        "",
        OUT,
        "it",
        "cancellami",
        "neg",
    ),
    (
        "non",
        (
            rf"(?: mi| ci)? {_IT_SEND}(?:etemi|atemi|itemi|ete|ate|ite|ere|are|ire|ermi|"
            rf"armi|irmi|eteci|ateci)(?: piu| mai)?"
        ),
        OUT,
        "it",
        "non scrivetemi più",
        "",
    ),
    (
        "non",
        (
            r" (?:voglio|desidero|vorrei)(?: piu)?(?: \w+){0,2}? (?:ricevere|messaggi|"
            r"sms|niente|nulla|pubblicita|notifiche|promozioni)"
        ),
        OUT,
        "it",
        "non voglio ricevere",
        "",
    ),
    ("non", r" mi interessa", OUT, "it", "non mi interessa", "end"),
    ("non", r" sono interessat\w*", OUT, "it", "non mi interessa", "end"),
    ("smetti smettete smettere smettetevi", rf" di {_IT_SEND}\w*", OUT, "it", "smettete di scrivermi", "neg"),
    ("smettila smettetela smettiamola", "", OUT, "it", "smettete di scrivermi", "neg"),
    ("lasciatemi lasciami lasciateci", r" (?:in pace|stare)", OUT, "it", "lasciatemi in pace", ""),
    (
        "rimuov* cancell* togli* elimin*",
        (
            r" (?:il mio numero|il mio contatto|i miei dati|dalla lista|dalla vostra "
            r"lista|dalle liste|la mia iscrizione|l iscrizione)"
        ),
        OUT,
        "it",
        "cancellami",
        "neg",
    ),
    # Portuguese
    ("descadastr* desinscrev*", "", OUT, "pt", "descadastrar", "neg"),
    (
        "cancelar cancele cancela cancelem",
        (
            r" (?:a |minha |o |meu |as |os |minhas |meus )?(?:inscricao|assinatura|cadastro|"
            r"mensage\w*|sms|envio\w*|notificac\w*)"
        ),
        OUT,
        "pt",
        "cancelar inscrição",
        "neg",
    ),
    (
        "sair",
        r" (?:da|dessa|desta|de sua|de vossa|do) (?:\w+ )?(?:lista|cadastro)",
        OUT,
        "pt",
        "sair da lista",
        "neg",
    ),
    ("quero", r"(?: \w+)? (?:sair|descadastr\w*)", OUT, "pt", "sair da lista", "neg"),
    (
        "pare para parem parar deixe deixem deixa deixar",
        rf" de (?:me )?{_PT_SEND}\w*",
        OUT,
        "pt",
        "pare de me enviar",
        "neg",
    ),
    (
        "nao",
        rf" (?:me |nos )?{_PT_SEND}(?:e|a|em|am|ar)(?: mais| nada)?(?= |$)",
        OUT,
        "pt",
        "não me envie",
        "",
    ),
    (
        "nao",
        rf" (?:quero|desejo|gostaria de)(?: mais)?(?: \w+)? (?:receber|{_PT_MSGS})",
        OUT,
        "pt",
        "não quero receber",
        "",
    ),
    (
        "nao",
        r" (?:tenho interesse|me interessa|estou interessad\w*)",
        OUT,
        "pt",
        "não tenho interesse",
        "end",
    ),
    ("chega", rf" de(?: \w+)? {_PT_MSGS}", OUT, "pt", "chega de mensagens", ""),
    ("me", r" (?:deixe|deixem|deixa) em paz", OUT, "pt", "me deixe em paz", ""),
    ("deixem deixe deixa", r"(?: me)? em paz", OUT, "pt", "me deixe em paz", ""),
    (
        "me",
        (
            r" (?:tire|tira|tirem|remova|removam|exclua|excluam|retire|retirem|apague|"
            r"apaguem) (?:da|de|desta|dessa|do) (?:\w+ )?(?:lista|cadastro)"
        ),
        OUT,
        "pt",
        "me tire da lista",
        "neg",
    ),
    (
        (
            "tire tira tirem remova removam exclua excluam apague apaguem retire retirem "
            "remover excluir apagar tirar"
        ),
        (
            r"(?: me)? (?:o )?(?:meu (?:numero|contato|telefone|celular)|da (?:\w+ )?lista|"
            r"desta lista|dessa lista|do cadastro)"
        ),
        OUT,
        "pt",
        "me tire da lista",
        "neg",
    ),
    # removal, revocation and opposition in every language ("Supprimez-le", "Bitte löschen", "Bórrenlo")
    (
        (
            "supprimez supprimer retirez retirer effacez effacer enlevez enlever verwijder "
            "verwijderen loschen loeschen losch entfernen borren borrenlo borrar eliminen "
            "eliminenlo eliminar rimuovete rimuovetelo cancellate cancellatelo apaguem "
            "apague removam remova excluam"
        ),
        r"(?: le| la| les| lo| het| es| ihn| il| o| me| moi| mich| mij)?",
        OUT,
        "",
        "remove me",
        "neg alone",
    ),
    ("retire retirer retirez", r" (?:mon|mes) consentement\w*", OUT, "fr", "revoke consent", "neg"),
    ("trek", r" (?:mijn|de) toestemming in", OUT, "nl", "revoke consent", "neg"),
    ("widerrufe widerrufen widerspreche widerspruch", "", OUT, "de", "revoke consent", "neg"),
    (
        "revoco revocar retiro",
        r" (?:mi |el |il |il mio )?(?:consentimiento|consenso)",
        OUT,
        "es",
        "revoke consent",
        "neg",
    ),
    ("opongo oppongo oponho", "", OUT, "es", "revoke consent", "neg"),
    ("revogo revogar", r" (?:o |meu |o meu )?consentimento", OUT, "pt", "revoke consent", "neg"),
    (
        "annuler annulez annule resilier resiliez",
        r" (?:mon|mes|l|cet|ce|les) (?:abonnement\w*|inscription|sms|messages?)",
        OUT,
        "fr",
        "annuler mon abonnement",
        "neg",
    ),
    (
        "annullate annulla annullare",
        r" (?:l |la mia |mia )?iscrizion\w*",
        OUT,
        "it",
        "annulla iscrizione",
        "neg",
    ),
    ("opzeggen opzeg", "", OUT, "nl", "opzeggen", "neg first"),
    (
        "sms newsletter abo abonnement werbung",
        r"(?: \w+){0,2}? (?:kundigen|kuendigen|abbestellen|beenden|stoppen|abmelden)",
        OUT,
        "de",
        "abmelden",
        "neg",
    ),
    (
        "schluss",
        r"(?: mit| damit)(?: den| der| dem| diesen| deinen| ihren)? " + _DE_MSGS,
        OUT,
        "de",
        "Schluss mit den SMS",
        "",
    ),
    ("no", r" mas", OUT, "es", "no más mensajes", "end first"),
    ("niente", r" piu", OUT, "it", "niente più", ""),
    (
        "basta",
        (
            r" (?:con|de|di|com)(?: \w+){0,2}? (?:sms|messaggi|mensajes|mensagens|pubblicita|"
            r"publicidad|spam|promozioni)"
        ),
        OUT,
        "it",
        "basta messaggi",
        "",
    ),
    ("pare para parem", r" com (?:isto|isso)", OUT, "pt", "pare de me enviar", "neg"),
    (
        "cancela cancelem",
        r" (?:tudo|a minha subscricao|a subscricao|minha subscricao)",
        OUT,
        "pt",
        "cancelar inscrição",
        "neg",
    ),
    ("cancelar", r" (?:a |minha |a minha )?subscricao", OUT, "pt", "cancelar inscrição", "neg"),
    (
        "afgemeld uitgeschreven abgemeldet ausgetragen",
        r" (?:worden|werden|zijn|sein)",
        OUT,
        "nl",
        "afmelden",
        "neg",
    ),
    ("nooit", r" (?:aangemeld|ingeschreven|toestemming gegeven)", OUT, "nl", "I never signed up", ""),
    ("nie niemals", r" (?:angemeldet|eingetragen|zugestimmt)", OUT, "de", "I never signed up", ""),
    (
        "nunca",
        r" (?:me )?(?:suscribi|inscribi|registre|inscrevi|cadastrei)",
        OUT,
        "es",
        "I never signed up",
        "",
    ),
    ("mai", r" (?:iscritto|iscritta)", OUT, "it", "I never signed up", ""),
    ("wil", r" (?:hier|ervan|eraf) (?:vanaf|af|uit)", OUT, "nl", "afmelden", "neg"),
    ("bel sms mail app stuur", r"(?: \w+){0,3}? (?:nooit|niet) meer", OUT, "nl", "niet meer sturen", ""),
    # opt-in
    (
        "start resume restart continue",
        r" (?:sending|texting|messaging)(?: me)?",
        IN,
        "en",
        "start sending again",
        "neg",
    ),
    ("resubscrib* resub", "", IN, "en", "resubscribe", "neg"),
    ("subscribe", r" (?:me|again|back)", IN, "en", "subscribe me", "neg"),
    ("sign", r" me (?:back )?up", IN, "en", "subscribe me", "neg"),
    ("opt", r"(?: me| back){0,2} in", IN, "en", "opt me in", "neg"),
    ("add put", r" me back", IN, "en", "subscribe me", "neg"),
    ("reabonn* reinscri*", "", IN, "fr", "réabonnez-moi", "neg"),
    ("abonnez abonner", r" (?:moi|nous)", IN, "fr", "réabonnez-moi", "neg"),
    ("aanmeld*", "", IN, "nl", "aanmelden", "neg"),
    ("anmeld*", "", IN, "de", "anmelden", "neg"),
    (
        (
            "inscrire inscris inscrivez inschrijv* iscriviti iscrivermi iscrivetemi "
            "inscrevam inscrever inscreva cadastra cadastrar suscribanme"
        ),
        "",
        IN,
        "",
        "subscribe me",
        "neg",
    ),
    ("darme dame denme doy dar dadme", r" de alta", IN, "es", "darme de alta", "neg"),
    ("suscribirme suscribeme resuscrib*", "", IN, "es", "darme de alta", "neg"),
    ("volver", r" a (?:suscribir\w*|recibir)", IN, "es", "darme de alta", "neg"),
    ("reiscriv* riattiv* iscrivetemi", "", IN, "it", "iscrivimi", "neg"),
    ("reativ* reinscrev*", "", IN, "pt", "reativar", "neg"),
    ("voltar volta", r" a receber", IN, "pt", "reativar", "neg"),
    (
        "vuelvan volver vuelve voltem voltar volta tornare torna tornate",
        r" a (?:enviar\w*|mandar\w*|recibir|ricevere|inviar\w*|receber|suscribir\w*|iscriver\w*)",
        IN,
        "",
        "send again",
        "neg",
    ),
    ("renvoyez renvoie", r" (?:moi|nous)", IN, "fr", "send again", "neg"),
    # help
    ("need get", r" (?:some )?help", HELP, "en", "I need help", "neg"),
    ("can could", r" (?:you|someone|anyone|u) help", HELP, "en", "I need help", ""),
    ("besoin", r" (?:d |de l )?aide", HELP, "fr", "besoin d'aide", ""),
    ("aidez", r" moi", HELP, "fr", "besoin d'aide", ""),
    ("hulp", r" nodig", HELP, "nl", "hulp nodig", ""),
    ("brauche", r"(?: \w+)? hilfe", HELP, "de", "ich brauche Hilfe", ""),
    ("necesito", r" ayuda", HELP, "es", "necesito ayuda", ""),
    ("ayudame ayudenme", "", HELP, "es", "necesito ayuda", ""),
    ("bisogno", r" di aiuto", HELP, "it", "ho bisogno di aiuto", ""),
    ("aiutatemi aiutami", "", HELP, "it", "ho bisogno di aiuto", ""),
    ("preciso", r" de ajuda", HELP, "pt", "preciso de ajuda", ""),
    (
        (
            "customer support helpline hotline klantenservice kundenservice kundendienst "
            "servizio assistenza atendimento suporte apoio"
        ),
        r"(?: service| number| clienti| ao cliente| clientes)?",
        HELP,
        "",
        "customer service",
        "",
    ),
    ("service", r" (?:client|clients|clientele)", HELP, "fr", "customer service", ""),
    ("atencion", r" al cliente", HELP, "es", "customer service", ""),
    (
        "terms conditions voorwaarden bedingungen condiciones condizioni condicoes termos",
        r" (?:of|du|de|van|der|des|del|do|da|hat|zijn|sont|sono|son|sao|dieses)",
        HELP,
        "",
        "terms of the service",
        "",
    ),
    (
        "more plus meer mehr mas piu mais",
        (
            r" (?:info|infos|information|informations|informatie|informationen|informacion|"
            r"informazioni|informacoes|d info|d infos|d informations)"
        ),
        HELP,
        "",
        "more information",
        "",
    ),
    ("pouvez peux", r" (?:vous )?(?:m aider|me aider)", HELP, "fr", "besoin d'aide", ""),
    ("kan kunt", r" (?:iemand|u|je|jij) (?:mij|me) helpen", HELP, "nl", "hulp nodig", ""),
    ("konnen konnt kann", r" (?:sie|du|ihr|mir|jemand)(?: mir)? helfen", HELP, "de", "ich brauche Hilfe", ""),
    ("puede pueden puedes", r" (?:ayudarme|ayudar)", HELP, "es", "necesito ayuda", ""),
    ("potete puoi puo", r" (?:aiutarmi|aiutare)", HELP, "it", "ho bisogno di aiuto", ""),
    ("podem pode podes", r" (?:me )?(?:ajudar|ajudem)", HELP, "pt", "preciso de ajuda", ""),
]

_KEYWORD_WORDS = (
    r"(?:stop|stopp|arret|baja|unsubscribe|cancel|end|quit|sair|parar|alto|basta|"
    r"stopall|optout|start|help|info|aide|yes|oui)"
)
# Tokens that do not count as a cue: chatter that merely contains a keyword, and quoted instructions.
_CHATTER: list[tuple[str, str]] = [
    ("bus tram train last next first pit truck rest full one non whistle photo request", " stop"),
    (
        "stop",
        (
            r" (?:by|over|and shop|n shop|shop|sign|signs|light|lights|watch|motion|"
            r"loss|gap|and go|making sense|in the name of love)"
        ),
    ),
    ("the", r" end(?: of)?"),
    ("end", r" of"),
    ("in at", r" the end"),
    ("quit", r" (?:smoking|drinking|vaping|my job|the job|work|school|sugar)"),
    ("estoy esta estas estamos estan estaba", r" de baja"),
    ("baja", r" (?:california|sur)"),
    ("sans", r" arret\w*"),
    ("why did have has", r"(?: you| u| they| y all)(?: \w+)? (?:stop|stopped|quit|end|ended)"),
    (
        (
            "desinscri* desabonn* unsubscrib* afgemeld uitgeschreven abgemeldet ausgetragen "
            "descadastr* disiscri*"
        ),
        (
            r"(?: \w+){0,2}? (?:par erreur|by mistake|by accident|per ongeluk|per abuis|"
            r"aus versehen|versehentlich|por error|por equivocacion|per errore|por engano|"
            r"sem querer)"
        ),
    ),
    ("accidentally", r"(?: \w+)? (?:unsubscrib\w*|opted out|stopped)"),
    ("arret", r" (?:de bus|de tram|maladie|de travail|du bus)"),
    ("arrete arreter", r" (?:de|d) (?:rire|fumer|pleurer|boire|manger)"),
    (
        (
            "reply text txt send sms envoyez envoie envoyer repondez repondre tapez "
            "stuur antwoord sende senden schicke schicken antworte antworten responde "
            "responder envia envie manda mande rispondi invia inviare responda digite"
        ),
        (
            rf"(?: with| the word| le mot| het woord| das wort| la palabra| la parola|"
            rf" a palavra)? {_KEYWORD_WORDS}(?: \w+)? (?:to|au|a|al|naar|an|aan|para|"
            rf"per|at|ao|pour|om|um)(?: (?:unsubscribe|opt out|stop|end|cancel|quit|unsub|"
            rf"optout))?"
        ),
    ),
    (
        "to",
        (
            r" (?:unsubscribe|opt out|unsub|optout|stop)(?: \w+){0,2}? (?:reply|text|"
            r"txt|send|click|visit|go|press|call|respond)"
        ),
    ),
    (
        "pour",
        r" (?:vous |se |te )?(?:desabonner|desinscrire)(?: \w+){0,2}? (?:envoyez|repondez|tapez|cliquez)",
    ),
]


def _compile_heads(
    entries: list[tuple[str, str, Intent, str, str, str]] | list[tuple[str, str]],
) -> tuple[dict[str, list[int]], dict[str, list[int]], list[re.Pattern[str]], set[int]]:
    exact: dict[str, list[int]] = {}
    prefixes: dict[str, list[int]] = {}
    patterns = []
    for number, entry in enumerate(entries):
        heads, rest = str(entry[0]), str(entry[1])
        patterns.append(re.compile(rf"{rest}(?= |\Z)" if rest else r"(?= |\Z)"))
        for head in heads.split():
            if head.endswith("*"):
                prefixes.setdefault(head[:-1], []).append(number)
            else:
                exact.setdefault(head, []).append(number)
    return exact, prefixes, patterns, {len(p) for p in prefixes}


_PHRASE_HEADS, _PHRASE_PREFIXES, _PHRASE_PATTERNS, _PHRASE_PREFIX_SIZES = _compile_heads(_PHRASES)
_CHATTER_HEADS, _CHATTER_PREFIXES, _CHATTER_PATTERNS, _CHATTER_PREFIX_SIZES = _compile_heads(_CHATTER)
_WINDOW = 12  # words a phrase may span


class _Unknown(Exception):
    """A word of a pattern that may be any word."""


_GROWING, _WHOLE, _BEGINNING = 0, 1, 2  # a word being read, read to its end, or only its beginning known


def _read_words(states: set[tuple[str, int]], items: Any) -> set[tuple[str, int]]:
    """The first word each match of the parsed pattern `items` may add to the words of `states`."""
    for op, argument in items:
        growing = {(word, status) for word, status in states if status == _GROWING}
        if not growing:
            return states
        name = str(op)
        if name == "LITERAL" and argument == ord(" "):
            if ("", _GROWING) in growing:
                raise _Unknown
            read = {(word, _WHOLE) for word, _ in growing}
        elif name == "LITERAL":
            read = {(word + chr(argument), _GROWING) for word, _ in growing}
        elif name == "IN" and all(str(o) == "LITERAL" for o, _ in argument):
            read = set().union(*(_read_words(growing, [literal]) for literal in argument))
        elif name == "SUBPATTERN":
            read = _read_words(growing, argument[3])
        elif name == "BRANCH":
            read = set().union(*(_read_words(growing, branch) for branch in argument[1]))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, repeated = argument
            read = growing
            for _ in range(low):
                read = _read_words(read, repeated)
            if high > 4:  # unbounded: only the beginning of the word is known
                if ("", _GROWING) in read:
                    raise _Unknown
                read = {(word, _BEGINNING if status == _GROWING else status) for word, status in read}
            else:
                more = read
                for _ in range(low, high):
                    more = _read_words(more, repeated)
                    read = read | more
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            read = growing
        elif ("", _GROWING) in growing:
            raise _Unknown
        else:
            read = {(word, _BEGINNING) for word, _ in growing}
        states = (states - growing) | read
        if len(states) > 4096:
            raise _Unknown
    return states


class _Trigger(NamedTuple):
    """Words one of which every match of a pattern contains: whole words, or beginnings of words."""

    whole: frozenset[str]
    beginnings: tuple[str, ...]  # each with the space before it, to be found in " " + the words joined


def _triggers(rest: str) -> tuple[_Trigger, ...]:
    """For each space the pattern always matches, the words that may follow it (an empty tuple: the head
    alone tells whether the phrase may match). Read from the parsed pattern, so they never drift from it."""
    items = list(_regex_parser.parse(rest))
    found = []
    for j in range(1, len(items)):
        if str(items[j - 1][0]) != "LITERAL" or items[j - 1][1] != ord(" "):
            continue
        try:
            words = _read_words({("", _GROWING)}, items[j:])
        except _Unknown:
            continue
        if ("", _GROWING) in words:
            continue
        whole = frozenset(word for word, status in words if status != _BEGINNING)
        beginnings = tuple(sorted(" " + word for word, status in words if status == _BEGINNING))
        found.append(_Trigger(whole, beginnings))
    return tuple(found)


_PHRASE_TRIGGERS = [_triggers(entry[1]) for entry in _PHRASES]
_CHATTER_TRIGGERS = [_triggers(entry[1]) for entry in _CHATTER]


def _possible(triggers: tuple[_Trigger, ...], present: set[str], spaced: str) -> bool:
    """Whether the text (its set of words, and its words joined with a space before each) has a word
    of each trigger: a pattern with one missing cannot match anywhere in it."""
    for whole, beginnings in triggers:
        if present.isdisjoint(whole):
            for beginning in beginnings:
                if beginning in spaced:
                    break
            else:
                return False
    return True


def _live_candidates(
    present: set[str],
    candidates: Callable[[str], tuple[int, ...]],
    triggers: list[tuple[_Trigger, ...]],
    spaced: str,
) -> dict[str, tuple[int, ...]]:
    """Each distinct word of the text -> the patterns that may start at it and may match in the text."""
    possible: dict[int, bool] = {}
    live = {}
    for word in present:
        if not (found := candidates(word)):
            continue
        kept = []
        for number in found:
            if (ok := possible.get(number)) is None:
                ok = possible[number] = _possible(triggers[number], present, spaced)
            if ok:
                kept.append(number)
        if kept:
            live[word] = tuple(kept)
    return live


def _candidates(
    word: str, exact: dict[str, list[int]], prefixes: dict[str, list[int]], sizes: set[int]
) -> list[int]:
    found = list(exact.get(word, ()))
    for size in sizes:
        if size <= len(word) and (more := prefixes.get(word[:size])):
            found.extend(more)
    return found


@functools.lru_cache(maxsize=65536)
def _phrase_candidates(word: str) -> tuple[int, ...]:
    """The phrases that may start at this word (cached: words repeat)."""
    return tuple(_candidates(word, _PHRASE_HEADS, _PHRASE_PREFIXES, _PHRASE_PREFIX_SIZES))


@functools.lru_cache(maxsize=65536)
def _misspelt_phrase_candidates(word: str) -> tuple[int, ...]:
    """The phrases that may start at this word, read as the keyword it misspells if it does."""
    return _phrase_candidates(_MISSPELT.get(word, word))


@functools.lru_cache(maxsize=65536)
def _chatter_candidates(word: str) -> tuple[int, ...]:
    return tuple(_candidates(word, _CHATTER_HEADS, _CHATTER_PREFIXES, _CHATTER_PREFIX_SIZES))


_NEGATORS = frozenset(
    _split(
        "dont didnt doesnt cant cannot wont never not shouldnt wouldnt couldnt isnt arent wasnt havent hasnt "
        "aint ne n pas jamais niet geen nooit nicht kein keine keinen nie niemals no nunca jamas ni ninguna "
        "ningun non mai nessun nessuna nao nem nenhum nenhuma aucun aucune"
    )
)
_NEGATORS_EN = _NEGATORS - {"no", "nao", "ni", "nem"}  # English "no, stop" is not "do not stop"
# Words that may stand between a negation and the verb it negates: "don't ever stop", "no me des de baja".
_BETWEEN = frozenset(
    _split(
        "please pls ever you u really just even to want wanna need mean plan intend like try going gonna i "
        "me my us it we have be get dare m moi nous vous le la les l te t se s surtout veux voulez souhaite "
        "pour de d des den da dar doy quiero que por favor lo los las mi ti ci vi si voglio di quero o a wil "
        "wilt mij je ons mich mir uns sie bitte will mochte moechte ich ik yo io eu zu het mijn meine mein "
        "fall manera modo jeito caso"
    )
)
_AFTER_NEGATORS = frozenset({"niet", "nicht", "pas"})
_PASSIVE = frozenset(_split("was were been got get being be am is are im ive weve youve"))


def _negated(words: list[str], clause: list[int], first: int, last: int, language: str) -> bool:
    """A negation of the phrase words[first:last]: before it in its sentence, or "niet"/"nicht"/"pas"
    right after it ("stop niet", "meld me niet af" is read by the phrase itself)."""
    negators = _NEGATORS_EN if language in ("en", "") else _NEGATORS
    if any(words[k] in negators for k in range(first + 1, last)):
        return True
    j = first - 1
    while j >= 0 and first - j <= 5 and clause[j] == clause[first]:
        if words[j] in negators:
            return True
        if words[j] not in _BETWEEN:
            break
        j -= 1
    k = last
    while k < len(words) and k - last < 3 and clause[k] == clause[first]:
        if words[k] in _AFTER_NEGATORS:
            return k + 1 >= len(words) or words[k + 1] not in ("meer", "mehr", "plus")
        if words[k] not in ("me", "moi", "mij", "mich", "nous", "ons", "uns", "je"):
            break
        k += 1
    return False


def _passive(words: list[str], first: int) -> bool:
    """ "was unsubscribed", "I got opted out": told as something done to them."""
    for j in range(first - 1, max(first - 3, -1), -1):
        if words[j] in _PASSIVE:
            return True
        if words[j] not in ("i", "just", "already", "me", "been", "recently"):
            return False
    return False


class _Words:
    """The words of a text as phrases are matched in them. Offsets and clauses are made on first use: most
    texts have no word a phrase may start at."""

    def __init__(self, tokens: tuple[_Token, ...], words: list[str]) -> None:
        self.tokens = tokens
        self.words = words
        self.present = set(words)  # the distinct words
        self.joined = " ".join(words)  # the words, one space apart
        self.chatter = [False] * len(words)

    @functools.cached_property
    def offsets(self) -> list[int]:
        """Where each word starts in `joined`."""
        lengths = itertools.accumulate(map(len, self.words), initial=0)
        offsets = list(map(operator.add, lengths, itertools.count()))
        offsets.pop()
        return offsets

    @functools.cached_property
    def clause(self) -> list[int]:
        """The sentence or clause of each word."""
        clause = list(itertools.accumulate(map(_BRK, self.tokens), initial=0))
        del clause[0]
        return clause

    @functools.cached_property
    def bounds(self) -> list[tuple[int, int]]:
        """[first, end) words of each clause."""
        if not self.words:
            return [(0, 0)]
        # clause numbers run on from clause[0] (0 when the first token has no break before it, else 1)
        starts = list(itertools.compress(range(len(self.words)), map(_BRK, self.tokens)))
        if not starts or starts[0]:
            starts.insert(0, 0)
        return [(0, 0)] * self.clause[0] + list(itertools.pairwise([*starts, len(self.words)]))


def _words(tokens: tuple[_Token, ...], words: list[str] | None = None) -> _Words:
    """The words of the tokens (`words`: their words, if already listed), chatter marked."""
    result = _Words(tokens, list(map(_WORD, tokens)) if words is None else words)
    words, present, chatter = result.words, result.present, result.chatter
    live = _live_candidates(present, _chatter_candidates, _CHATTER_TRIGGERS, " " + result.joined)
    for i in [i for i, word in enumerate(words) if word in live] if live else ():
        for number in live[words[i]]:
            if (last := _match(result, _CHATTER_PATTERNS[number], i)) is not None:
                for k in range(i, last):
                    chatter[k] = True
    return result


def _match(text: _Words, pattern: re.Pattern[str], i: int) -> int | None:
    """The end (exclusive word index) of `pattern` matched right after word i, within the window."""
    start = text.offsets[i] + len(text.words[i])
    last = min(len(text.words) - 1, i + _WINDOW)
    found = pattern.match(text.joined, start, text.offsets[last] + len(text.words[last]))
    if found is None:
        return None
    end = found.end()
    if end < len(text.joined) and text.joined[end] != " ":
        return None  # not at the end of a word
    return bisect.bisect_right(text.offsets, end)


def _phrase(text: _Words, country: str, tokens: tuple[_Token, ...]) -> Classification | None:
    """The first natural request of the highest intent (opt-out, then help, then opt-in)."""
    best: dict[str, Classification] = {}  # by intent value (hashing a str is cheaper than an Enum)
    words = text.words
    live = _live_candidates(text.present, _misspelt_phrase_candidates, _PHRASE_TRIGGERS, " " + text.joined)
    for i in [i for i, word in enumerate(words) if word in live] if live else ():
        if text.chatter[i]:
            continue
        for number in live[words[i]]:
            intent, language, keyword, flags = _PHRASES[number][2:]
            if intent.value in best:
                continue
            if (last := _match(text, _PHRASE_PATTERNS[number], i)) is None:
                continue
            if any(text.clause[k] != text.clause[i] for k in range(i, last)):
                continue
            if "first" in flags and i > 0 and text.clause[i - 1] == text.clause[i]:
                continue
            clause_start, clause_end = text.bounds[text.clause[i]]
            if "end" in flags and any(words[k] not in _FILLERS for k in range(last, clause_end)):
                continue
            if "alone" in flags and any(
                words[k] not in _FILLERS and words[k] not in _OBJECTS
                for k in (*range(clause_start, i), *range(last, clause_end))
            ):
                continue
            if "neg" in flags and _negated(words, text.clause, i, last, language):
                continue
            if "passive" in flags and _passive(words, i):
                continue
            span = (tokens[i].start, tokens[last - 1].end)
            language = _language("", language, country)
            best[intent.value] = Classification(
                intent, keyword, MatchKind.INFERRED, language, "natural request", span
            )
        if "OPT_OUT" in best:
            break
    for value in ("OPT_OUT", "HELP", "OPT_IN"):
        if value in best:
            return best[value]
    return None


# What a removal verb may have with it: "Nummer bitte löschen", "merci de le retirer".
_OBJECTS = frozenset(
    _split(
        "number numero nummer mon mijn meine mein mi il mio meu o le la lo het es ihn de graag merci bitte "
        "por favor per favore sofort maintenant"
    )
)
# "again" in each language: with a verb of sending or receiving, a request to opt in again.
_AGAIN = frozenset(
    _split("again nouveau weer opnieuw wieder erneut nuevo otra vez nuovo novamente novo outra")
)
_AGAIN_VERBS = re.compile(
    r"start\w*|receiv\w*|get|getting|send\w*|text\w*|subscri\w*|recevoir|renvoy\w*|envoy\w*|inscri\w*"
    r"|ontvangen|krijgen|sturen|stuur\w*|aanmeld\w*|inschrijv\w*|zet|bekommen|erhalten|schick\w*"
    r"|eintrag\w*|anmeld\w*|recibir|envi\w*|suscrib\w*|vuelvan|ricever\w*|invia\w*|manda\w*|iscriv\w*"
    r"|receber|cadastr\w*|inscrev\w*|subscrever|voltem|tornare|iniciar|inizia|begin|melden|meld|schrijf"
)


# A code or link sent again is not a subscription: "kunnen jullie de code opnieuw sturen?"
_TRANSACTIONAL = frozenset(
    _split(
        "code codes pin otp link password wachtwoord passwort codigo codice senha verification verificatie"
    )
)


def _again(text: _Words, tokens: tuple[_Token, ...], country: str) -> Classification | None:
    """ "start again", "je souhaite recevoir à nouveau vos SMS", "Ich will wieder SMS bekommen"."""
    words = text.words
    if _AGAIN.isdisjoint(text.present):
        return None
    seen = set()
    for i, word in enumerate(words):
        if word not in _AGAIN or text.clause[i] in seen:
            continue
        seen.add(text.clause[i])
        clause = range(*text.bounds[text.clause[i]])
        if any(words[k] in _NEGATORS or words[k] in _TRANSACTIONAL for k in clause):
            continue
        for k in clause:
            if _AGAIN_VERBS.fullmatch(words[k]):
                span = (tokens[min(i, k)].start, tokens[max(i, k)].end)
                language = _language("", "", country)
                return Classification(IN, "send again", MatchKind.INFERRED, language, "natural request", span)
    return None


def _sentence_bounds(tokens: tuple[_Token, ...], by_line: bool) -> list[int]:
    """The first token of each sentence (or line), then the number of tokens."""
    if by_line:
        starts = [i for i in range(1, len(tokens)) if tokens[i].line != tokens[i - 1].line]
    else:
        starts = list(itertools.compress(range(1, len(tokens)), map(_BRK, itertools.islice(tokens, 1, None))))
    return [0, *starts, len(tokens)]


def _sentences(tokens: tuple[_Token, ...], by_line: bool) -> list[tuple[int, int]]:
    """[start, end) tokens of each sentence (or line)."""
    return list(itertools.pairwise(_sentence_bounds(tokens, by_line)))


_MULTIWORD_WORDS = frozenset(word for key in KEYWORDS if " " in key for word in key.split())


@functools.lru_cache(maxsize=65536)
def _plain(word: str) -> bool:
    """A word that `_shaped` reads as none of keyword, politeness, connector or shortcode (without custom
    keywords): a text or sentence with one is not a keyword with politeness."""
    return not (
        word in KEYWORDS
        or word in _MULTIWORD_WORDS
        or word in _FILLERS
        or word in _CONNECTORS
        or word in _MISSPELT
        or word[-1:].isdecimal()  # a shortcode, or one glued to a keyword
        or _has_run(word, 3)
    )


@functools.lru_cache(maxsize=65536)
def _keyed(word: str) -> bool:
    """A word `_shaped` may read as a keyword or the start of one (without custom keywords): a part with
    none is never a keyword."""
    return (
        word in KEYWORDS
        or word in _MULTIWORD_FIRST
        or word in _MISSPELT
        or word[-1:].isdecimal()  # one glued to a shortcode
        or _has_run(word, 3)
    )


def _strong(shape: tuple[_Hit, bool, bool, str, tuple[int, int]] | None, edge: bool = False) -> bool:
    """An opt-out keyword that tells in a longer text; a weak one only in its first or last sentence."""
    return shape is not None and shape[0].intent is OUT and (edge or shape[0].key not in _WEAK)


@functools.lru_cache(maxsize=8192)
def _classify(text: str, country: str) -> Classification:
    analysed = _analyse(text)
    tokens = analysed.tokens
    if not tokens:
        return NOTHING
    words = list(map(_WORD, tokens))
    distinct = set(words)
    plain_words = {word for word in distinct if _plain(word)}
    # a part with no keyed word is never a keyword (a keyed word is never plain)
    keyed_words = {word for word in distinct - plain_words if _keyed(word)}
    # plain[k]: plain words among the first k tokens; a part with one is never a keyword with politeness
    if analysed.spelled:
        plain_flags: Iterable[bool] = (t.word in plain_words and not t.spelled for t in tokens)
    else:
        plain_flags = map(plain_words.__contains__, words)
    plain = list(itertools.accumulate(plain_flags, initial=0))
    if not plain[-1] and (shape := _shaped(tokens)) is not None:
        return _from_shape(shape, country)
    if words[0] == "ask" and len(words) >= 3:
        entry, size = _keyword_at(words, 2, None)
        if entry is not None and 2 + size == len(words):
            intent, documented, language, key = entry
            keyword = f"ask <company> {documented.lower()}"
            span = (tokens[0].start, tokens[-1].end)
            return Classification(
                intent, keyword, MatchKind.EXACT, _language(key, language, country), "gateway form", span
            )
    if tokens[-1].line > tokens[0].line and keyed_words:
        for start, end in _sentences(tokens, by_line=True):
            if plain[end] > plain[start]:
                continue
            if _strong(shape := _shaped(tokens[start:end])) and shape is not None:
                found = _from_shape(shape, country)
                return Classification(
                    found.intent,
                    found.keyword,
                    found.kind,
                    found.language,
                    "keyword on its own line",
                    found.span,
                )
    text_words = _words(tokens, words)
    if "wrong" in words and ("stop" in words or "remove" in words):
        for i in range(len(words) - 1):
            if words[i] == "wrong" and words[i + 1] == "number":
                span = (tokens[i].start, tokens[i + 1].end)
                return Classification(
                    OUT,
                    "wrong number",
                    MatchKind.INFERRED,
                    _language("", "en", country),
                    "wrong number",
                    span,
                )
    bounds = _sentence_bounds(tokens, by_line=False) if keyed_words else [0]
    # the sentences with no plain word (in bulk: a long text has many sentences, most with a plain word)
    plain_at = list(map(plain.__getitem__, bounds))
    for number in itertools.compress(itertools.count(), map(operator.eq, plain_at, plain_at[1:])):
        start, end = bounds[number], bounds[number + 1]
        edge = number in (0, len(bounds) - 2)
        if (
            end - start < len(tokens)
            and not keyed_words.isdisjoint(words[start:end])
            and _strong(shape := _shaped(tokens[start:end]), edge)
            and shape is not None
            and not any(text_words.chatter[start:end])
        ):
            found = _from_shape(shape, country)
            return Classification(
                found.intent,
                found.keyword,
                MatchKind.INFERRED,
                found.language,
                "keyword in a sentence",
                found.span,
            )
    phrase = _phrase(text_words, country, tokens)
    if phrase is not None and phrase.intent is OUT:
        return phrase
    return phrase or _again(text_words, tokens, country) or NOTHING


def _custom(text: str, country: str, custom: Mapping[str, tuple[Intent, str]]) -> Classification | None:
    tokens = _analyse(text).tokens
    words = [t.word for t in tokens]
    if len(words) >= 3 and words[0] == "ask":
        entry, size = _keyword_at(words, 2, custom)
        if entry is not None and 2 + size == len(words) and entry[3] in custom:
            keyword = f"ask <company> {entry[1].lower()}"
            span = (tokens[0].start, tokens[-1].end)
            return Classification(
                entry[0], keyword, MatchKind.EXACT, _language("", "", country), "custom keyword", span
            )
    shape = _shaped(tokens, custom)
    if shape is None or shape[0].rule != "custom keyword" or shape[1]:
        return None
    hit = shape[0]
    return Classification(
        hit.intent, hit.keyword, MatchKind.EXACT, _language("", "", country), "custom keyword", shape[4]
    )


def classify(
    text: str, country: str = "", custom: Mapping[str, tuple[Intent, str]] | None = None
) -> Classification:
    """The intent of an inbound text (the rules, in order, are in the module documentation). `custom`: the
    admin's keywords of the shortcode or licence, normalised keyword -> (intent, keyword as written).
    Cached without custom keywords: inbound texts repeat ("STOP", "Stop", "ARRET")."""
    found = _classify(text, country)
    # a built-in keyword, or an opt-out read by any rule, is never overridden (never a wrong ALLOW)
    if not custom or found.kind is MatchKind.EXACT or found.intent is Intent.OPT_OUT:
        return found
    return _custom(text, country, custom) or found
