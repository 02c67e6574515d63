"""Phone numbers: the E.164 fast path and the phonenumbers path agree, invalid input is None."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from stopgate_server.domain.phones import (
    _ALL_E164,
    _fast_e164,
    is_region,
    region_of,
    to_e164,
    to_e164_many,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+33612345678", "", "+33612345678"),
        (" +33612345678 ", "", "+33612345678"),
        ("+447700900123", "", "+447700900123"),
        ("+14155550123", "", "+14155550123"),
        ("+32470123456", "", "+32470123456"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("06.12.34.56.78", "fr", "+33612345678"),
        ("0033612345678", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "", "+33612345678"),
        ("07700 900123", "GB", "+447700900123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("0470 12 34 56", "BE", "+32470123456"),
        ("447777777777", "GB", "+447777777777"),
        ("06 12 34 56 78", "", None),  # national without a region
        ("+3361234567890123", "", None),  # too long for France
        ("+336123", "", None),  # too short
        ("+0612345678", "", None),  # no country code starts with 0
        ("+999123456789", "", None),  # unassigned country code
        ("hello", "FR", None),
        ("", "FR", None),
        ("   ", "FR", None),
        ("+33 6 12 34 56 78 90 12 34 56 78 90 12 34", "", None),
        ("+33\uff1612345678", "", "+33612345678"),  # full-width digit six, as phonenumbers reads it
    ],
)
def test_to_e164(raw: str, region: str, expected: str | None) -> None:
    assert to_e164(raw, region) == expected


def _slow(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@given(st.from_regex(r"\+[1-9][0-9]{4,15}", fullmatch=True))
def test_fast_path_agrees_with_phonenumbers(text: str) -> None:
    """The fast path accepts exactly the E.164 strings phonenumbers keeps as they are; it may reject input
    phonenumbers would rewrite into another number (such as "+1 1..." read as a NANP trunk prefix)."""
    fast, slow = _fast_e164(text), _slow(text)
    if fast == "":  # undecided (national part with a leading zero): phonenumbers decides
        assert to_e164(text) == slow
    elif fast is None:
        assert slow is None or slow != text
    else:
        assert fast == slow == text


@pytest.mark.parametrize(("code", "known"), [("FR", True), ("be", True), ("ZZ", False), ("", False)])
def test_is_region(code: str, known: bool) -> None:
    assert is_region(code) is known


@given(
    st.lists(st.one_of(st.from_regex(r"\+[0-9]{1,16}", fullmatch=True), st.text(max_size=20)), max_size=20)
)
def test_batch_conversion_equals_one_by_one(raw_numbers: list[str]) -> None:
    assert to_e164_many(raw_numbers, "FR") == [to_e164(raw, "FR") for raw in raw_numbers]


@given(st.from_regex(r"\+[0-9]{1,18}", fullmatch=True))
def test_batch_pattern_accepts_what_the_fast_path_keeps(text: str) -> None:
    """The one-expression check of a whole batch accepts exactly the numbers the fast path keeps as they
    are; the rest go number by number."""
    assert bool(_ALL_E164.fullmatch(text)) == (_fast_e164(text) == text)


@given(st.lists(st.from_regex(r"\+(33[67]|447|1[2-9])[0-9]{6,10}", fullmatch=True), min_size=1, max_size=50))
def test_e164_batches_equal_one_by_one(raw_numbers: list[str]) -> None:
    assert to_e164_many(raw_numbers) == [to_e164(raw) for raw in raw_numbers]


@pytest.mark.parametrize(
    "raw_numbers",
    [
        ["+33612345678\n+33612345679"],  # one input that would pass for two numbers once joined
        ["+33612345678", "+33612345679\n"],  # valid once stripped, like any input
        ["+33612345678", ""],
        [],
    ],
)
def test_batches_with_newlines_or_empty_inputs(raw_numbers: list[str]) -> None:
    assert to_e164_many(raw_numbers) == [to_e164(raw) for raw in raw_numbers]


@pytest.mark.parametrize(
    ("e164", "region"),
    [("+33612345678", "FR"), ("+32470123456", "BE"), ("+447700900123", "GB"), ("+14155550123", "US"),
     ("+80012345678", ""), ("not e164", "")],
)  # fmt: skip
def test_region_of(e164: str, region: str) -> None:
    assert region_of(e164) == region
