"""The client's surface: a method for every RPC, typed errors unpacked from `google.rpc.Status`, CSV cells."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import re
from datetime import UTC, datetime

import grpc
import pytest
import stopgate.v1
from contracts import METHODS
from google.protobuf.any_pb2 import Any as AnyMessage
from google.rpc import error_details_pb2, status_pb2
from stopgate import AsyncClient, Client, client, write_csv
from stopgate.errors import InternalError, InvalidArgumentError, StopgateError, UnavailableError, from_status
from stopgate.v1 import reporting_pb2
from stopgate_server import app
from stopgate_server.api import validation

RPCS = [(method.containing_service.name, method.name) for _, method in METHODS]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_rpc_of_every_service_is_known() -> None:
    assert len(RPCS) == 24


def test_every_service_of_the_protos_is_known() -> None:
    """METHODS comes from the server's service table: it holds every service of every stopgate.v1 file."""
    contracts = [
        importlib.import_module(f"stopgate.v1.{module.name}")
        for module in pkgutil.iter_modules(stopgate.v1.__path__)
        if module.name.endswith("_pb2")
    ]
    declared = {
        service.full_name
        for contract in contracts
        for service in contract.DESCRIPTOR.services_by_name.values()
    }
    assert declared
    assert {method.containing_service.full_name for _, method in METHODS} == declared


def test_the_client_takes_the_limits_the_server_sets() -> None:
    assert client.MAX_MESSAGE_BYTES == app.MAX_MESSAGE_BYTES
    assert client.CHECK_BATCH_LIMIT == validation.MAX_BATCH


@pytest.mark.parametrize(("service", "rpc"), RPCS)
def test_both_clients_have_a_method_for_the_rpc(service: str, rpc: str) -> None:
    name = snake(rpc)
    async_method = getattr(AsyncClient, name, None)
    assert async_method is not None, f"AsyncClient has no {name} for {service}.{rpc}"
    assert inspect.iscoroutinefunction(async_method) or inspect.isasyncgenfunction(async_method)
    parameters = inspect.signature(async_method).parameters
    assert parameters["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["metadata"].kind is inspect.Parameter.KEYWORD_ONLY
    sync_method = getattr(Client, name, None)
    assert sync_method is not None, f"Client has no {name} for {service}.{rpc}"
    assert sync_method.__doc__ == async_method.__doc__


def _status(code: grpc.StatusCode, message: str, *details: object) -> status_pb2.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        packed = AnyMessage()
        packed.Pack(detail)  # type: ignore[arg-type]
        status.details.append(packed)
    return status


def test_errors_unpack_field_violations_and_error_info() -> None:
    status = _status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid request",
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="licence_id", description="required")
            ]
        ),
        error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", domain="stopgate", metadata={"k": "v"}),
    )
    error = from_status(status)
    assert isinstance(error, InvalidArgumentError)
    assert [(v.field, v.description) for v in error.field_violations] == [("licence_id", "required")]
    assert (error.reason, dict(error.metadata)) == ("INVALID_ARGUMENT", {"k": "v"})
    assert str(error) == "INVALID_ARGUMENT: invalid request"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.OUT_OF_RANGE, InvalidArgumentError),
        (grpc.StatusCode.DATA_LOSS, InternalError),
        (grpc.StatusCode.UNKNOWN, InternalError),
    ],
)
def test_each_code_family_has_its_class(code: grpc.StatusCode, expected: type[StopgateError]) -> None:
    error = from_status(_status(code, "x"))
    assert type(error) is expected
    assert error.code is code


def test_csv_cells_are_readable() -> None:
    row = reporting_pb2.Interaction(
        phone_number="+33612345678", sender="36180", status=reporting_pb2.INTERACTION_STATUS_STOPPED
    )
    row.sent_at.FromDatetime(datetime(2026, 3, 1, 12, 30, tzinfo=UTC))
    out = io.StringIO()
    assert write_csv([row], out, reporting_pb2.Interaction.DESCRIPTOR) == 1
    assert out.getvalue().splitlines() == [
        "phone_number,sent_at,sender,status,stopped_at,stop_source,stop_event_id",
        "+33612345678,2026-03-01T12:30:00Z,36180,STOPPED,,,",
    ]
