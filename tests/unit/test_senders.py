"""Sender addresses: kinds inferred from the address."""

from __future__ import annotations

import pytest
from stopgate_server.domain.senders import SenderKind, infer_kind


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
