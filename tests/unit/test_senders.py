"""Sender addresses: kinds inferred from the address, shortcodes in any digits, reply routes."""

from __future__ import annotations

import pytest
from stopgate_server.domain.senders import Sender, SenderKind, ascii_digits, infer_kind, shortcode_of


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("36180", SenderKind.SHORTCODE),
        ("60999", SenderKind.SHORTCODE),
        ("123", SenderKind.SHORTCODE),
        ("12345678", SenderKind.SHORTCODE),
        ("+447700900123", SenderKind.LONGCODE),
        ("33612345678", SenderKind.LONGCODE),
        ("ACME", SenderKind.ALPHANUMERIC),
        ("Acme Shop", SenderKind.ALPHANUMERIC),
        ("SHOP24", SenderKind.ALPHANUMERIC),
        ("B&Q", SenderKind.ALPHANUMERIC),
        ("12", None),  # too short for a shortcode
        ("ACMEWORLDWIDE", None),  # alphanumeric senders have at most 11 characters
        ("", None),
        ("+ACME", None),
        ("AC/ME", None),
    ],
)
def test_infer_kind(address: str, kind: SenderKind | None) -> None:
    assert infer_kind(address) is kind


@pytest.mark.parametrize(
    ("value", "ascii"),
    [
        ("36180", "36180"),
        ("３６１８０", "36180"),  # fullwidth
        ("٣٦١٨٠", "36180"),  # Arabic-Indic
        ("३६१८०", "36180"),  # Devanagari
        ("۳۶۱۸۰", "36180"),  # extended Arabic-Indic (Persian)
        (" \t36180\u3000", "36180"),  # surrounding whitespace, ideographic space included
        ("+４４７７００９００１２３", "+447700900123"),
        ("ACME", "ACME"),
        ("²³", "²³"),  # superscripts are digits but not decimal digits: left alone
    ],
)
def test_ascii_digits(value: str, ascii: str) -> None:
    assert ascii_digits(value) == ascii


@pytest.mark.parametrize(
    ("value", "shortcode"),
    [("３６１８０", "36180"), (" 60999 ", "60999"), ("12", ""), ("123456789", ""), ("ACME", ""), ("", "")],
)
def test_shortcode_of(value: str, shortcode: str) -> None:
    assert shortcode_of(value) == shortcode


def test_infer_kind_wants_ascii_digits() -> None:
    assert infer_kind("３６１８０") is None
    assert infer_kind(ascii_digits("３６１８０")) is SenderKind.SHORTCODE


@pytest.mark.parametrize(
    ("sender", "route"),
    [
        (Sender("36180", SenderKind.SHORTCODE), "36180"),
        (Sender("ACME", SenderKind.ALPHANUMERIC, "36180"), "36180"),
        (Sender("ACME", SenderKind.ALPHANUMERIC), ""),
        (Sender("+447700900123", SenderKind.LONGCODE), ""),
    ],
)
def test_route_is_the_shortcode_replies_reach(sender: Sender, route: str) -> None:
    assert sender.route == route
