"""Exceptions of the stopgate client: one class per gRPC status code family, with the `google.rpc` details
the server attached (field violations of a BadRequest, the ErrorInfo reason) already unpacked."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
    error_details_pb2.RequestInfo,
)


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: `field` is its path (`phone_numbers[3]`), `description` says why."""

    field: str
    description: str


class StopgateError(Exception):
    """A call that did not succeed. `code` is the gRPC status code; `reason` the stable machine-readable
    reason of the server's ErrorInfo (empty when it sent none); `field_violations` the bad fields of an
    INVALID_ARGUMENT; `details` every `google.rpc` detail message, unpacked."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        details: tuple[Message, ...] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}" if message else code.name)
        self.code = code
        self.message = message
        self.details = details
        self.field_violations = tuple(
            FieldViolation(violation.field, violation.description)
            for detail in details
            if isinstance(detail, error_details_pb2.BadRequest)
            for violation in detail.field_violations
        )
        info = next((d for d in details if isinstance(d, error_details_pb2.ErrorInfo)), None)
        self.reason = info.reason if info else ""
        self.metadata: MappingProxyType[str, str] = MappingProxyType(dict(info.metadata) if info else {})


class CancelledError(StopgateError):
    """CANCELLED: the call was cancelled, usually by the caller."""


class InvalidArgumentError(StopgateError):
    """INVALID_ARGUMENT or OUT_OF_RANGE: the request is wrong; `field_violations` names the fields."""


class FailedPreconditionError(StopgateError):
    """FAILED_PRECONDITION: the request is valid but the system is not in a state to run it."""


class NotFoundError(StopgateError):
    """NOT_FOUND: what the request names does not exist (a campaign without sends, for instance)."""


class AlreadyExistsError(StopgateError):
    """ALREADY_EXISTS: what the request would create exists already."""


class UnauthenticatedError(StopgateError):
    """UNAUTHENTICATED: no credentials, or credentials the server does not know."""


class PermissionDeniedError(StopgateError):
    """PERMISSION_DENIED: the credentials do not allow this call or this licence."""


class ResourceExhaustedError(StopgateError):
    """RESOURCE_EXHAUSTED: over a limit (message size, concurrent streams); the message names it."""


class DeadlineExceededError(StopgateError):
    """DEADLINE_EXCEEDED: the call did not finish within its deadline; it may or may not have taken effect."""


class UnavailableError(StopgateError):
    """UNAVAILABLE: the server or its database cannot answer now. Never a verdict: retry or fail closed."""


class ReconnectDeadlineError(UnavailableError):
    """`stream_events` gave up: its connection failed and no ack came within `reconnect_deadline_s`.

    The first `acked_events` events read from the source were acked; the `unacked_events` read after them
    were not, and may or may not be stored: send them again later (ingest is idempotent on event_id). The
    last failure is the exception's `__cause__`.
    """

    def __init__(self, message: str, *, acked_events: int, unacked_events: int) -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, message)
        self.acked_events = acked_events
        self.unacked_events = unacked_events


class AbortedError(StopgateError):
    """ABORTED: a concurrency conflict; the call may be retried."""


class UnimplementedError(StopgateError):
    """UNIMPLEMENTED: the server does not know this method (an older server version)."""


class InternalError(StopgateError):
    """INTERNAL, UNKNOWN or DATA_LOSS: a server fault; the message holds a reference for its logs."""


_CLASS_BY_CODE: dict[grpc.StatusCode, type[StopgateError]] = {
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
}


def error_for(code: grpc.StatusCode, message: str, details: tuple[Message, ...] = ()) -> StopgateError:
    """The exception of the class that matches `code`."""
    return _CLASS_BY_CODE.get(code, StopgateError)(code, message, details=details)


def from_rpc_error(error: grpc.RpcError) -> StopgateError:
    """The typed exception for a failed call, with the `google.rpc.Status` details of its trailers."""
    code: grpc.StatusCode = error.code()
    message: str = error.details() or ""
    trailers = error.trailing_metadata() or ()
    return error_for(code, message, _unpack_details(trailers))


def from_status(status: status_pb2.Status) -> StopgateError:
    """The typed exception for a `google.rpc.Status` carried in a message rather than ending a call: the
    `error` of an ingest ack whose outcome is REJECTED (the other events of its batch were applied). It is
    the exception a failed call with that status would raise, details unpacked, to log or to raise:

        if stopgate.IngestOutcome(ack.outcome) is stopgate.IngestOutcome.REJECTED:
            error = from_status(ack.error)  # InvalidArgumentError; error.field_violations names the field
    """
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), grpc.StatusCode.UNKNOWN)
    return error_for(code, status.message, _unpack(status))


def _unpack_details(trailers: Any) -> tuple[Message, ...]:
    for key, value in trailers:
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return _unpack(status_pb2.Status.FromString(value))
            except DecodeError:
                return ()
    return ()


def _unpack(status: status_pb2.Status) -> tuple[Message, ...]:
    unpacked: list[Message] = []
    for detail in status.details:
        for detail_type in _DETAIL_TYPES:
            if detail.Is(detail_type.DESCRIPTOR):
                message = detail_type()
                detail.Unpack(message)
                unpacked.append(message)
                break
    return tuple(unpacked)
