"""The client's surface: a method for every RPC, the blocking twin's signatures as typed as the async
ones, the enums of the protos, times, typed errors unpacked from `google.rpc.Status`, CSV cells."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
import stopgate
import stopgate.v1
from contracts import METHODS
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from mypy import api as mypy_api
from stopgate import AsyncClient, Client, as_datetime, client, write_csv
from stopgate.enums import ProtoEnum
from stopgate.errors import InternalError, InvalidArgumentError, StopgateError, UnavailableError, from_status
from stopgate.retry import IDEMPOTENT_METHODS, RETRIED_WITH_REQUEST_ID, RetryThrottle
from stopgate.times import to_timestamp
from stopgate.v1 import quarantine_check_pb2, reporting_pb2
from stopgate_server import app
from stopgate_server.api import validation

RPCS = [(method.containing_service.name, method.name) for _, method in METHODS]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_rpc_of_every_service_is_known() -> None:
    assert len(RPCS) == 24


def _contracts() -> list[ModuleType]:
    return [
        importlib.import_module(f"stopgate.v1.{module.name}")
        for module in pkgutil.iter_modules(stopgate.v1.__path__)
        if module.name.endswith("_pb2")
    ]


def test_every_service_of_the_protos_is_known() -> None:
    """METHODS comes from the server's service table: it holds every service of every stopgate.v1 file."""
    contracts = _contracts()
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


# The blocking client


def _public_methods(cls: type) -> list[str]:
    return sorted(name for name, member in vars(cls).items() if callable(member) and not name.startswith("_"))


def test_the_blocking_client_has_every_method_of_the_async_one() -> None:
    assert _public_methods(Client) == _public_methods(AsyncClient)


@pytest.mark.parametrize("name", [*(n for n in _public_methods(AsyncClient) if n != "close"), "__init__"])
def test_a_blocking_method_has_the_signature_and_docstring_of_its_async_twin(name: str) -> None:
    """Not `*args, **kwargs`: `inspect` (so `help()` and notebooks) sees every argument, typed; the
    returns differ only in being blocking (an iterator where the async method is an async iterator)."""
    blocking, asynchronous = getattr(Client, name), getattr(AsyncClient, name)
    assert blocking.__doc__ == asynchronous.__doc__
    signature, async_signature = inspect.signature(blocking), inspect.signature(asynchronous)
    assert signature.parameters == async_signature.parameters
    assert "kwargs" not in signature.parameters
    expected = str(async_signature.return_annotation).replace("AsyncIterator[", "Iterator[")
    if name == "__init__":
        expected = "None"
    assert signature.return_annotation == expected


def test_both_clients_take_interceptors() -> None:
    for cls in (AsyncClient, Client):
        parameter = inspect.signature(cls).parameters["interceptors"]
        assert (parameter.kind, parameter.default) == (inspect.Parameter.KEYWORD_ONLY, ())


def test_a_misspelt_keyword_fails_in_the_callers_thread_and_starts_nothing() -> None:
    threads = threading.active_count()
    with pytest.raises(TypeError, match="tokn"):
        Client("127.0.0.1:1", tokn="t")  # type: ignore[call-arg]
    assert threading.active_count() == threads  # no event loop thread left behind


def test_a_client_that_cannot_be_made_stops_its_loop_thread() -> None:
    threads = threading.active_count()
    with pytest.raises(TypeError):
        Client("127.0.0.1:1", keepalive_s=None)  # type: ignore[arg-type]
    assert threading.active_count() == threads


MYPY_SNIPPET = """
from stopgate import Client, MessageCategory, NO_RETRY

client = Client("127.0.0.1:50051", token="t", default_timeout=2.0)
client.check_batch("acme", ["+33612345678"], sender="36180", category=MessageCategory.MARKETING, timeout=1)
status: str = client.get_number_status("acme", "+33612345678", retry=NO_RETRY).e164
Client("127.0.0.1:50051", tokn="t")  # line 7
client.check_batch("acme", ["+33612345678"], sender="36180", category=MessageCategory.MARKETING, timout=1)
client.get_number_status("acme", 33612345678)  # line 9
wrong: int = client.classify_text("STOP")  # line 10
client.quarantine_numbers("acme", ["+33612345678"], actor="a", reason="r", retry=NO_RETRY)  # line 11
"""


def test_mypy_sees_the_blocking_clients_types(tmp_path: Path) -> None:
    """`Client` is as typed as `AsyncClient` for mypy --strict: the good calls pass, each bad one fails."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(MYPY_SNIPPET)
    config = tmp_path / "mypy.ini"
    config.write_text(
        f"[mypy]\nstrict = True\nmypy_path = {Path(stopgate.__file__).parent.parent}\n"
        "follow_imports = silent\n[mypy-google.rpc.*]\nignore_missing_imports = True\n"
    )
    out, err, _ = mypy_api.run(
        ["--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), str(snippet)]
    )
    errors = sorted({int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line})
    assert errors == [7, 8, 9, 10, 11], out + err


# Retries


def _rpc_of(method: str) -> str:
    return "".join(part.title() for part in method.split("_"))


def test_exactly_the_methods_of_idempotent_rpcs_take_retry() -> None:
    """`retry=` is offered where a retry is safe, as the protos declare it (`stopgate.retry`), and nowhere
    else: QuarantineNumbers and ReleaseNumbers are audited each time they run."""
    retried = {
        m for methods in (*IDEMPOTENT_METHODS.values(), *RETRIED_WITH_REQUEST_ID.values()) for m in methods
    }
    retried |= {"StreamEvents", "IterCampaignReports"}  # a stream that reconnects; pages of a retried RPC
    for name in _public_methods(AsyncClient):
        if name == "close":
            continue
        takes_retry = "retry" in inspect.signature(getattr(AsyncClient, name)).parameters
        assert takes_retry == (_rpc_of(name) in retried), name
    assert "QuarantineNumbers" not in retried


def test_the_retry_throttle_stops_retries_after_a_run_of_failures_and_recovers() -> None:
    throttle = RetryThrottle()
    for _ in range(4):
        throttle.failed()
    assert throttle.allows_retry()  # 6 tokens of 10 left
    throttle.failed()
    assert not throttle.allows_retry()  # half or fewer
    for _ in range(10):
        throttle.succeeded()
    assert throttle.allows_retry()


# Enums


def _proto_enums() -> list[Any]:
    return [enum for contract in _contracts() for enum in contract.DESCRIPTOR.enum_types_by_name.values()]


def test_every_enum_of_the_protos_is_exported_with_its_values_by_friendly_name() -> None:
    declared = _proto_enums()
    assert len(declared) == 18
    assert {cls.__name__ for cls in ProtoEnum.__subclasses__()} == {enum.name for enum in declared}
    for enum in declared:
        cls = getattr(stopgate, enum.name)
        assert enum.name in stopgate.__all__
        assert issubclass(cls, ProtoEnum)
        assert cls.DESCRIPTOR is enum
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
        assert [(member.name, member.value) for member in cls] == [
            (value.name.removeprefix(prefix), value.number) for value in enum.values
        ]
        for value in enum.values:  # the generated names, still there, as the generated ints
            assert getattr(cls, value.name) == value.number
            assert type(getattr(cls, value.name)) is int
            assert cls.Name(value.number) == value.name
            assert cls.Value(value.name) is cls(value.number)


def test_an_enum_answers_like_the_generated_wrapper() -> None:
    wrapper = quarantine_check_pb2.CheckReason
    assert stopgate.CheckReason.keys() == wrapper.keys()
    assert stopgate.CheckReason.values() == wrapper.values()
    assert stopgate.CheckReason.items() == wrapper.items()
    with pytest.raises(ValueError, match="99"):
        stopgate.CheckReason.Name(99)
    with pytest.raises(ValueError, match="NOPE"):
        stopgate.CheckReason.Value("NOPE")


def test_a_result_reads_and_compares_by_friendly_name() -> None:
    result = quarantine_check_pb2.CheckResult(
        verdict=stopgate.Verdict.VERDICT_BLOCK, reason=stopgate.CheckReason.CHECK_REASON_QUARANTINED
    )
    assert stopgate.Verdict(result.verdict) is stopgate.Verdict.BLOCK
    assert stopgate.CheckReason(result.reason).name == "QUARANTINED"
    assert type(result.verdict) is int  # messages hold the generated ints, as before
    # Untyped code may compare and build with members directly; mypy --strict wants the forms above.
    assert result.verdict == stopgate.Verdict.BLOCK  # type: ignore[comparison-overlap]
    built = quarantine_check_pb2.CheckResult(verdict=stopgate.Verdict.BLOCK)  # type: ignore[arg-type]
    assert built == quarantine_check_pb2.CheckResult(verdict=quarantine_check_pb2.VERDICT_BLOCK)


# Times


def test_a_response_time_reads_as_an_aware_utc_datetime() -> None:
    timestamp = Timestamp(seconds=1_767_261_600, nanos=123_456_000)
    moment = as_datetime(timestamp)
    assert moment.tzinfo is UTC
    assert moment == datetime(2026, 1, 1, 10, 0, 0, 123_456, tzinfo=UTC)
    assert moment == datetime(2026, 1, 1, 12, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2)))


def test_a_given_time_must_be_aware() -> None:
    paris = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=1)))
    timestamp = to_timestamp(paris, "sent_at")
    assert timestamp is not None
    assert as_datetime(timestamp) == paris
    assert to_timestamp(None, "sent_at") is None
    with pytest.raises(ValueError, match="sent_at must be timezone-aware"):
        to_timestamp(datetime(2026, 1, 1, 12), "sent_at")
