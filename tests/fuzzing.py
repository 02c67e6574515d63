"""Random requests for any stopgate.v1 RPC, built from its message descriptors, and one raw call that says
how it ended: shared by the fuzz tests (tests/integration/test_fuzz.py) and their long run (bench/fuzz.py).

The requests are protobuf-valid but odd: timestamps over the whole int64/int32 range of seconds and nanos
(not only what a Timestamp may hold), NUL, astral and combining text, empty strings and strings at, past
and far past every length limit, unknown enum numbers, and page tokens that are garbage or forged. Lone
surrogates are drawn too; the protobuf runtime refuses to set them (they have no UTF-8 form), so those
fields are left out, and their wire form (invalid UTF-8) is fuzzed by `with_bad_utf8`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from typing import Any

import grpc
from contracts import ENDLESS_STREAMS
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

# What no reply may hold: exception, driver or SQL text.
LEAKS = (
    "Traceback",
    'File "',
    "Error:",
    "asyncpg",
    "Exception",
    "DecodeError",
    "KeyError",
    "SELECT",
    "INSERT",
)

FIRST_SECOND, LAST_SECOND = -62_135_596_800, 253_402_300_799  # what a Timestamp may hold: years 1 to 9999
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
RANGES = {
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT64: st.integers(min_value=0, max_value=2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(min_value=0, max_value=2**64 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(min_value=0, max_value=2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(min_value=0, max_value=2**32 - 1),
}
NOW = int(time.time())
SECONDS = st.one_of(
    st.sampled_from(
        [FIRST_SECOND - 1, FIRST_SECOND, LAST_SECOND, LAST_SECOND + 1, 0, -1, -(2**63), 2**63 - 1]
    ),
    INT64,
    st.integers(min_value=FIRST_SECOND, max_value=LAST_SECOND),
    st.integers(min_value=NOW - 40 * 86_400, max_value=NOW + 7_200),  # around the windows ingest accepts
)
NANOS = st.one_of(
    st.sampled_from([0, -1, 999_999_999, 1_000_000_000, -(2**31), 2**31 - 1]),
    st.integers(min_value=0, max_value=999_999_999),
    INT32,
)
TIMESTAMPS = st.fixed_dictionaries({}, optional={"seconds": SECONDS, "nanos": NANOS})

# The lengths the contracts name (shortcodes, ids, event ids, reasons, texts), and one past each.
LIMITS = (3, 8, 9, 16, 17, 32, 33, 64, 65, 128, 129, 500, 501, 1600, 1601)
SAMPLES = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "+33612345678",
    "06 12 34 56 78",
    "447777777777",
    "+33\x00612345678",
    "FR",
    "BE",
    "36180",
    "٣٦١٨٠",  # 36180 in Arabic-Indic digits
    "acme",
    "c1",
    "ACME",
    "STOP",
    "START",
    "Arrêt",
    "\ufeffSTOP\u202e",
    "💥" * 50,
]
STRINGS = st.one_of(
    st.sampled_from(SAMPLES),
    st.text(max_size=40),  # any code point but surrogates: controls, NUL, combining, astral
    st.text(st.characters(min_codepoint=0x10000), max_size=20),  # astral only
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),  # lone surrogates
    st.builds(lambda n, c: c * n, st.sampled_from(LIMITS), st.sampled_from(["9", "a", "é", "💥", "\x00"])),
    st.integers(min_value=1_000, max_value=200_000).map(lambda n: "9" * n),  # huge
)

# Values that pass validation, by field name (see `messages`).
PLAUSIBLE = {
    "licence_id": ["acme", "globex"],
    "campaign_id": ["c1", "c2"],
    "phone_number": ["+33612345678", "0612345678", "447777777777"],
    "phone_numbers": ["+33612345678", "+33698765432", "06 12 34 56 78"],
    "default_region": ["FR", "GB"],
    "country": ["FR", "BE", "US"],
    "address": ["36180", "ACME", "+33612345678"],
    "reply_shortcode": ["36180"],
    "recipient": ["36180", "60999"],
    "event_id": ["e1", "e2"],
    "text": ["STOP", "START", "Soldes -30% STOP 36180", "please stop texting me"],
    "texts": ["Soldes -30% STOP 36180", "Hello {name}, 20% off this week", "Bon d’achat 10€ ç"],
    "shortcode": ["36180"],
    "actor": ["ops"],
    "reason": ["asked"],
    "consent_reference": ["ticket-1"],
}


def _encoded(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


# Page tokens: any string, any bytes in base64, and base64 JSON objects shaped like the ones the service
# returns today (keys t, c, h) holding odd values: none of them was issued for the request.
TOKENS = st.one_of(
    STRINGS,
    st.binary(max_size=200).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.dictionaries(
        st.sampled_from(["t", "c", "h"]),
        st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=70), SECONDS, st.lists(INT32)),
        max_size=3,
    ).map(_encoded),
)


def values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    """Values of one field: any string, any number its type holds (so unknown enum numbers too), nested
    messages down to a depth, timestamps beyond what a Timestamp may hold."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return TIMESTAMPS
        return messages(field.message_type, depth + 1) if depth < 2 else st.just({})
    if field.type == FieldDescriptor.TYPE_STRING:
        return TOKENS if field.name == "page_token" else STRINGS
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=300)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=64 if field.type == FieldDescriptor.TYPE_DOUBLE else 32)
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return st.one_of(st.sampled_from([value.number for value in field.enum_type.values]), INT32)
    return RANGES.get(field.type, INT32)  # int32, sint32, sfixed32


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """The fields of one message as a dict for `build`: each present or not, with any value; or, half of
    the time, with plausible values wherever there are some (see PLAUSIBLE), so that more requests get
    past validation to the code behind it."""
    return st.one_of(_fields(descriptor, depth, plausible=False), _fields(descriptor, depth, plausible=True))


def _fields(descriptor: Descriptor, depth: int, *, plausible: bool) -> st.SearchStrategy[dict[str, Any]]:
    present: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        likely = _plausible(field, depth) if plausible else None
        if likely is not None:
            present[field.name] = st.lists(likely, min_size=1, max_size=12) if field.is_repeated else likely
        else:
            single = values(field, depth)
            optional[field.name] = st.lists(single, max_size=12) if field.is_repeated else single
    return st.fixed_dictionaries(present, optional=optional)


def _plausible(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    """Values of a field that its validation accepts, as far as the field's name and type tell."""
    if field.type == FieldDescriptor.TYPE_STRING and field.name in PLAUSIBLE:
        return st.sampled_from(PLAUSIBLE[field.name])
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return st.sampled_from([value.number for value in field.enum_type.values if value.number])
    if field.type == FieldDescriptor.TYPE_MESSAGE and depth < 2:
        assert field.message_type is not None
        if field.message_type.full_name != "google.protobuf.Timestamp":
            return _fields(field.message_type, depth + 1, plausible=True)
    return None


def build(descriptor: Descriptor, fields: dict[str, Any]) -> Message:
    """A message from the dict `messages` drew (a Timestamp is a message of two numbers, set as they are).
    A string the runtime refuses (a lone surrogate) is left out."""
    message = GetMessageClass(descriptor)()
    for name, value in fields.items():
        field = descriptor.fields_by_name[name]
        items = value if field.is_repeated else [value]
        for item in items:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                assert field.message_type is not None
                if field.message_type.GetOptions().map_entry:  # a map of scalars: entries are set by key
                    with contextlib.suppress(UnicodeEncodeError):
                        getattr(message, name)[item.get("key", "")] = item.get("value", "")
                    continue
                target = getattr(message, name).add() if field.is_repeated else getattr(message, name)
                target.CopyFrom(build(field.message_type, item))
                continue
            try:
                if field.is_repeated:
                    getattr(message, name).append(item)
                else:
                    setattr(message, name, item)
            except UnicodeEncodeError:
                continue
    return message


def payloads(method: MethodDescriptor) -> st.SearchStrategy[list[bytes]]:
    """The serialized request frames of one call: one, or up to two for a client stream."""
    requests = messages(method.input_type).map(lambda fields: build(method.input_type, fields))
    size = 2 if method.client_streaming else 1
    return st.lists(requests.map(lambda request: request.SerializeToString()), min_size=1, max_size=size)


def with_bad_utf8(descriptor: Descriptor, valid: bytes) -> bytes:
    """A valid message plus a string field whose bytes are not UTF-8: a frame no stub can write."""
    number = next((f.number for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING), 1)
    payload = b"\xc3\x28\xff\xfe"
    return valid + bytes([(number << 3) | 2, len(payload)]) + payload


def acceptable(code: grpc.StatusCode, details: str) -> bool:
    """Invariant 7: no request ends INTERNAL or UNKNOWN, and no reply leaks exception or SQL text."""
    return code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN) and not any(
        leak in details for leak in LEAKS
    )


async def call(
    channel: grpc.aio.Channel, metadata: Any, path: str, method: MethodDescriptor, frames: list[bytes]
) -> tuple[grpc.StatusCode, str]:
    """One call with raw request frames: its status code and details. Stream requests go one at a time,
    each after the answer to the previous one, as a well-behaved client does (a write racing the server's
    final status is reported by grpc.aio as a client-side INTERNAL)."""
    identity = (lambda raw: raw), (lambda raw: raw)
    try:
        if method.client_streaming:
            stream: Any = channel.stream_stream(path, *identity)(metadata=metadata, timeout=20)
            for frame in frames:
                await stream.write(frame)
                if await stream.read() is grpc.aio.EOF:
                    break
            await stream.done_writing()
            code = await stream.code()
            if code != grpc.StatusCode.OK:
                return code, await stream.details() or ""
        elif method.server_streaming:
            rows = channel.unary_stream(path, *identity)(frames[0], metadata=metadata, timeout=20)
            async for _ in rows:
                if path in ENDLESS_STREAMS:  # it answered: that is all a call of it can show
                    rows.cancel()
                    break
        else:
            await channel.unary_unary(path, *identity)(frames[0], metadata=metadata, timeout=20)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""
