"""Which RPCs are idempotent is declared once, in the protos (`option idempotency_level`); the client's
retries follow from it."""

from __future__ import annotations

import json

import pytest
from contracts import METHODS
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions
from stopgate.retry import IDEMPOTENT_METHODS, RETRIED_WITH_REQUEST_ID, RetryConfig

BY_NAME = {(method.containing_service.name, method.name): method for _, method in METHODS}
RETRIED = {(service, method) for service, methods in IDEMPOTENT_METHODS.items() for method in methods}


def _level(method: MethodDescriptor) -> MethodOptions.IdempotencyLevel.ValueType:
    return method.GetOptions().idempotency_level


def test_the_channel_retries_the_rpcs_the_protos_declare_idempotent() -> None:
    declared = {
        (method.containing_service.full_name, method.name)
        for _, method in METHODS
        if _level(method) in (MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT)
        and not method.client_streaming  # StreamEvents: the client resumes it itself
    }
    assert declared == RETRIED


def test_the_reads_and_ingest_are_retried() -> None:
    """What the options declare today, written out: an option lost from a proto fails here."""
    assert {
        ("stopgate.v1.QuarantineCheck", "GetNumberStatus"),
        ("stopgate.v1.QuarantineCheck", "BindShortcode"),
        ("stopgate.v1.QuarantineCheck", "UnbindShortcode"),
        ("stopgate.v1.QuarantineCheck", "ListShortcodeBindings"),
        ("stopgate.v1.QuarantineCheck", "ErasePersonalData"),
        ("stopgate.v1.StopIngest", "IngestEvent"),
        ("stopgate.v1.StopIngest", "ClassifyText"),
        ("stopgate.v1.StopIngest", "SetCustomKeyword"),
        ("stopgate.v1.StopIngest", "ListCustomKeywords"),
        ("stopgate.v1.StopIngest", "RemoveCustomKeyword"),
        ("stopgate.v1.MessageCompliance", "CheckMessage"),
        ("stopgate.v1.MessageCompliance", "CheckMessages"),
        ("stopgate.v1.MessageCompliance", "ListCountryPolicies"),
        ("stopgate.v1.Reporting", "GetCampaignReport"),
        ("stopgate.v1.Reporting", "ListCampaignReports"),
        ("stopgate.v1.Reporting", "ExportInteractions"),
        ("stopgate.v1.Reporting", "ExportQuarantine"),
        ("stopgate.v1.Reporting", "GetLicenceSummary"),
        ("stopgate.v1.Reporting", "WatchBlocklistChanges"),
    } == RETRIED


def test_the_service_config_retries_exactly_those_rpcs() -> None:
    (method_config,) = json.loads(RetryConfig().service_config())["methodConfig"]
    names = [(name["service"], name["method"]) for name in method_config["name"]]
    assert sorted(names) == sorted(RETRIED)


@pytest.mark.parametrize(
    "rpc", ["CheckBatch", "RecordSends", "QuarantineNumbers", "ReleaseNumbers"], ids=lambda rpc: rpc
)
def test_rpcs_that_record_keep_the_default_level(rpc: str) -> None:
    """CheckBatch records sends with a campaign_id, the others always record: a repeat is not harmless."""
    assert _level(BY_NAME["QuarantineCheck", rpc]) == MethodOptions.IDEMPOTENCY_UNKNOWN


def test_stream_events_is_idempotent_but_resumed_by_the_client() -> None:
    """The client reconnects and re-sends the unacked batches itself (stopgate.events), so the channel does
    not retry the stream as well."""
    assert _level(BY_NAME["StopIngest", "StreamEvents"]) == MethodOptions.IDEMPOTENT
    assert ("stopgate.v1.StopIngest", "StreamEvents") not in RETRIED


def test_the_rpcs_with_a_request_id_are_retried_by_the_client_only() -> None:
    """RecordSends and CheckBatch (with campaign_id) are idempotent only with a request_id (AIP-155), which
    the channel cannot see: it would retry the calls without one too and count their sends twice. So the
    protos keep them at the default level, and the client retries them itself, only with an id that stays
    the same on every attempt."""
    assert RETRIED_WITH_REQUEST_ID == {"stopgate.v1.QuarantineCheck": ("CheckBatch", "RecordSends")}
    with_id = {
        (service, method) for service, methods in RETRIED_WITH_REQUEST_ID.items() for method in methods
    }
    assert not with_id & RETRIED
