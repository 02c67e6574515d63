"""Originating addresses: their kind, inferred when the caller does not say."""

from __future__ import annotations

import re
from enum import Enum


class SenderKind(Enum):
    """What an originating address is (mirrors stopgate.v1.SenderType without its UNSPECIFIED)."""

    ALPHANUMERIC = "ALPHANUMERIC"
    SHORTCODE = "SHORTCODE"
    LONGCODE = "LONGCODE"


MAX_SENDER_LENGTH = 16
_SHORTCODE = re.compile(r"\d{3,8}")
_LONGCODE = re.compile(r"\+?\d{9,15}")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .&_-]{0,10}")  # GSM allows 11 characters


def infer_kind(address: str) -> SenderKind | None:
    """The kind of an address (None when it is none of them): 3-8 digits are a shortcode, 9-15 digits
    (optionally with "+") a longcode, up to 11 letters, digits and `.&_-` with a letter an alias."""
    if _SHORTCODE.fullmatch(address):
        return SenderKind.SHORTCODE
    if _LONGCODE.fullmatch(address):
        return SenderKind.LONGCODE
    if _ALPHANUMERIC.fullmatch(address) and any(c.isalpha() for c in address):
        return SenderKind.ALPHANUMERIC
    return None
