"""The replies ingest suggests: a confirmation of an opt-out that blocked the number (once, within the
window), the help text for a help request, in the language of the keyword, for every language the
classifier reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from stopgate_server.domain.ingest import CONFIRMATIONS, HELP_REPLIES, Source, intent_of, reply_for
from stopgate_server.domain.keywords import Intent, MatchKind

LANGUAGES = ("en", "fr", "nl", "de", "es", "it", "pt")
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_has_its_own_replies(language: str) -> None:
    assert reply_for(Intent.OPT_OUT, language, True, NOW, NOW).text == CONFIRMATIONS[language]
    assert reply_for(Intent.HELP, language, False, NOW, NOW).text == HELP_REPLIES[language]
    assert "START" in CONFIRMATIONS[language]


def test_a_confirmation_is_allowed_only_within_the_window() -> None:
    assert reply_for(Intent.OPT_OUT, "fr", True, NOW - timedelta(minutes=4), NOW).confirmation_allowed
    assert not reply_for(Intent.OPT_OUT, "fr", True, NOW - timedelta(minutes=6), NOW).confirmation_allowed


def test_no_reply_for_an_opt_out_that_blocked_nothing_or_another_intent() -> None:
    assert reply_for(Intent.OPT_OUT, "fr", False, NOW, NOW).text == ""
    assert reply_for(Intent.OPT_IN, "fr", True, NOW, NOW).text == ""
    assert reply_for(Intent.OPT_OUT, "xx", True, NOW, NOW).text == CONFIRMATIONS["en"]


def test_an_intent_hint_wins_over_the_text_and_says_so() -> None:
    read = intent_of(Source.SMS_REPLY, "PROMO", Intent.OPT_IN, "FR")
    assert (read.intent, read.keyword, read.kind, read.rule) == (
        Intent.OPT_IN,
        "OPT_IN (hint)",
        MatchKind.EXACT,
        "intent hint",
    )
    agreeing = intent_of(Source.SMS_REPLY, "STOP", Intent.OPT_OUT, "FR")
    assert (agreeing.rule, agreeing.span) == ("keyword", (0, 4))


def test_an_operator_notification_is_an_opt_out_whatever_its_text() -> None:
    read = intent_of(Source.OPERATOR_NOTIFICATION, "", None, "FR")
    assert (read.intent, read.rule) == (Intent.OPT_OUT, "source")
    assert intent_of(Source.SMS_REPLY, "", None, "FR").intent is Intent.NONE
