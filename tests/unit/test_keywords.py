"""The keyword classifier, case by case: every keyword and language, the gateway form, misspellings,
natural-language revocation, and (a third or more of the table) texts that must not count."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stopgate_server.domain.keywords import Intent, MatchKind, classify, normalise

OUT, IN, HELP, NONE = Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP, Intent.NONE
EXACT, INFERRED = MatchKind.EXACT, MatchKind.INFERRED

POSITIVES = [
    # every opt-out keyword, in the forms people send them
    ("STOP", OUT, EXACT),
    ("stop", OUT, EXACT),
    ("Stop", OUT, EXACT),
    ("sToP", OUT, EXACT),
    (" STOP ", OUT, EXACT),
    ("STOP.", OUT, EXACT),
    ("STOP!!!", OUT, EXACT),
    ('"STOP"', OUT, EXACT),
    ("\tstop\n", OUT, EXACT),
    ("STOPALL", OUT, EXACT),
    ("stop all", OUT, EXACT),
    ("STOP ALL", OUT, EXACT),
    ("UNSUBSCRIBE", OUT, EXACT),
    ("Unsubscribe.", OUT, EXACT),
    ("UNSUB", OUT, EXACT),
    ("unsub", OUT, EXACT),
    ("CANCEL", OUT, EXACT),
    ("cancel", OUT, EXACT),
    ("END", OUT, EXACT),
    ("end.", OUT, EXACT),
    ("QUIT", OUT, EXACT),
    ("quit!", OUT, EXACT),
    ("REVOKE", OUT, EXACT),
    ("OPTOUT", OUT, EXACT),
    ("OPT OUT", OUT, EXACT),
    ("opt-out", OUT, EXACT),
    ("Opt-Out", OUT, EXACT),
    ("opt_out", OUT, EXACT),
    ("REMOVE", OUT, EXACT),
    ("remove", OUT, EXACT),
    ("ARRET", OUT, EXACT),
    ("ARRÊT", OUT, EXACT),
    ("arrêt", OUT, EXACT),
    ("Arret.", OUT, EXACT),
    ("STOPP", OUT, EXACT),
    ("stopp", OUT, EXACT),
    ("BAJA", OUT, EXACT),
    ("baja", OUT, EXACT),
    ("Baja.", OUT, EXACT),
    # a keyword followed by the shortcode it was sent to
    ("STOP 36180", OUT, EXACT),
    ("stop 60999", OUT, EXACT),
    ("STOP36180", OUT, EXACT),  # was NONE: the shortcode glued to the keyword is an opt-out
    ("ARRET 36180", OUT, EXACT),
    ("STOP: 36180", OUT, EXACT),
    ("Stop 123", OUT, EXACT),
    ("START 36180", IN, EXACT),
    # the gateway form ask <company-code> <keyword>
    ("ask cc stop", OUT, EXACT),
    ("ask yourcompanycode stop", OUT, EXACT),
    ("ASK ACME STOP", OUT, EXACT),
    ("ask acme2 stop", OUT, EXACT),
    ("ask cc arret", OUT, EXACT),
    ("ask cc start", IN, EXACT),
    ("ask cc help", HELP, EXACT),
    ("ask cc unsubscribe", OUT, EXACT),
    ("Ask cc Stop.", OUT, EXACT),
    # opt-in and help
    ("START", IN, EXACT),
    ("start", IN, EXACT),
    ("Start!", IN, EXACT),
    ("UNSTOP", IN, EXACT),
    ("unstop", IN, EXACT),
    ("YES", IN, EXACT),
    ("yes", IN, EXACT),
    ("Yes.", IN, EXACT),
    ("HELP", HELP, EXACT),
    ("help", HELP, EXACT),
    ("Help?", HELP, EXACT),
    ("INFO", HELP, EXACT),
    ("info", HELP, EXACT),
    ("AIDE", HELP, EXACT),
    ("aide", HELP, EXACT),
    ("Aide ?", HELP, EXACT),
    ("information please", HELP, INFERRED),  # was NONE: asking for information is the INFO keyword
    # misspellings Belgian operators count as STOP
    ("TSOP", OUT, INFERRED),
    ("tsop", OUT, INFERRED),
    ("SOTP", OUT, INFERRED),
    ("STPO", OUT, INFERRED),
    ("stpo!", OUT, INFERRED),
    ("STOOP", OUT, INFERRED),
    ("SSTOP", OUT, INFERRED),
    ("sttop", OUT, INFERRED),
    # STOP with politeness around it
    ("stop please", OUT, INFERRED),
    ("Please stop", OUT, INFERRED),
    ("STOP NOW", OUT, INFERRED),
    ("stop it", OUT, INFERRED),
    ("Stop, thank you", OUT, INFERRED),
    ("pls stop", OUT, INFERRED),
    ("STOP STOP STOP", OUT, INFERRED),
    ("stop immediately", OUT, INFERRED),
    ("unsubscribe please", OUT, INFERRED),
    ("STOP ALL MESSAGES", OUT, INFERRED),
    ("please stop!!", OUT, INFERRED),
    ("ok stop", OUT, INFERRED),
    # natural-language revocation (FCC 2025: any reasonable means)
    ("please stop texting me", OUT, INFERRED),
    ("Stop texting me", OUT, INFERRED),
    ("stop messaging me", OUT, INFERRED),
    ("Stop sending me these messages", OUT, INFERRED),
    ("stop sending me this crap", OUT, INFERRED),
    ("quit texting me", OUT, INFERRED),
    ("Please stop contacting me.", OUT, INFERRED),
    ("stop spamming me", OUT, INFERRED),
    ("stop these texts", OUT, INFERRED),
    ("Stop all these messages please", OUT, INFERRED),
    ("remove me from your list", OUT, INFERRED),
    ("Remove me from this list", OUT, INFERRED),
    ("please remove my number", OUT, INFERRED),
    ("take me off your list", OUT, INFERRED),
    ("delete my number", OUT, INFERRED),
    ("unsubscribe me", OUT, INFERRED),
    ("Unsubscribe me please", OUT, INFERRED),
    ("I want to unsubscribe", OUT, INFERRED),
    ("opt me out", OUT, INFERRED),
    ("I'd like to opt out", OUT, INFERRED),
    ("please opt me out", OUT, INFERRED),
    ("don't text me", OUT, INFERRED),
    ("Do not text me again", OUT, INFERRED),
    ("Please don't message me anymore", OUT, INFERRED),
    ("never contact me again", OUT, INFERRED),
    ("no more texts", OUT, INFERRED),
    ("No more messages please", OUT, INFERRED),
    ("I don't want these messages", OUT, INFERRED),
    ("I do not want your texts", OUT, INFERRED),
    ("i dont want any more messages", OUT, INFERRED),
    ("cancel my subscription", OUT, INFERRED),
    ("Cancel the alerts", OUT, INFERRED),
    ("leave me alone", OUT, INFERRED),
    ("wrong number, stop", OUT, INFERRED),
    ("Stop. Wrong number", OUT, INFERRED),
    ("wrong number - please remove", OUT, INFERRED),
    ("Wrong number please remove", OUT, INFERRED),
    ("STOP TEXTING ME!!!", OUT, INFERRED),
    ("Stöp texting me", OUT, INFERRED),
]

NEGATIVES = [
    # chatter that merely contains a keyword
    "don't stop",
    "Don't stop!",
    "dont stop",
    "do not stop",
    "never stop",
    "please don't stop",
    "don't stop the music",
    "don't stop sending me deals",
    "do not stop my subscription",
    "I won't stop",
    "can't stop laughing",
    "I can't stop",
    "cannot stop thinking about it",
    "stop by the shop tomorrow?",
    "Stop by our store!",
    "I'll stop by later",
    "bus stop",
    "the bus stop is closed",
    "nonstop",
    "non-stop deals",
    "stopwatch",
    "unstoppable",
    "stopover in Paris",
    "last stop",
    "what time does the shop close",
    "stop and shop",
    "full stop",
    "stop sign",
    "Where do I stop?",
    "when does it stop raining",
    "it didn't stop me",
    "stop me if you can",
    # other words near the keywords
    "STEP",
    "shop",
    "top",
    "stoop by",
    "tops",
    "spot",
    "post",
    "pots",
    "opts",
    "stomp",
    "started",
    "starting soon",
    "restart",
    "yesterday",
    "yes but no",
    "helpful",
    "helped",
    "aided",
    "endless",
    "the end of the month",
    "weekend",
    "quite good",
    "cancelled my order",
    "cancellation fee?",
    "remove the item from my basket",
    "removal",
    "revoked",
    "baja california",
    "arrete de rire",
    "arrête de rire",
    # ordinary replies
    "hello",
    "Hi",
    "thanks",
    "Thank you!",
    "ok",
    "OK 👍",
    "😀",
    "who is this?",
    "what?",
    "?",
    "How much is it",
    "I love it",
    "See you tomorrow",
    "Call me",
    "maybe",
    "lol",
    "123",
    "36180",
    "Is the offer still valid?",
    "Can I order online?",
    "My order number is 1234",
    "sounds good",
    "ask cc",
    "ask",
    "ask cc something",
    "ask me anything",
    "",
    "   ",
    "...",
    "!!!",
]


def test_the_table_is_large_and_balanced() -> None:
    total = len(POSITIVES) + len(NEGATIVES)
    negatives = len(NEGATIVES) + sum(1 for _, intent, _ in POSITIVES if intent is NONE)
    assert total >= 200
    assert negatives * 3 >= total


@pytest.mark.parametrize(("text", "intent", "kind"), POSITIVES)
def test_positive_cases(text: str, intent: Intent, kind: MatchKind) -> None:
    result = classify(text)
    assert (result.intent, result.kind) == (intent, kind)
    if intent is not NONE:
        assert result.keyword


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative_cases(text: str) -> None:
    result = classify(text)
    assert result.intent is NONE, result
    assert result.kind is MatchKind.NONE


@pytest.mark.parametrize(
    ("text", "country", "keyword", "language"),
    [
        ("ARRET", "", "ARRET", "fr"),
        ("STOP", "FR", "STOP", "fr"),
        ("STOP", "GB", "STOP", "en"),
        ("STOP", "", "STOP", ""),
        ("STOPP", "DE", "STOPP", "de"),
        ("STOPP", "NO", "STOPP", "no"),
        ("STOPP", "SE", "STOPP", "sv"),
        ("BAJA", "FR", "BAJA", "es"),
        ("AIDE", "", "AIDE", "fr"),
        ("ask cc stop", "GB", "ask <company> stop", "en"),
        ("STOP 36180", "BE", "STOP", "fr"),
    ],
)
def test_keyword_and_language(text: str, country: str, keyword: str, language: str) -> None:
    result = classify(text, country)
    assert (result.keyword, result.language) == (keyword, language)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("  ARRÊT !! ", "arret"), ("Opt-Out", "opt out"), ("don't", "dont"), ("STOP\u00a036180", "stop 36180")],
)
def test_normalise(raw: str, normalised: str) -> None:
    assert normalise(raw) == normalised


@given(st.text(max_size=200), st.sampled_from(["", "FR", "GB", "NO"]))
def test_never_crashes(text: str, country: str) -> None:
    result = classify(text, country)
    assert (result.intent is NONE) == (result.kind is MatchKind.NONE)


WRONG_NUMBER_REFERENCE = re.compile(
    r"\bwrong number\b.*\b(?:stop|remove)\b|\b(?:stop|remove)\b.*\bwrong number\b"
)


@given(
    st.lists(st.sampled_from(["wrong", "number", "numbers", "stop", "stops", "remove", "hello"]), max_size=12)
)
def test_wrong_number_needs_both_phrases_in_either_order(words: list[str]) -> None:
    # The rule as first written, quadratic on long texts, is the reference for the linear one.
    text = " ".join(words)
    assert (classify(text).keyword == "wrong number") == bool(WRONG_NUMBER_REFERENCE.search(text))


# ------------------------------------------------------------------------------ languages, rules, spans
from stopgate_server.domain import keywords as kw  # noqa: E402
from stopgate_server.domain.keywords import Classification, is_reserved  # noqa: E402

LANGUAGE_POSITIVES = [
    # (text, country, intent, language)
    ("merci de ne plus m'écrire", "FR", OUT, "fr"),
    ("Ne m'envoyez plus de SMS", "FR", OUT, "fr"),
    ("je ne veux plus recevoir vos offres", "FR", OUT, "fr"),
    ("Désinscrivez-moi", "FR", OUT, "fr"),
    ("arrêtez de m'envoyer des messages", "FR", OUT, "fr"),
    ("STOP SMS", "FR", OUT, "fr"),
    ("Supprimez-le", "FR", OUT, "fr"),
    ("laissez-moi tranquille", "FR", OUT, "fr"),
    ("uitschrijven", "NL", OUT, "nl"),
    ("laat me met rust", "NL", OUT, "nl"),
    ("geen sms meer aub", "NL", OUT, "nl"),
    ("meld me af", "NL", OUT, "nl"),
    ("stuur me niks meer", "NL", OUT, "nl"),
    ("bitte nicht mehr schreiben", "DE", OUT, "de"),
    ("Abmelden", "DE", OUT, "de"),
    ("keine SMS mehr bitte", "DE", OUT, "de"),
    ("lassen Sie mich in Ruhe", "DE", OUT, "de"),
    ("STOPP WERBUNG", "DE", OUT, "de"),
    ("no me manden nada", "ES", OUT, "es"),
    ("quiero darme de baja", "ES", OUT, "es"),
    ("No más mensajes", "ES", OUT, "es"),
    ("déjenme en paz", "ES", OUT, "es"),
    ("cancellami", "IT", OUT, "it"),
    ("Non scrivetemi più", "IT", OUT, "it"),
    ("basta con questi sms!", "IT", OUT, "it"),
    ("pare de me enviar", "BR", OUT, "pt"),
    ("SAIR", "BR", OUT, "pt"),
    ("não quero receber mais mensagens", "BR", OUT, "pt"),
    ("me tire da lista", "BR", OUT, "pt"),
    ("stop texting me, who is this?", "US", OUT, "en"),
    ("I already said stop", "US", OUT, "en"),
    ("How do I unsubscribe?", "US", OUT, "en"),
    ("take me off your list", "US", OUT, "en"),
    ("I never signed up for this", "US", OUT, "en"),
    ("put me on your do not text list", "US", OUT, "en"),
    ("Who is this? Stop.", "US", OUT, ""),
    # opt-in and help
    ("UNSTOP", "US", IN, "en"),
    ("start again", "US", IN, ""),
    ("OUI", "FR", IN, "fr"),
    ("je veux me réabonner", "FR", IN, "fr"),
    ("weer aanmelden", "NL", IN, "nl"),
    ("ANMELDEN", "DE", IN, "de"),
    ("dadme de alta", "ES", IN, "es"),
    ("iscrivimi", "IT", IN, "it"),
    ("SIM", "BR", IN, "pt"),
    ("AIDE", "FR", HELP, "fr"),
    ("HULP", "NL", HELP, "nl"),
    ("Hilfe", "DE", HELP, "de"),
    ("ayuda", "ES", HELP, "es"),
    ("aiuto", "IT", HELP, "it"),
    ("ajuda", "BR", HELP, "pt"),
    ("I need help", "US", HELP, "en"),
    ("Comment contacter le service client ?", "FR", HELP, "fr"),
]


@pytest.mark.parametrize(("text", "country", "intent", "language"), LANGUAGE_POSITIVES)
def test_every_language(text: str, country: str, intent: Intent, language: str) -> None:
    result = classify(text, country)
    assert result.intent is intent, result
    if language:
        assert result.language == language, result


SPELLINGS = [
    # (text, keyword, rule)
    ("S T O P", "STOP", "spelled out"),
    ("s.t.o.p", "STOP", "spelled out"),
    ("s-t-o-p", "STOP", "spelled out"),
    ("stoooop", "STOP (misspelt)", "repeated letters"),
    ("STOP36180", "STOP", "keyword + shortcode"),
    ("stop sms 36180", "STOP SMS", "keyword + shortcode"),
    ("\uff33\uff34\uff2f\uff30", "STOP", "keyword"),  # fullwidth (NFKC)
    ("🛑 STOP 🛑", "STOP", "keyword"),
    ("> STOP", "STOP", "keyword"),
    ("unsubscibe", "UNSUBSCRIBE (misspelt)", "misspelling"),
    ("desinscrir", "DESINSCRIRE (misspelt)", "misspelling"),
    ("afmleden", "AFMELDEN (misspelt)", "misspelling"),
    ("abmleden", "ABMELDEN (misspelt)", "misspelling"),
    ("bjaa", "BAJA (misspelt)", "misspelling"),
    ("cancellmi", "CANCELLAMI (misspelt)", "misspelling"),
    ("descadastar", "DESCADASTRAR (misspelt)", "misspelling"),
    ("Thanks for the info\nSTOP\nBye", "STOP", "keyword on its own line"),
    ("STOP\n\nOn Mon, ACME wrote:\n> Sale! Reply STOP to opt out", "STOP", "keyword"),
    ('STOP "Flash sale 40% off today only! Reply STOP to opt out"', "STOP", "keyword"),
]


@pytest.mark.parametrize(("text", "keyword", "rule"), SPELLINGS)
def test_spellings(text: str, keyword: str, rule: str) -> None:
    result = classify(text)
    assert (result.intent, result.keyword, result.rule) == (OUT, keyword, rule), result


NEVER_OPT_OUT = [
    # negations of every opt-out verb, in every language
    "don't unsubscribe me",
    "please don't remove me from the list",
    "I didn't cancel",
    "I do not want to opt out",
    "ne m'arrêtez pas",
    "ne me désinscrivez pas",
    "nicht abmelden",
    "Ich möchte auf keinen Fall abgemeldet werden",
    "no me des de baja",
    "De ninguna manera quiero la baja",
    "non cancellare",
    "non cancellatemi",
    "não cancelar",
    "Não me tirem da lista",
    "niet afmelden",
    "Stop niet met sturen!",
    "Haal me niet van de lijst",
    # being unsubscribed, told as a fact
    "why was I unsubscribed?",
    "Je me suis désinscrit par erreur ?",
    "I accidentally unsubscribed",
    "Why did you stop texting me? I want the deals",
    # chatter that merely contains a keyword
    "Stop & Shop",
    "Stop & Shop deals this week",
    "bus stop ads",
    "Stop Making Sense is my favourite film",
    "Stop! In the name of love",
    "stop by tomorrow",
    "the end",
    "the end of the movie",
    "end of month offers?",
    "quit smoking",
    "remove the stain",
    "estoy de baja",
    "sans arrêt",
    "Mijn zoon is afgemeld voor voetbal",
    "Ich habe mich im Fitnessstudio abgemeldet",
    # quoted instructions
    "Reply STOP to unsubscribe",
    "envoyez STOP au 36180",
    "Thanks\n> Promo -50%! STOP 36180",
]


@pytest.mark.parametrize("text", NEVER_OPT_OUT)
def test_never_an_opt_out(text: str) -> None:
    assert classify(text).intent is not OUT, classify(text)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("STOP", (0, 4)),
        ("  Arrêt !", (2, 7)),
        ("\uff33\uff34\uff2f\uff30", (0, 4)),
        ("stop please", (0, 4)),
        ("STOP 36180", (0, 10)),
        ("S T O P", (0, 7)),
        ("Who is this? Stop.", (13, 17)),
        ("Bitte nicht mehr schreiben", (6, 26)),
        ("\uff33\uff34\uff2f\uff30 \uff54\uff45\uff58\uff54\uff49\uff4e\uff47 \uff4d\uff45", (0, 12)),
        ("Désinscrivez-moi", (0, 12)),
        ("Hi!\nÉtienne here.\nSTOP", (18, 22)),
    ],
)
def test_span_points_into_the_original_text(text: str, span: tuple[int, int]) -> None:
    result = classify(text)
    assert result.span == span, result


def test_rule_language_and_kind_of_each_match() -> None:
    assert classify("STOP").rule == "keyword"
    assert classify("ask cc stop").rule == "gateway form"
    assert classify("TSOP").rule == "misspelling"
    assert classify("stop please").rule == "keyword + politeness"
    assert classify("stop bitte").language == "de"  # the politeness tells the language
    assert classify("please stop texting me").rule == "natural request"
    assert classify("hello").span is None
    assert classify("hello").rule == ""
    assert classify("wrong number, stop").rule == "wrong number"
    # positional construction of the first four fields still works
    assert Classification(OUT, "STOP", EXACT, "fr") == Classification(OUT, "STOP", EXACT, "fr", "", None)


CUSTOM = {"promo": (IN, "PROMO"), "bye bye": (OUT, "Bye Bye"), "stopper": (OUT, "STOPPER")}


@pytest.mark.parametrize(
    ("text", "intent", "keyword"),
    [
        ("PROMO", IN, "PROMO"),
        ("promo 36180", IN, "PROMO"),
        ("Bye bye!", OUT, "Bye Bye"),
        ("ask cc promo", IN, "ask <company> promo"),
        ("STOP", OUT, "STOP"),  # a built-in keyword wins
        ("hello", NONE, ""),
    ],
)
def test_custom_keywords(text: str, intent: Intent, keyword: str) -> None:
    result = classify(text, "FR", CUSTOM)
    assert (result.intent, result.keyword) == (intent, keyword)
    if intent is not NONE and keyword != "STOP":
        assert (result.rule, result.kind) == ("custom keyword", EXACT)


def test_custom_keywords_do_not_break_the_cache() -> None:
    classify("PROMO", "FR", CUSTOM)
    assert classify("PROMO", "FR").intent is NONE  # the cached path knows no custom keyword
    assert classify("PROMO", "FR", CUSTOM).intent is IN


@pytest.mark.parametrize(
    ("keyword", "reserved"),
    [
        ("stop", True),
        ("baja", True),
        ("start", True),
        ("aide", True),
        ("stop all", True),
        ("promo", False),
        ("stoop", False),
    ],
)
def test_is_reserved(keyword: str, reserved: bool) -> None:
    assert is_reserved(keyword) is reserved


def test_no_misspelling_is_a_keyword_or_a_common_word() -> None:
    assert not set(kw._MISSPELT) & set(kw.KEYWORDS)
    assert not set(kw._MISSPELT) & kw._COMMON_WORDS


def test_the_patterns_have_no_nested_unbounded_quantifiers() -> None:
    # A group repeated without bound that itself repeats without bound is what backtracks catastrophically.
    nested = re.compile(r"\((?:[^()]|\([^()]*\))*[+*](?:[^()]|\([^()]*\))*\)[+*]")
    patterns = [p.pattern for p in kw._PHRASE_PATTERNS + kw._CHATTER_PATTERNS]
    # (_TOKEN repeats "'word" groups: each starts with an apostrophe its words cannot match, so no overlap)
    patterns += [kw._QUOTED_PASSAGE.pattern, kw._QUOTED_BRACKETS.pattern, kw._GLUED.pattern]
    assert [p for p in patterns if nested.search(p)] == []


class _CountingPattern:
    """Counts the regex matches the classifier attempts, by pattern: the work is bounded by the words."""

    def __init__(
        self, pattern: re.Pattern[str], tried: Counter[tuple[str, int]], key: tuple[str, int]
    ) -> None:
        self.pattern, self.tried, self.key = pattern, tried, key

    def match(self, text: str, pos: int, endpos: int) -> re.Match[str] | None:
        self.tried[self.key] += 1
        assert endpos - pos <= 16 * 60, "a phrase is matched within a window of words"
        return self.pattern.match(text, pos, endpos)


@pytest.fixture
def tried(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, int]]:
    """(pattern list, index) -> the matches attempted with that pattern, counted from here on."""
    counter: Counter[tuple[str, int]] = Counter()
    for name in ("_PHRASE_PATTERNS", "_CHATTER_PATTERNS"):
        counted = [_CountingPattern(p, counter, (name, n)) for n, p in enumerate(getattr(kw, name))]
        monkeypatch.setattr(kw, name, counted)
    return counter


# Texts whose cost grows with their length, each the shape of a worst case before the prefilter.
LONG_UNITS = {
    "keyword": "stop ",
    "spaced letters": "S T O P ",
    "dotted letters": "s.t.o.p ",
    "negations": "please do not ",
    "negated keyword": "don't stop ",
    "French negation": "ne pas ",
    "Spanish no": "no no no no ",
    "repeated texting": "stop stop texting ",
    "one long word": "a" * 40 + " ",
    "accents": "é",
    "emoji": "🛑🙏😡 stop 👍🏽✨ ",
    "chatter": "I'll stop by the bus stop at the end of the day, can't stop laughing, quit smoking. ",
    "quoted": "> Reply STOP to unsubscribe from ACME deals, text HELP for help\n",
    "French": "merci de ne plus m'écrire, je ne veux plus recevoir vos offres. ",
    "German": "Bitte schreiben Sie mir nicht mehr, ich möchte keine Werbung mehr bekommen. ",
    "Italian": "Non scrivetemi più, non voglio ricevere messaggi, cancellatemi dalla lista. ",
    "wrong number": "wrong number stop remove ",
}


def _long(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("unit", LONG_UNITS.values(), ids=LONG_UNITS.keys())
def test_the_work_is_linear_in_the_text(tried: Counter[tuple[str, int]], unit: str) -> None:
    counts = []
    for size in (200, 1600):
        tried.clear()
        kw._classify.__wrapped__(_long(unit, size), "")
        counts.append(sum(tried.values()))
    small, large = counts
    assert large <= 8 * small + 16  # no more than proportional: never quadratic
    assert large <= 1600 // 4  # and at most one attempt for every few characters


@pytest.mark.parametrize("unit", LONG_UNITS.values(), ids=LONG_UNITS.keys())
def test_the_prefilter_bounds_the_patterns_tried(tried: Counter[tuple[str, int]], unit: str) -> None:
    # A pattern is tried only where its first word is, and only if each word it cannot do without (one of
    # "more"/"further" after "no") is in the text: repeating words that make no phrase costs no match.
    text = _long(unit, 1600)
    kw._classify.__wrapped__(text, "")
    words = kw._words(kw._analyse(text).tokens)
    for (name, number), attempts in tried.items():
        triggers = (kw._PHRASE_TRIGGERS if name == "_PHRASE_PATTERNS" else kw._CHATTER_TRIGGERS)[number]
        assert kw._possible(triggers, words.present, " " + words.joined)
        assert attempts <= len(words.words)
    assert len(tried) <= 8  # patterns of a few phrases, not of every phrase starting at a common word
    if unit in ("stop ", "S T O P ", "please do not ", "don't stop ", "ne pas ", "no no no no "):
        assert sum(tried.values()) == 0


def test_the_triggers_are_read_from_the_patterns() -> None:
    assert kw._triggers(r" (?:more|further)(?: \w+){0,2}? (?:texts?|sms)") == (
        kw._Trigger(frozenset({"more", "further"}), ()),
        kw._Trigger(frozenset({"text", "texts", "sms"}), ()),
    )
    assert kw._triggers(r"(?: me| m)? (?:ecri\w*|envoy\w*) plus") == (
        kw._Trigger(frozenset(), (" ecri", " envoy")),
        kw._Trigger(frozenset({"plus"}), ()),
    )
    # after "me", any word may come before "af": only the words after the first space tell
    assert kw._triggers(r" (?:me|mij) (?:(?!niet )\w+ )?af") == (kw._Trigger(frozenset({"me", "mij"}), ()),)
    assert kw._triggers(r"(?: out)?") == ()  # nothing after the head is needed: the head is the trigger
    assert kw._triggers(r"(?: \w+){0,2}? \w+") == ()  # any word


PREFILTER_TEXTS = (
    [text for text, *_ in POSITIVES + LANGUAGE_POSITIVES + SPELLINGS] + NEGATIVES + NEVER_OPT_OUT
)


@pytest.mark.parametrize("text", PREFILTER_TEXTS)
def test_the_prefilter_never_hides_a_match(text: str) -> None:
    tokens = kw._analyse(text).tokens
    if not tokens:
        return
    words = kw._words(tokens)
    spaced = " " + words.joined
    for i, word in enumerate(words.words):
        lists = (
            (kw._misspelt_phrase_candidates(word), kw._PHRASE_PATTERNS, kw._PHRASE_TRIGGERS),
            (kw._chatter_candidates(word), kw._CHATTER_PATTERNS, kw._CHATTER_TRIGGERS),
        )
        for candidates, patterns, triggers in lists:
            for number in candidates:
                if kw._match(words, patterns[number], i) is not None:
                    assert kw._possible(triggers[number], words.present, spaced), (word, number)
