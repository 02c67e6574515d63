"""The domain's enums and the protobuf enums map one to one, by name: a value on one side only fails the
import, before it can reach a caller unmapped (a KeyError would be INTERNAL)."""

from __future__ import annotations

from enum import Enum

import pytest
from stopgate.v1 import common_pb2
from stopgate_server.api import mapping
from stopgate_server.domain.ingest import Source
from stopgate_server.domain.keywords import MatchKind


def test_every_value_of_both_sides_is_mapped() -> None:
    assert mapping.SOURCES[Source.WEB_UNSUBSCRIBE] == common_pb2.EVENT_SOURCE_WEB_UNSUBSCRIBE
    assert mapping.MATCH_KINDS[MatchKind.NONE] == common_pb2.MATCH_KIND_UNSPECIFIED
    assert set(mapping.SOURCE_OF) == set(common_pb2.EventSource.values()) - {0}


def test_a_protobuf_value_without_a_member_is_refused() -> None:
    class Fewer(Enum):
        SMS_REPLY = "SMS_REPLY"

    with pytest.raises(LookupError, match="Fewer has no member for EVENT_SOURCE_GATEWAY"):
        mapping.by_name(Fewer, common_pb2.EventSource)


def test_a_member_without_a_protobuf_value_is_refused() -> None:
    class More(Enum):
        OPT_OUT = "OPT_OUT"
        MAYBE = "MAYBE"

    with pytest.raises(ValueError, match="MAYBE"):
        mapping.by_name(More, common_pb2.Intent)
