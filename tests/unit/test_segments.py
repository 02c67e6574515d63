"""SMS part counting at every boundary, and properties that hold for any text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stopgate_server.domain.segments import GSM7_BASIC, GSM7_EXTENSION, Encoding, Segments, count, is_gsm7

G, U = Encoding.GSM7, Encoding.UCS2
EMOJI = "\U0001f600"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Segments(G, 0, 1, 160, 160)),
        ("a", Segments(G, 1, 1, 160, 159)),
        ("a" * 160, Segments(G, 160, 1, 160, 0)),
        ("a" * 161, Segments(G, 161, 2, 153, 145)),
        ("a" * 306, Segments(G, 306, 2, 153, 0)),
        ("a" * 307, Segments(G, 307, 3, 153, 152)),
        ("a" * 459, Segments(G, 459, 3, 153, 0)),
        ("a" * 460, Segments(G, 460, 4, 153, 152)),
        # extension characters cost 2 septets
        ("€" * 80, Segments(G, 160, 1, 160, 0)),
        ("a" * 159 + "€", Segments(G, 161, 2, 153, 145)),
        ("{}[]~^|\\\f€", Segments(G, 20, 1, 160, 140)),
        # an escape pair never straddles parts: 152 + 2 does not fit in 153, the € opens part 2
        ("a" * 152 + "€" + "a" * 10, Segments(G, 164, 2, 153, 141)),
        ("a" * 151 + "€" + "a" * 10, Segments(G, 163, 2, 153, 143)),
        ("a" * 152 + "€" * 77, Segments(G, 306, 3, 153, 151)),
        # UCS-2
        ("ç" * 70, Segments(U, 70, 1, 70, 0)),
        ("ç" * 71, Segments(U, 71, 2, 67, 63)),
        ("ç" * 134, Segments(U, 134, 2, 67, 0)),
        ("ç" * 135, Segments(U, 135, 3, 67, 66)),
        ("a" * 159 + "ç", Segments(U, 160, 3, 67, 41)),
        # surrogate pairs are 2 units and never split
        (EMOJI * 35, Segments(U, 70, 1, 70, 0)),
        (EMOJI * 36, Segments(U, 72, 2, 67, 61)),  # 33 pairs fill 66 of 67 units: part 2 holds 3
        ("ç" * 66 + EMOJI + "ç" * 3, Segments(U, 71, 2, 67, 62)),
        ("ç" * 65 + EMOJI + "ç" * 4, Segments(U, 71, 2, 67, 63)),
        # French: é è ù ì ò à Ç are GSM-7; ç â ê î ô û are not
        ("éèùìòàÇ", Segments(G, 7, 1, 160, 153)),
        ("â", Segments(U, 1, 1, 70, 69)),
        ("Ça coûte 5€", Segments(U, 11, 1, 70, 59)),
        ("Ça marche à 5€", Segments(G, 15, 1, 160, 145)),
    ],
)
def test_count(text: str, expected: Segments) -> None:
    assert count(text) == expected


@pytest.mark.parametrize("character", [*"çâêîôûÂÊÎÔÛœ’“”…–—\u00a0", EMOJI])
def test_characters_outside_gsm7(character: str) -> None:
    assert not is_gsm7(character)
    assert count(character).encoding is Encoding.UCS2


ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
GSM_TEXT = st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=600)


@given(st.one_of(ANY_TEXT, GSM_TEXT), st.one_of(ANY_TEXT, GSM_TEXT))
def test_parts_never_decrease_when_text_grows(text: str, more: str) -> None:
    assert count(text + more).parts >= count(text).parts


@given(st.one_of(ANY_TEXT, GSM_TEXT))
def test_gsm7_iff_every_character_is_in_the_tables(text: str) -> None:
    in_tables = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    assert (count(text).encoding is Encoding.GSM7) == in_tables


@given(st.one_of(ANY_TEXT, GSM_TEXT))
def test_parts_hold_the_units(text: str) -> None:
    result = count(text)
    assert result.units <= result.parts * result.units_per_part
    assert 0 <= result.remaining_in_last_part < result.units_per_part or result.units == 0
