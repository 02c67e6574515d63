"""The error table: every failure becomes one gRPC status with consistent code, message and details."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import grpc
import pytest
import stopgate_server
from google.rpc import code_pb2, error_details_pb2
from stopgate_server.errors import FieldViolation, InvalidArgument, ResourceExhausted, status_for
from stopgate_server.obs.logging import redact


def _info(status_details: list) -> error_details_pb2.ErrorInfo:  # type: ignore[type-arg]
    for detail in status_details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError("no ErrorInfo detail")


def test_invalid_argument_names_each_field() -> None:
    error = InvalidArgument(
        [FieldViolation("licence_id", "required"), FieldViolation("phone_numbers", "empty")]
    )
    status, unexpected = status_for(error)
    assert not unexpected
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "licence_id: required" in status.message
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("licence_id", "required"),
        ("phone_numbers", "empty"),
    ]
    assert _info(list(status.details)).reason == "INVALID_ARGUMENT"


def test_service_error_keeps_its_reason() -> None:
    status, _ = status_for(ResourceExhausted("batch over 10,000 numbers", reason="BATCH_TOO_LARGE"))
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert _info(list(status.details)).reason == "BATCH_TOO_LARGE"


@pytest.mark.parametrize(
    ("exception", "code"),
    [
        (
            asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
            grpc.StatusCode.DEADLINE_EXCEEDED,
        ),
        (asyncpg.SerializationError("could not serialize"), grpc.StatusCode.ABORTED),
        (
            asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
            grpc.StatusCode.UNAVAILABLE,
        ),
        (asyncpg.DeadlockDetectedError("deadlock"), grpc.StatusCode.ABORTED),
        (
            asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
            grpc.StatusCode.ALREADY_EXISTS,
        ),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), grpc.StatusCode.UNAVAILABLE),
        (asyncpg.CannotConnectNowError("the database system is starting up"), grpc.StatusCode.UNAVAILABLE),
        (asyncpg.AdminShutdownError("terminating connection"), grpc.StatusCode.UNAVAILABLE),
        (ConnectionRefusedError(111, "Connection refused"), grpc.StatusCode.UNAVAILABLE),
        (TimeoutError(), grpc.StatusCode.UNAVAILABLE),
        (NotImplementedError(), grpc.StatusCode.UNIMPLEMENTED),
        (KeyError("secret internal detail"), grpc.StatusCode.INTERNAL),
    ],
)
def test_exceptions_map_to_codes_without_leaking_text(exception: Exception, code: grpc.StatusCode) -> None:
    status, unexpected = status_for(exception)
    assert status.code == code.value[0]
    assert unexpected == (code == grpc.StatusCode.INTERNAL)
    assert str(exception) not in status.message or not str(exception)
    assert "statement" not in status.message
    assert "constraint" not in status.message


def test_internal_errors_carry_a_reference() -> None:
    status, unexpected = status_for(RuntimeError("boom"))
    assert unexpected
    reference = _info(list(status.details)).metadata["reference"]
    assert len(reference) == 12
    assert reference in status.message


def test_connection_errors_are_listed_in_one_place() -> None:
    """store.CONNECTION_ERRORS is the one list of connection failures (a second copy drifted once)."""
    server = Path(stopgate_server.__file__).parent
    listing = [
        path.relative_to(server).as_posix()
        for path in server.rglob("*.py")
        if "asyncpg.InterfaceError" in path.read_text() or "asyncpg.InternalClientError" in path.read_text()
    ]
    assert listing == ["store/__init__.py"]


def test_a_reference_always_holds_a_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    """All digits, the log would mask it as a phone number and the caller could not find it there."""
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID("12345678901234567890123456789012"))
    status, _ = status_for(KeyError("boom"))
    reference = _info(list(status.details)).metadata["reference"]
    assert reference == "e23456789012"
    assert redact(f"reference {reference}") == f"reference {reference}"
