"""CheckBatchResponse encoded by hand: the one message large enough (up to 10,000 results per call) for
building a protobuf object per result to dominate the call's cost.

The output is the standard wire format, so callers parse it with the generated classes as usual; a test
compares it byte for byte with what the generated serializer makes. It is returned as an `EncodedResponse`,
which the server's interceptor sends as it is. Results are assembled as latin-1 text (one character per
byte) because Python's %-formatting and joins run in C over text: a plain ALLOW result costs one template
look-up and one format, with no Python bytecode per number when the batch allows it.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor
from stopgate.v1 import quarantine_check_pb2 as pb

from stopgate_server.api.validation import MAX_PHONE_INPUT
from stopgate_server.domain.phones import MAX_INPUT_LENGTH


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    """A response message already in wire format: the interceptor sends `payload` as it is instead of
    serializing the response. gRPC takes only exact `bytes`, so the payload is wrapped rather than
    subclassed: passing it on copies nothing."""

    payload: bytes


# The CheckResult fields a plain ALLOW record holds, in the order the templates write them, and those it
# leaves at their defaults (nothing written). Together they must be every field of CheckResult: a test fails
# when the protos add one, so that whether a plain ALLOW sets it is decided here, not silently skipped.
PLAIN_ALLOW_WRITES = ("phone_number", "e164", "verdict")
PLAIN_ALLOW_LEAVES_UNSET = ("reason", "since")

_WIRE_TYPES = {FieldDescriptor.TYPE_ENUM: 0, FieldDescriptor.TYPE_STRING: 2, FieldDescriptor.TYPE_MESSAGE: 2}


def _key(field: FieldDescriptor) -> str:
    """The key (number and wire type) of a field numbered below 16, as its one byte."""
    if field.number >= 16:
        raise ValueError(f"{field.full_name}: a key of more than one byte")
    return chr(field.number << 3 | _WIRE_TYPES[field.type])


_RESULTS_TAG = _key(pb.CheckBatchResponse.DESCRIPTOR.fields_by_name["results"])
_PHONE_NUMBER_TAG, _E164_TAG, _VERDICT_TAG = (
    _key(pb.CheckResult.DESCRIPTOR.fields_by_name[name]) for name in PLAIN_ALLOW_WRITES
)


def _plain_allow_parts(raw_length: int, e164_length: int) -> tuple[str, str, str]:
    """A CheckResult(phone_number=raw, e164=e164, verdict=ALLOW) record for inputs of these lengths in
    bytes, as the text before raw, between raw and e164, and after e164. Every length here is below 128,
    so each one is a single-byte varint."""
    body_length = 2 + raw_length + 2 + e164_length + 2
    return (
        f"{_RESULTS_TAG}{chr(body_length)}{_PHONE_NUMBER_TAG}{chr(raw_length)}",
        f"{_E164_TAG}{chr(e164_length)}",
        f"{_VERDICT_TAG}{chr(pb.VERDICT_ALLOW)}",
    )


_PLAIN_ALLOW_PARTS = {
    (raw_length, e164_length): _plain_allow_parts(raw_length, e164_length)
    for raw_length in range(MAX_PHONE_INPUT + 1)
    for e164_length in range(MAX_INPUT_LENGTH + 1)
}
# The same as %-templates; a length can be the character "%" (37), hence the escaping.
_PLAIN_ALLOW = {
    lengths: "%s".join(part.replace("%", "%%") for part in parts)
    for lengths, parts in _PLAIN_ALLOW_PARTS.items()
}


def check_batch_response(
    raw_numbers: Sequence[str],
    e164s: Sequence[str | None],
    decided: Mapping[int, pb.CheckResult],
    totals: pb.CheckBatchResponse,
) -> EncodedResponse:
    """The encoded response: result i is `decided[i]` when present, else a plain ALLOW of
    (raw_numbers[i], e164s[i]); then the counters of `totals` (a response without results)."""
    return EncodedResponse(_results(raw_numbers, e164s, decided) + totals.SerializeToString())


def _results(
    raw_numbers: Sequence[str], e164s: Sequence[str | None], decided: Mapping[int, pb.CheckResult]
) -> bytes:
    if None in e164s or not "".join(raw_numbers).isascii():
        records = [_plain_allow(raw, e164) for raw, e164 in zip(raw_numbers, e164s, strict=True)]
        return _joined(records, decided)
    # The common batch: every input is one byte per character and every e164 is known, so map(), zip(),
    # joins and % build the records in C.
    raw_lengths = set(map(len, raw_numbers))
    # Inputs already in E.164 (the usual case) are the same objects: the comparison is one identity test each.
    e164_lengths = raw_lengths if e164s == raw_numbers else set(map(len, e164s))  # type: ignore[arg-type]
    if len(raw_lengths) == 1 == len(e164_lengths):  # numbers of one country, typically
        return _uniform(raw_numbers, e164s, decided)  # type: ignore[arg-type]
    lengths = zip(map(len, raw_numbers), map(len, e164s), strict=True)  # type: ignore[arg-type]
    pairs = zip(raw_numbers, e164s, strict=True)
    records = list(map(operator.mod, map(_PLAIN_ALLOW.__getitem__, lengths), pairs))
    return _joined(records, decided)


def _uniform(
    raw_numbers: Sequence[str], e164s: Sequence[str], decided: Mapping[int, pb.CheckResult]
) -> bytes:
    """The results when every input has one length and every e164 another: the plain ALLOW records are
    then all as wide, built by two joins, and the decided ones are put in place by their offsets."""
    head, middle, tail = _PLAIN_ALLOW_PARTS[len(raw_numbers[0]), len(e164s[0])]
    width = len(head) + len(raw_numbers[0]) + len(middle) + len(e164s[0]) + len(tail)
    allows = head + (tail + head).join(map(middle.join, zip(raw_numbers, e164s, strict=True))) + tail
    pieces, start = [], 0
    for index in sorted(decided):
        pieces += [allows[start : index * width], _record(decided[index])]
        start = (index + 1) * width
    pieces.append(allows[start:])
    return "".join(pieces).encode("latin-1")


def _joined(records: list[str], decided: Mapping[int, pb.CheckResult]) -> bytes:
    for index, result in decided.items():
        records[index] = _record(result)
    return "".join(records).encode("latin-1")


def _plain_allow(raw: str, e164: str | None) -> str:
    """One plain ALLOW record, "" for an invalid number (those are always decided)."""
    if e164 is None:
        return ""
    if raw.isascii():
        return _PLAIN_ALLOW[len(raw), len(e164)] % (raw, e164)
    return _record(pb.CheckResult(phone_number=raw, e164=e164, verdict=pb.VERDICT_ALLOW))


def _record(result: pb.CheckResult) -> str:
    """One `results` entry encoded by protobuf, as latin-1 text."""
    body = result.SerializeToString()
    return (_RESULTS_TAG.encode() + _varint(len(body)) + body).decode("latin-1")


def _varint(value: int) -> bytes:
    encoded = bytearray()
    while value >= 0x80:
        encoded.append((value & 0x7F) | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)
