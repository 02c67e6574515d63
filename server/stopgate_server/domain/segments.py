"""SMS parts of a text: GSM 03.38 7-bit or UCS-2, as handsets and operators split them.

GSM-7: 160 septets in one part, 153 per part when concatenated (the user data header takes 7). Characters
of the extension table are sent as ESC + character: 2 septets, never split across parts. Any character
outside both tables switches the whole text to UCS-2: 70 UTF-16 code units in one part, 67 per part;
characters outside the BMP (emoji) are surrogate pairs, 2 units, never split.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from enum import Enum

# The GSM 03.38 default alphabet (ESC, 0x1B, is not a character of its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + character, 2 septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(Enum):
    GSM7 = "GSM7"
    UCS2 = "UCS2"


@dataclass(frozen=True)
class Segments:
    """The cost of a text: encoding, total units, parts, capacity of each part, units left in the last."""

    encoding: Encoding
    units: int
    parts: int
    units_per_part: int
    remaining_in_last_part: int


GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` is in the GSM-7 default alphabet or its extension table."""
    return GSM7_ALL.issuperset(text)


# The characters that cost 2 units: GSM-7 escape pairs, UCS-2 surrogate pairs.
_GSM7_DOUBLE = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")
_UCS2_DOUBLE = re.compile("[\U00010000-\U0010ffff]")


def _pack(text: str, doubles: list[int], per_part: int) -> tuple[int, int]:
    """(parts, units used in the last part) when no 2-unit character may be split across parts.

    `doubles` are the positions of the 2-unit characters. Each part takes the longest run of characters
    that fits: at most `per_part` characters, one fewer per 2-unit character that would not fit.
    """
    parts = used = start = 0
    while start < len(text):
        end = min(len(text), start + per_part)
        while (
            used := end - start + bisect.bisect_left(doubles, end) - bisect.bisect_left(doubles, start)
        ) > per_part:
            end -= 1
        parts, start = parts + 1, end
    return parts, used


@functools.lru_cache(maxsize=4096)  # one check counts a text, its suggestion and its delivery: often equal
def count(text: str) -> Segments:
    """How many SMS parts `text` takes, packing each part greedily without splitting a character."""
    if is_gsm7(text):
        encoding, single, multi = Encoding.GSM7, GSM7_SINGLE, GSM7_MULTI
        doubles = sum(text.count(c) for c in GSM7_EXTENSION if c in text)
    else:
        encoding, single, multi = Encoding.UCS2, UCS2_SINGLE, UCS2_MULTI
        doubles = len(text.encode("utf-16-le")) // 2 - len(text)  # surrogate pairs
    units = len(text) + doubles
    if units <= single:
        return Segments(encoding, units, 1, single, single - units)
    if not doubles:  # every character costs 1 unit: plain arithmetic
        parts = -(-units // multi)
        return Segments(encoding, units, parts, multi, parts * multi - units)
    pattern = _GSM7_DOUBLE if encoding is Encoding.GSM7 else _UCS2_DOUBLE
    parts, used = _pack(text, [match.start() for match in pattern.finditer(text)], multi)
    return Segments(encoding, units, parts, multi, multi - used)
