"""The numbers of one block list, each with the time it was listed: about 16 bytes per number.

A Python dict of strings costs over 110 bytes per number (a string object and a hash-table slot): 1.1 GB
in every worker at 10 million quarantined numbers. Here a large list keeps its numbers in a sorted numpy
array of their digits as 64-bit integers (E.164 allows at most 15 digits), with a parallel array of the
times they were listed (`since`, in microseconds since the epoch), searched for a whole batch in one
vectorised call. Changes since the arrays were built sit in `added` (phone → since) and `removed`; when
they outgrow 1/32 of the array they are merged into new arrays, so they cost at most a few bytes per number
and a merge is rare. A list under MIN_ARRAY numbers has no arrays: it is `added` alone.

Invariants: `added` and the array are disjoint, `removed` is part of the array, so the set is
(array minus removed) plus added plus others, of size len(array) - len(removed) + len(added) + len(others).
`others` holds any string that is not `+` and digits (PostgreSQL does not forbid one): it never goes into
an array.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import re
from collections.abc import Collection, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

MIN_ARRAY = 1024
MERGE_FRACTION = 32  # merge the changes once they number 1/32 of the array (or MIN_ARRAY)

Numbers = npt.NDArray[np.int64]
_EMPTY: Numbers = np.empty(0, dtype=np.int64)
_PLAIN_E164 = re.compile(r"\+[1-9][0-9]{0,14}")


def number_of(phone: str) -> int | None:
    """The integer a phone is stored as in an array, or None for a string that must stay a string."""
    return int(phone) if _PLAIN_E164.fullmatch(phone) else None


def phone_key(phone: str) -> int:
    """A phone's key in a list's Digest: its number when it is plain E.164, else the first 64 bits of its
    md5 (as store/queries.sql's blocklist_summary computes it)."""
    number = number_of(phone)
    if number is not None:
        return number
    digest = hashlib.md5(phone.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# The prime 2**31 - 1 and a prime below it: a remainder times the factor fits 63 bits, so SQL's bigint
# arithmetic never overflows.
SCRAMBLE_MODULUS = 2_147_483_647
SCRAMBLE_FACTOR = 2_147_483_629


def scrambled(key: int) -> int:
    """A key's remainder (truncated, with the key's sign, as SQL's % gives it) times SCRAMBLE_FACTOR: the
    Digest's xor of these tells apart sets whose plain sum and xor agree."""
    remainder = abs(key) % SCRAMBLE_MODULUS
    return (remainder if key >= 0 else -remainder) * SCRAMBLE_FACTOR


class Digest(NamedTuple):
    """A list summed up whatever its order: its size, the sum and the xor of its phones' keys, and the xor of
    their scrambled keys (modulo 2**64). Two lists with the same phones have the same digest; a change of a
    few phones changes it (the scrambled keys tell {x, x+3} from {x+1, x+2}, which sum and xor do not)."""

    size: int
    total: int
    mixed: int
    scrambled: int

    @classmethod
    def of(cls, size: int, total: int, mixed: int, scrambled: int) -> Digest:
        return cls(size, total % 2**64, mixed % 2**64, scrambled % 2**64)

    def without(self, phones: Collection[str]) -> Digest:
        """The digest with these phones taken out (it has got them)."""
        keys = [phone_key(phone) for phone in phones]
        return Digest.of(
            self.size - len(keys),
            self.total - sum(keys),
            functools.reduce(operator.xor, keys, self.mixed),
            functools.reduce(operator.xor, map(scrambled, keys), self.scrambled),
        )


def numbers_of(phones: Sequence[str]) -> Numbers:
    """The integers of phones already validated as E.164 (as CheckBatch's are), parsed in one numpy call
    (faster than `int` on each)."""
    return np.array(phones, dtype=np.int64)


class PhoneSet:
    """One block list: its phones, each with its `since` (see the module doc)."""

    __slots__ = ("_added", "_array", "_merge_at", "_others", "_removed", "_since")

    def __init__(
        self, numbers: Numbers = _EMPTY, since: Numbers = _EMPTY, others: dict[str, int] | None = None
    ) -> None:
        """The set of `numbers` (integers, distinct, in any order) listed at `since` (the same order), and
        of the phones `others` (not plain E.164) with theirs."""
        self._array, self._since = _EMPTY, _EMPTY
        self._added: dict[str, int] = {}
        self._removed: set[str] = set()
        self._others = dict(others or {})
        self._merge_at = MIN_ARRAY
        order = np.argsort(numbers, kind="stable")
        self._store(numbers[order], since[order])

    def __len__(self) -> int:
        return len(self._array) - len(self._removed) + len(self._added) + len(self._others)

    def __contains__(self, phone: str) -> bool:
        return self.since(phone) is not None

    def since(self, phone: str) -> int | None:
        """When the phone was listed (microseconds since the epoch), or None when it is not listed."""
        if phone in self._added:
            return self._added[phone]
        if phone in self._others:
            return self._others[phone]
        at = self._position(number_of(phone))
        return None if at is None or phone in self._removed else int(self._since[at])

    @property
    def has_array(self) -> bool:
        return len(self._array) > 0

    def digest(self) -> Digest:
        """The set's Digest, to compare with PostgreSQL's: O(size) in numpy (the sums wrap around modulo
        2**64, as the digest is taken anyway), but for the phones that are not plain E.164."""
        parts = (self._array, numbers_of(list(self._added)), numbers_of(list(self._removed)))
        array, added, removed = (int(part.sum()) for part in parts)
        others = [phone_key(phone) for phone in self._others]
        mixed = functools.reduce(
            operator.xor, [*(int(np.bitwise_xor.reduce(part)) for part in parts), *others]
        )
        # numbers are positive, so numpy's remainder is SQL's; the products fit an int64
        scrambled_parts = (np.bitwise_xor.reduce(part % SCRAMBLE_MODULUS * SCRAMBLE_FACTOR) for part in parts)
        spread = functools.reduce(operator.xor, [*map(int, scrambled_parts), *map(scrambled, others)])
        return Digest.of(len(self), array + added - removed + sum(others), mixed, spread)

    def add(self, phone: str, since: int) -> None:
        """List the phone at `since`, or set its `since` when it is listed already."""
        number = number_of(phone)
        if number is None:
            self._others[phone] = since
        else:
            self._put(phone, since, self._position(number))
            self._merge_if_due()

    def update(self, entries: Sequence[tuple[str, int]]) -> None:
        """`add` each (phone, since), with one look-up in the array for all of them rather than one per
        entry."""
        if not len(self._array):
            for phone, since in entries:
                self.add(phone, since)
            return
        plain = []
        for phone, since in entries:
            number = number_of(phone)
            if number is None:
                self._others[phone] = since
            else:
                plain.append((phone, since, number))
        at, listed = self._locate(np.fromiter((n for _, _, n in plain), dtype=np.int64, count=len(plain)))
        for (phone, since, _), position, in_array in zip(plain, at.tolist(), listed.tolist(), strict=True):
            self._put(phone, since, position if in_array else None)
        self._merge_if_due()

    def discard(self, phone: str) -> None:
        if phone in self._added:
            del self._added[phone]
        elif phone in self._others:
            del self._others[phone]
        elif self._position(number_of(phone)) is not None:
            self._removed.add(phone)
            self._merge_if_due()

    def members(self, phones: Sequence[str], numbers: Numbers | None = None) -> dict[str, int]:
        """The phones that are in the set, with their `since`. Phones the caller validated as E.164 only,
        unless the set has no array; `numbers` are their integers when the caller already computed them."""
        found = {phone: self._added[phone] for phone in self._added.keys() & phones} if self._added else {}
        if self._others:
            found.update((phone, self._others[phone]) for phone in self._others.keys() & phones)
        if len(self._array):
            if numbers is None:
                numbers = numbers_of(phones)
            at, listed = self._locate(numbers)
            hits = np.flatnonzero(listed)
            for i, since in zip(hits.tolist(), self._since[at[hits]].tolist(), strict=True):
                if phones[i] not in self._removed:
                    found[phones[i]] = since
        return found

    def _put(self, phone: str, since: int, position: int | None) -> None:
        """List a plain E.164 phone at `since`; `position`: where its number is in the array, if there."""
        if position is None:
            self._added[phone] = since
        else:
            self._removed.discard(phone)
            self._since[position] = since

    def _locate(self, numbers: Numbers) -> tuple[Numbers, npt.NDArray[np.bool_]]:
        """For each number, a position in the array and whether the number is there (at that position)."""
        at = self._array.searchsorted(numbers)
        at[at == len(self._array)] = 0  # past the end: compared with any entry, it differs
        return at, self._array[at] == numbers

    def _position(self, number: int | None) -> int | None:
        """Where the number is in the array (whether or not it has been removed since), or None."""
        if number is None or not len(self._array):
            return None
        at = int(self._array.searchsorted(number))  # the method: a quarter of np.searchsorted's cost here
        return at if at < len(self._array) and int(self._array[at]) == number else None

    def _merge_if_due(self) -> None:
        if len(self._added) + len(self._removed) >= self._merge_at:
            self._merge()

    def _merge(self) -> None:
        """New arrays with the changes in them: O(size of the array), once per len(array) / 32 changes."""
        array, since = self._array, self._since
        if self._removed:
            gone = np.searchsorted(array, np.sort(numbers_of(list(self._removed))))
            array, since = np.delete(array, gone), np.delete(since, gone)
        new = numbers_of(list(self._added))
        new_since = np.fromiter(self._added.values(), dtype=np.int64, count=len(self._added))
        order = np.argsort(new)
        at = np.searchsorted(array, new[order])
        self._added, self._removed = {}, set()
        self._store(np.insert(array, at, new[order]), np.insert(since, at, new_since[order]))

    def _store(self, numbers: Numbers, since: Numbers) -> None:
        """Keep sorted distinct `numbers` as the array, or as strings when they are too few for one."""
        if len(numbers) < MIN_ARRAY:
            self._array, self._since = _EMPTY, _EMPTY
            self._added.update(zip((f"+{n}" for n in numbers.tolist()), since.tolist(), strict=True))
        else:
            self._array, self._since = numbers, since
        self._merge_at = max(MIN_ARRAY, len(self._array) // MERGE_FRACTION)


class PhoneSetLoader:
    """Builds a PhoneSet from (phone, since) pairs given in chunks, holding them as integers, not strings."""

    def __init__(self) -> None:
        self._numbers: list[Numbers] = []
        self._since: list[Numbers] = []
        self._others: dict[str, int] = {}

    def extend(self, entries: Iterable[tuple[str, int]]) -> None:
        numbers, since = [], []
        for phone, listed_at in entries:
            number = number_of(phone)
            if number is None:
                self._others[phone] = listed_at
            else:
                numbers.append(number)
                since.append(listed_at)
        self._numbers.append(np.array(numbers, dtype=np.int64))
        self._since.append(np.array(since, dtype=np.int64))

    def build(self) -> PhoneSet:
        if not self._numbers:
            return PhoneSet(others=self._others)
        return PhoneSet(np.concatenate(self._numbers), np.concatenate(self._since), self._others)
