"""SMS parts of a text: GSM 03.38 7-bit or UCS-2, as handsets and operators split them.

GSM-7: 160 septets in one part, 153 per part when concatenated (the user data header takes 7). Characters
of the extension table are sent as ESC + character: 2 septets, never split across parts. Any character
outside both tables switches the whole text to UCS-2: 70 UTF-16 code units in one part, 67 per part;
characters outside the BMP (emoji) are surrogate pairs, 2 units, never split.
"""

from __future__ import annotations

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


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` is in the GSM-7 default alphabet or its extension table."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _unit_costs(text: str) -> tuple[Encoding, list[int]]:
    """The encoding of `text` and the cost in units of each character (which must stay in one part)."""
    if is_gsm7(text):
        return Encoding.GSM7, [2 if c in GSM7_EXTENSION else 1 for c in text]
    return Encoding.UCS2, [2 if ord(c) > 0xFFFF else 1 for c in text]


def count(text: str) -> Segments:
    """How many SMS parts `text` takes, packing each part greedily without splitting a character."""
    encoding, costs = _unit_costs(text)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    units = sum(costs)
    if units <= single:
        return Segments(encoding, units, 1, single, single - units)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            parts, used = parts + 1, 0
        used += cost
    return Segments(encoding, units, parts, multi, multi - used)
