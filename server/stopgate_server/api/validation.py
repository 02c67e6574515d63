"""Request validation: collect every bad field of a request, then raise one InvalidArgument naming them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from stopgate.v1 import common_pb2

from stopgate_server.domain import phones
from stopgate_server.domain.senders import SenderKind, infer_kind
from stopgate_server.errors import FieldViolation, InvalidArgument

MAX_BATCH = 10_000
NUL = "\x00"
MAX_PHONE_INPUT = 64
MAX_ACTOR = 128
MAX_REASON = 500
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_SENDER_KINDS = {
    common_pb2.SENDER_TYPE_ALPHANUMERIC: SenderKind.ALPHANUMERIC,
    common_pb2.SENDER_TYPE_SHORTCODE: SenderKind.SHORTCODE,
    common_pb2.SENDER_TYPE_LONGCODE: SenderKind.LONGCODE,
}


class Violations:
    """The bad fields found so far in one request."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)

    def identifier(self, field: str, value: str, *, required: bool = True) -> None:
        """Licence, campaign and similar ids: 1-64 letters, digits and `._:-`, starting alphanumeric."""
        if not value:
            if required:
                self.add(field, "required")
        elif not _IDENTIFIER.fullmatch(value):
            self.add(field, "must be 1 to 64 letters, digits or ._:- starting with a letter or digit")

    def text(self, field: str, value: str, limit: int, *, required: bool = True) -> None:
        if not value.strip():
            if required:
                self.add(field, "required")
        elif len(value) > limit:
            self.add(field, f"at most {limit} characters")
        else:
            self.no_nul(field, value)

    def no_nul(self, field: str, value: str) -> None:
        """PostgreSQL text cannot hold U+0000: a value with it could never be stored."""
        if NUL in value:
            self.add(field, "must not contain the NUL character")

    def enum(self, field: str, value: int, enum_type: Any) -> None:
        """A required enum: set, and one of the values this server knows."""
        if value == 0:
            self.add(field, "required")
        elif value not in enum_type.values():
            self.add(field, f"unknown value {value}")

    def region(self, field: str, value: str) -> None:
        if value and not phones.is_region(value):
            self.add(field, "must be an ISO 3166-1 alpha-2 region code such as FR")

    def sender(self, field: str, sender: common_pb2.Sender, present: bool) -> SenderKind | None:
        """The kind of a required sender: declared, or inferred from its address."""
        if not present or not sender.address:
            self.add(f"{field}.address", "required")
            return None
        inferred = infer_kind(sender.address)
        if sender.type == common_pb2.SENDER_TYPE_UNSPECIFIED:
            if inferred is None:
                self.add(f"{field}.address", "not an alphanumeric alias, a shortcode or a phone number")
            return inferred
        declared = _SENDER_KINDS.get(sender.type)
        if declared is None:
            self.add(f"{field}.type", f"unknown value {sender.type}")
        elif inferred != declared:
            self.add(f"{field}.address", f"not a valid {declared.value.lower()} address")
        return declared

    def batch(self, field: str, values: Sequence[str], limit: int = MAX_BATCH) -> None:
        """A list of 1..limit phone inputs, none absurdly long."""
        if not values:
            self.add(field, "at least one phone number is required")
        elif len(values) > limit:
            self.add(field, f"at most {limit} phone numbers per request (got {len(values)})")
        elif max(map(len, values)) > MAX_PHONE_INPUT:  # checked in C first: this runs on every check
            for position, value in enumerate(values):
                if len(value) > MAX_PHONE_INPUT:
                    self.add(f"{field}[{position}]", f"at most {MAX_PHONE_INPUT} characters")
