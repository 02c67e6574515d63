"""Request validation: collect every bad field of a request, then raise one InvalidArgument naming them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from stopgate.v1 import common_pb2

from stopgate_server.api.mapping import to_datetime
from stopgate_server.domain import phones
from stopgate_server.domain.senders import Sender, SenderKind, ascii_digits, infer_kind, shortcode_of
from stopgate_server.errors import FieldViolation, InvalidArgument

MAX_BATCH = 10_000
NUL = "\x00"
MAX_PHONE_INPUT = 64
MAX_ACTOR = 128
MAX_REASON = 500
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
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

    def request_id(self, field: str, value: str) -> uuid.UUID | None:
        """An optional request id (AIP-155): a UUID in its 36-character form, any case, not the nil UUID;
        None when empty or invalid."""
        if not value:
            return None
        if not _UUID.fullmatch(value):
            self.add(field, 'must be a UUID such as "0b6f5c3e-8f4e-4d7a-9c1b-2a3d4e5f6a7b" (36 characters)')
            return None
        request_id = uuid.UUID(value)
        if request_id.int == 0:
            self.add(field, "must not be the nil UUID: choose a random one for each request")
            return None
        return request_id

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

    def time(self, field: str, stamp: Timestamp) -> datetime | None:
        """A Timestamp field as a UTC datetime; None, with the field named, when it is not a valid one."""
        moment = to_datetime(stamp)
        if moment is None:
            self.add(field, "not a valid Timestamp: 0001-01-01 to 9999-12-31 UTC, nanos 0 to 999,999,999")
        return moment

    def region(self, field: str, value: str) -> None:
        if value and not phones.is_region(value):
            self.add(field, "must be an ISO 3166-1 alpha-2 region code such as FR")

    def sender(self, field: str, sender: common_pb2.Sender, present: bool) -> Sender | None:
        """A required sender: its kind declared or inferred from its address, digits read as ASCII, and
        its reply shortcode (an alias's; a shortcode may only repeat itself there, a longcode has none)."""
        address = ascii_digits(sender.address)
        before = len(self.items)
        if not present or not address:
            self.add(f"{field}.address", "required")
            return None
        inferred = infer_kind(address)
        kind: SenderKind | None
        if sender.type == common_pb2.SENDER_TYPE_UNSPECIFIED:
            kind = inferred
            if kind is None:
                self.add(f"{field}.address", "not an alphanumeric alias, a shortcode or a phone number")
        else:
            kind = _SENDER_KINDS.get(sender.type)
            if kind is None:
                self.add(f"{field}.type", f"unknown value {sender.type}")
            elif inferred != kind:
                self.add(f"{field}.address", f"not a valid {kind.value.lower()} address")
        reply_shortcode = self.shortcode(f"{field}.reply_shortcode", sender.reply_shortcode)
        if reply_shortcode and kind is SenderKind.LONGCODE:
            self.add(
                f"{field}.reply_shortcode", "a longcode sender has no reply shortcode: replies come to it"
            )
        elif reply_shortcode and kind is SenderKind.SHORTCODE and reply_shortcode != address:
            self.add(f"{field}.reply_shortcode", "a shortcode sender's replies come to the shortcode itself")
        if kind is None or len(self.items) > before:
            return None
        return Sender(address, kind, reply_shortcode if kind is SenderKind.ALPHANUMERIC else "")

    def shortcode(self, field: str, value: str) -> str:
        """An optional shortcode: 3 to 8 digits of any script, returned in ASCII ("" when empty)."""
        if not value:
            return ""
        shortcode = shortcode_of(value)
        if not shortcode:
            self.add(field, "must be a shortcode of 3 to 8 digits")
        return shortcode

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
