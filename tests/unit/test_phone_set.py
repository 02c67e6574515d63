"""PhoneSet: numbers with their `since` in sorted arrays plus recent changes, equal to a plain dict always."""

from __future__ import annotations

import functools
import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stopgate_server.store import phone_set
from stopgate_server.store.phone_set import Digest, PhoneSet, PhoneSetLoader, numbers_of, phone_key, scrambled

PHONES = [f"+3361234{i:04d}" for i in range(40)] + ["+1", "+447700900123", "+999999999999999999"]
ODD = ["+33 6 12", "0612345678", "+0612"]  # not plain E.164: PostgreSQL could still hold one


@pytest.fixture(autouse=True)
def small_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrays from 4 numbers, so that a few dozen changes go through several merges."""
    monkeypatch.setattr(phone_set, "MIN_ARRAY", 4)


operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "update", "discard"]), st.sampled_from(PHONES + ODD), st.integers(0, 2**62)
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(initial=st.dictionaries(st.sampled_from(PHONES + ODD), st.integers(0, 2**62)), steps=operations)
def test_it_answers_as_a_plain_dict_after_any_adds_and_discards(
    initial: dict[str, int], steps: list[tuple[str, str, int]]
) -> None:
    """Consecutive "update" steps are applied together, as the index applies a notification's rows."""
    loader = PhoneSetLoader()
    listed = sorted(initial.items())
    loader.extend(listed[: len(listed) // 2])
    loader.extend(listed[len(listed) // 2 :])
    phones, model = loader.build(), dict(initial)
    together: list[tuple[str, int]] = []
    for operation, phone, since in [*steps, ("discard", "", 0)]:  # the last one applies what is pending
        if operation == "update":
            together.append((phone, since))
            continue
        phones.update(together)
        model.update(together)
        together.clear()
        if operation == "add":
            phones.add(phone, since)
            model[phone] = since
        else:
            phones.discard(phone)
            model.pop(phone, None)
        assert len(phones) == len(model)
        assert phones.members(PHONES) == {p: s for p, s in model.items() if p in PHONES}
        assert {p: phones.since(p) for p in PHONES + ODD if p in phones} == model
        assert phones.digest() == digest(model)
    assert phones.members(PHONES, numbers_of(PHONES)) == {p: s for p, s in model.items() if p in PHONES}


def digest(phones: dict[str, int]) -> Digest:
    """The Digest of a set of phones, computed one phone at a time."""
    keys = [phone_key(phone) for phone in phones]
    mixed = 0
    for key in keys:
        mixed ^= key
    return Digest.of(len(keys), sum(keys), mixed, functools.reduce(operator.xor, map(scrambled, keys), 0))


def test_phone_keys_are_the_numbers_of_plain_phones_and_md5_of_others() -> None:
    """As store/queries.sql's blocklist_summary computes them (tests/integration/test_index_healing.py
    holds both equal on a real PostgreSQL)."""
    assert phone_key("+33612345678") == 33612345678
    assert phone_key("+999999999999999") == 999999999999999
    assert phone_key("+0612") == -7322581090973385319  # md5 9a60f74b6189fd99..., read as a signed bigint


def numbered(phones: list[str]) -> PhoneSet:
    """The phones, each listed at its position."""
    return PhoneSet(numbers_of(phones), np.arange(len(phones), dtype=np.int64))


def test_large_sets_keep_their_numbers_in_an_array_and_merge_changes_in_batches() -> None:
    phones = numbered(PHONES[:32])
    assert phones.has_array
    phones.discard(PHONES[0])  # 1 change; a merge is due at max(4, 32 // 32) = 4
    phones.add(PHONES[35], 350)
    assert phones._removed == {PHONES[0]}
    assert phones._added == {PHONES[35]: 350}
    phones.add(PHONES[36], 360)
    phones.add(PHONES[37], 370)
    assert not phones._added
    assert not phones._removed
    assert len(phones._array) == 34
    assert phones.members([PHONES[0], PHONES[1], PHONES[37]]) == {PHONES[1]: 1, PHONES[37]: 370}


def test_a_set_that_shrinks_below_the_array_size_goes_back_to_strings() -> None:
    phones = numbered(PHONES[:5])
    for phone in PHONES[:4]:
        phones.discard(phone)
    assert not phones.has_array
    assert phones.members(PHONES) == {PHONES[4]: 4}


def test_numbers_past_the_largest_entry_are_not_members() -> None:
    phones = numbered(PHONES[:8])
    assert phones.members(["+999999999999999", "+1"]) == {}


def test_the_digest_of_long_numbers_is_exact_where_the_array_sum_wraps() -> None:
    numbers = np.arange(999_999_999_000_000, 999_999_999_020_000, dtype=np.int64)  # sums past 2**63
    phones = PhoneSet(numbers, numbers)
    assert phones.has_array
    assert phones.digest() == digest(dict.fromkeys([f"+{n}" for n in numbers.tolist()], 0))


def test_the_digest_tells_apart_sets_of_equal_sum_and_xor() -> None:
    """{x, x+3} and {x+1, x+2} (x a multiple of 4) have the same size, sum and xor: a write that bypassed the
    triggers and swapped such a pair would go unseen without the scrambled keys."""
    swapped = PhoneSet()
    swapped.update([("+33612345601", 1), ("+33612345602", 1)])
    listed = PhoneSet()
    listed.update([("+33612345600", 1), ("+33612345603", 1)])
    assert swapped.digest()[:3] == listed.digest()[:3]
    assert swapped.digest() != listed.digest()
