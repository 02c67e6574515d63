"""STOP-mention rules: where the mention is, the verdict per country, suggestion and operator preview."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stopgate_server.domain.compliance import Position, Verdict, assess, find_mention
from stopgate_server.domain.policies import load
from stopgate_server.domain.segments import GSM7_BASIC
from stopgate_server.domain.senders import SenderKind

POLICIES = load()
SPAIN = load(Path(__file__).parents[1] / "fixtures" / "policies_spain.toml").for_country("ES")
ALIAS, SHORT, LONG = SenderKind.ALPHANUMERIC, SenderKind.SHORTCODE, SenderKind.LONGCODE


@pytest.mark.parametrize(
    ("text", "position", "found"),
    [
        ("Soldes -50% STOP 00000", Position.END, "STOP 00000"),
        ("Soldes -50% stop 36180", Position.END, "stop 36180"),
        ("Soldes -50%. STOP au 36180.", Position.END, "STOP au 36180"),
        ("Soldes -50% Stop SMS 36180 !", Position.END, "Stop SMS 36180"),
        ("Soldes -50% STOP: 36180", Position.END, "STOP: 36180"),
        ("Soldes -50% (STOP 36180)", Position.END, "STOP 36180"),
        ("Soldes -50% STOP 36180 :-)", Position.ELSEWHERE, "STOP 36180"),
        ("STOP 36180 pour vous désabonner. Soldes -50%", Position.ELSEWHERE, "STOP 36180"),
        ("Soldes STOP 36180 puis STOP 00000", Position.END, "STOP 00000"),
        ("Soldes -50% STOP", Position.ABSENT, ""),
        ("Stop by the shop tomorrow at 10", Position.ABSENT, ""),
        ("Nonstop 36180 deals", Position.ABSENT, ""),
        ("", Position.ABSENT, ""),
    ],
)
def test_find_mention(text: str, position: Position, found: str) -> None:
    mention = find_mention(text)
    assert (mention.position, mention.text) == (position, found)


@pytest.mark.parametrize(
    ("text", "country", "sender", "category", "verdict", "codes"),
    [
        ("Soldes -50% STOP 00000", "FR", ALIAS, "MARKETING", Verdict.COMPLIANT, []),
        ("Soldes -50%", "FR", ALIAS, "MARKETING", Verdict.WILL_BE_AMENDED, ["STOP_MENTION_WILL_BE_APPENDED"]),
        ("STOP 00000 Soldes", "FR", ALIAS, "MARKETING", Verdict.NON_COMPLIANT, ["STOP_MENTION_NOT_AT_END"]),
        ("Soldes -50%", "FR", SHORT, "MARKETING", Verdict.NOT_APPLICABLE, []),
        ("Soldes -50%", "FR", LONG, "MARKETING", Verdict.NOT_APPLICABLE, []),
        ("Votre code: 1234", "FR", ALIAS, "TRANSACTIONAL", Verdict.NOT_APPLICABLE, []),
        ("Promo -50%", "BE", ALIAS, "MARKETING", Verdict.NON_COMPLIANT, ["STOP_MENTION_MISSING"]),
        ("Promo -50%", "BE", SHORT, "MARKETING", Verdict.NON_COMPLIANT, ["STOP_MENTION_MISSING"]),
        ("Promo -50% STOP 9011", "BE", SHORT, "MARKETING", Verdict.COMPLIANT, []),
        ("Sale now on", "GB", ALIAS, "MARKETING", Verdict.NOT_APPLICABLE, ["UNSUBSCRIBE_LINK_ADVISED"]),
        ("Sale now on. Opt out: https://u.example/x1", "GB", ALIAS, "MARKETING", Verdict.NOT_APPLICABLE, []),
        ("Sale now on. Opt out: u.example/x1", "DE", ALIAS, "MARKETING", Verdict.NOT_APPLICABLE, []),
        ("Your parcel is on its way", "GB", ALIAS, "TRANSACTIONAL", Verdict.NOT_APPLICABLE, []),
    ],
)
def test_verdicts(
    text: str, country: str, sender: SenderKind, category: str, verdict: Verdict, codes: list[str]
) -> None:
    result = assess(text, POLICIES.for_country(country), sender, category)
    assert result.verdict is verdict
    assert [v.code for v in result.violations] == codes


@pytest.mark.parametrize(
    ("text", "verdict", "found", "codes"),
    [
        ("Rebajas -50% BAJA 36180", Verdict.COMPLIANT, "BAJA 36180", []),
        ("Rebajas -50%. Baja al 36180.", Verdict.COMPLIANT, "Baja al 36180", []),
        ("Rebajas -50% baja: 00000", Verdict.COMPLIANT, "baja: 00000", []),
        (
            "BAJA 36180 y no recibirá nada. Rebajas",
            Verdict.NON_COMPLIANT,
            "BAJA 36180",
            ["STOP_MENTION_NOT_AT_END"],
        ),
        ("Rebajas -50%", Verdict.NON_COMPLIANT, "", ["STOP_MENTION_MISSING"]),
        ("Rebajas -50% STOP 36180", Verdict.NON_COMPLIANT, "", ["STOP_MENTION_MISSING"]),  # France's word
        ("Rebajas 36180", Verdict.NON_COMPLIANT, "", ["STOP_MENTION_MISSING"]),  # BAJA only as a whole word
    ],
)
def test_the_mention_searched_for_is_the_policy_mention_text(
    text: str, verdict: Verdict, found: str, codes: list[str]
) -> None:
    result = assess(text, SPAIN, SHORT, "MARKETING", shortcode="36180")
    assert (result.verdict, result.mention.text) == (verdict, found)
    assert [v.code for v in result.violations] == codes


def test_spain_suggestion_ends_with_its_mention() -> None:
    result = assess("Rebajas -50%", SPAIN, ALIAS, "MARKETING", shortcode="36180")
    assert result.suggested_text == "Rebajas -50% BAJA 36180"
    assert assess(result.suggested_text, SPAIN, ALIAS, "MARKETING").verdict is Verdict.COMPLIANT


def test_france_operator_appends_and_fills_the_shortcode() -> None:
    text = "a" * 150  # one part; the appended " STOP 36180" makes it two
    result = assess(text, POLICIES.for_country("FR"), ALIAS, "MARKETING", shortcode="36180")
    assert result.verdict is Verdict.WILL_BE_AMENDED
    assert result.delivered_text == text + " STOP 36180"
    assert (result.segments.parts, result.delivered_segments.parts) == (1, 2)
    assert "from 1 to 2 parts" in result.violations[0].message
    assert result.suggested_text == text + " STOP 00000"  # the operator fills 00000 itself

    written = assess("Soldes STOP 00000", POLICIES.for_country("FR"), ALIAS, "MARKETING", shortcode="36180")
    assert written.delivered_text == "Soldes STOP 36180"


def test_belgium_suggestion_names_the_shortcode() -> None:
    result = assess("Promo", POLICIES.for_country("BE"), SHORT, "MARKETING", shortcode="9011")
    assert result.suggested_text == "Promo STOP 9011"
    assert result.delivered_text == "Promo"  # the operator changes nothing


def test_ucs2_characters_and_the_parts_replacements_save() -> None:
    text = "C’est l’été… “Soldes” – " + "a" * 60
    result = assess(text, POLICIES.for_country("GB"), ALIAS, "TRANSACTIONAL")
    assert result.segments.parts == 2
    assert [(c.character, c.replacement, c.occurrences) for c in result.ucs2_characters] == [
        ("’", "'", 2),
        ("…", "...", 1),
        ("“", '"', 1),
        ("”", '"', 1),
        ("–", "-", 1),
    ]
    assert result.replaced_text == "C'est l'été... \"Soldes\" - " + "a" * 60
    assert result.parts_saved_by_replacements == 1
    assert [v.code for v in result.violations] == ["UCS2_CHARACTERS"]


def test_accent_folding_only_when_allowed() -> None:
    text = "Leçon gratuite à Noël " + "a" * 60
    strict = assess(text, POLICIES.for_country("GB"), ALIAS, "TRANSACTIONAL")
    assert [(c.character, c.replacement) for c in strict.ucs2_characters] == [("ç", ""), ("ë", "")]
    assert strict.parts_saved_by_replacements == 0
    folded = assess(text, POLICIES.for_country("GB"), ALIAS, "TRANSACTIONAL", allow_accent_folding=True)
    assert folded.replaced_text.startswith("Lecon gratuite à Noel")
    assert folded.parts_saved_by_replacements == 1


MARKETING_TEXT = st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC) + list("’…çé😀")), max_size=300)


@given(text=MARKETING_TEXT, country=st.sampled_from(["FR", "BE"]), shortcode=st.sampled_from(["", "36180"]))
def test_a_suggested_text_is_always_compliant(text: str, country: str, shortcode: str) -> None:
    policy = POLICIES.for_country(country)
    suggested = assess(text, policy, ALIAS, "MARKETING", shortcode=shortcode).suggested_text
    assert assess(suggested, policy, ALIAS, "MARKETING", shortcode=shortcode).verdict is Verdict.COMPLIANT


@given(text=MARKETING_TEXT, shortcode=st.sampled_from(["", "36180"]))
def test_a_suggested_text_is_always_compliant_with_a_mention_from_data(text: str, shortcode: str) -> None:
    suggested = assess(text, SPAIN, ALIAS, "MARKETING", shortcode=shortcode).suggested_text
    assert assess(suggested, SPAIN, ALIAS, "MARKETING", shortcode=shortcode).verdict is Verdict.COMPLIANT
