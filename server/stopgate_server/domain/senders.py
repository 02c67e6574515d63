"""Originating addresses: their kind (inferred when the caller does not say), shortcodes read in ASCII
digits, and the shortcode through which replies to a sender come back (its route)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum


class SenderKind(Enum):
    """What an originating address is (mirrors stopgate.v1.SenderType without its UNSPECIFIED)."""

    ALPHANUMERIC = "ALPHANUMERIC"
    SHORTCODE = "SHORTCODE"
    LONGCODE = "LONGCODE"


MAX_SENDER_LENGTH = 16
_SHORTCODE = re.compile(r"[0-9]{3,8}")
_LONGCODE = re.compile(r"\+?[0-9]{9,15}")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .&_-]{0,10}")  # GSM allows 11 characters


def ascii_digits(value: str) -> str:
    """`value` without surrounding whitespace, every Unicode decimal digit ("３", "٣", "३") written as its
    ASCII digit: operators and gateways pass shortcodes and numbers through in any script, and a stop list
    keyed by "３６１８０" would never block a send from "36180"."""
    value = value.strip()
    if value.isascii():
        return value
    return "".join(str(d) if (d := unicodedata.decimal(c, None)) is not None else c for c in value)


def shortcode_of(value: str) -> str:
    """The shortcode `value` names (3 to 8 digits of any script, read as ASCII), or "" when it names none."""
    digits = ascii_digits(value)
    return digits if _SHORTCODE.fullmatch(digits) else ""


def infer_kind(address: str) -> SenderKind | None:
    """The kind of an address (None when it is none of them): 3-8 digits are a shortcode, 9-15 digits
    (optionally with "+") a longcode, up to 11 letters, digits and `.&_-` with a letter an alias. Digits
    are ASCII: pass the address through `ascii_digits` first."""
    if _SHORTCODE.fullmatch(address):
        return SenderKind.SHORTCODE
    if _LONGCODE.fullmatch(address):
        return SenderKind.LONGCODE
    if _ALPHANUMERIC.fullmatch(address) and any(c.isalpha() for c in address):
        return SenderKind.ALPHANUMERIC
    return None


@dataclass(frozen=True)
class Sender:
    """A validated originating address. `reply_shortcode` is an alias's reply shortcode ("" otherwise):
    the operator substitutes it for "00000" in "STOP 00000" and recipients reply STOP to it."""

    address: str
    kind: SenderKind
    reply_shortcode: str = ""

    @property
    def route(self) -> str:
        """The shortcode replies to this sender reach, whose stop list blocks its sends: the address of a
        shortcode, the reply shortcode of an alias; "" for a longcode or an alias whose route is unknown."""
        return self.address if self.kind is SenderKind.SHORTCODE else self.reply_shortcode
