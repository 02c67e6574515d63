"""Phone numbers in, E.164 out.

The fast path reads strings that are already E.164 ("+33612345678") with a string check and a table of
possible lengths per country calling code, in well under a microsecond. Anything else goes through
`phonenumbers` with the caller's default region ("06 12 34 56 78" + "FR"). Both paths accept exactly the
numbers phonenumbers calls *possible* (right country code, possible length); anything else is None, and a
None is never allowed to be messaged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

MAX_INPUT_LENGTH = 32
"""Longer inputs are not phone numbers in any notation; they are rejected before parsing."""


def _possible_lengths() -> dict[str, tuple[frozenset[int], str]]:
    """{country calling code: (lengths of a possible national number, main region)}, as phonenumbers
    judges them: by the metadata of the code's main region, counting the lengths only dialable locally."""
    table: dict[str, tuple[frozenset[int], str]] = {}
    for code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
        if metadata is None or metadata.general_desc is None:
            continue
        description = metadata.general_desc
        lengths = frozenset((*description.possible_length, *(description.possible_length_local_only or ())))
        table[str(code)] = (lengths, regions[0] if regions[0] != "001" else "")
    return table


def _by_prefix(
    table: dict[str, tuple[frozenset[int], str]],
) -> dict[str, tuple[int, frozenset[int], str]]:
    """{first three digits: (country code length, possible lengths, main region)}: country codes are
    prefix-free, so three digits always tell the code, in one dictionary look-up."""
    prefixes: dict[str, tuple[int, frozenset[int], str]] = {}
    for code, (lengths, region) in table.items():
        for suffix in range(10 ** (3 - len(code))):
            rest = str(suffix).zfill(3 - len(code)) if len(code) < 3 else ""
            prefixes[code + rest] = (len(code), lengths, region)
    return prefixes


_POSSIBLE_LENGTHS = _possible_lengths()
_BY_PREFIX = _by_prefix(_POSSIBLE_LENGTHS)


def _e164_pattern(table: dict[str, tuple[frozenset[int], str]]) -> str:
    """A regular expression matching exactly the numbers `_fast_e164` accepts as they are: "+", a country
    code, a national number not starting with 0, of a possible length. Country codes are nested by digit
    (a trie), so the engine never tries more than ten branches at a time."""

    def branches(codes: dict[str, frozenset[int]]) -> str:
        by_first_digit: dict[str, dict[str, frozenset[int]]] = {}
        for code, lengths in codes.items():
            by_first_digit.setdefault(code[:1], {})[code[1:]] = lengths
        alternatives = []
        for digit, rest in sorted(by_first_digit.items()):
            if "" in rest:  # the code ends here (codes are prefix-free: nothing else shares this digit)
                national = "|".join(f"[0-9]{{{length - 1}}}" for length in sorted(rest[""], reverse=True))
                alternatives.append(f"{digit}[1-9](?:{national})")
            else:
                alternatives.append(digit + branches(rest))
        return "(?:" + "|".join(alternatives) + ")"

    return r"\+" + branches({code: lengths for code, (lengths, _) in table.items()})


_E164 = _e164_pattern(_POSSIBLE_LENGTHS)
_ALL_E164 = re.compile(f"(?:{_E164}\n)*{_E164}")


def _fast_e164(text: str) -> str | None:
    """`text` when it is a possible E.164 number, None when it is not, "" when unsure (slow path decides)."""
    digits = text[1:]
    if not (digits.isascii() and digits.isdigit()) or digits[0] == "0":
        return ""
    known = _BY_PREFIX.get(digits[:3])
    if known is None:
        return None
    code_length, lengths, _ = known
    if digits[code_length : code_length + 1] == "0":  # leading zeros have per-country rules
        return ""
    return text if len(digits) - code_length in lengths else None


def to_e164(raw: str, default_region: str = "") -> str | None:
    """The E.164 form of `raw`, or None when it is not a possible phone number."""
    text = raw.strip()
    if not text or len(text) > MAX_INPUT_LENGTH:
        return None
    if text[0] == "+":
        fast = _fast_e164(text)
        if fast != "":
            return fast
    try:
        number = phonenumbers.parse(text, default_region.upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_region(code: str) -> bool:
    """Whether `code` is an ISO 3166-1 alpha-2 region phonenumbers knows ("FR", "gb")."""
    return code.upper() in phonenumbers.SUPPORTED_REGIONS


def all_e164(raw_numbers: Sequence[str]) -> bool:
    """Whether every input is a possible E.164 number as it is, as nearly every batch is: decided by one
    regular expression over the whole batch, in C."""
    joined = "\n".join(raw_numbers)
    # The newline count rules out an input that itself holds a newline and would pass for two numbers.
    return _ALL_E164.fullmatch(joined) is not None and joined.count("\n") == len(raw_numbers) - 1


def to_e164_many(raw_numbers: Sequence[str], default_region: str = "") -> list[str | None]:
    """`to_e164` of each input, in order: the batch form, for the thousands of numbers of one check."""
    if all_e164(raw_numbers):
        return list(raw_numbers)
    fast = _fast_e164
    converted: list[str | None] = []
    append = converted.append
    for raw in raw_numbers:
        # Inputs that are E.164 already (nearly all of them) are decided without the general path.
        if raw[:1] == "+" and len(raw) <= MAX_INPUT_LENGTH:
            decided = fast(raw)
            if decided != "":
                append(decided)
                continue
        append(to_e164(raw, default_region))
    return converted


def region_of(e164: str) -> str:
    """The main ISO region of an E.164 number's country code ("FR" for +33..., "US" for +1...), "" for
    non-geographic codes. Cheap: a prefix look-up, no parsing."""
    known = _BY_PREFIX.get(e164[1:4]) if e164[:1] == "+" else None
    return known[2] if known is not None else ""
