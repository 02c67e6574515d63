"""The one place where failures become gRPC statuses.

Servicers raise the exceptions below (or let database errors through); the call interceptor turns any
exception into a `google.rpc.Status` with `status_for`, built once so that code, message and details agree.
Database errors never reach the caller as text: SQL and driver messages stay in the server log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from stopgate_server.store import CONNECTION_ERRORS

DOMAIN = "stopgate"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path ("phone_numbers[3]") and what is wrong with it."""

    field: str
    description: str


class ServiceError(Exception):
    """An error the caller should see as it is: a status code, a message and a reason code."""

    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def details(self) -> list[Message]:
        return [error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)]


# Budgets that keep an error's trailers under gRPC clients' default metadata limits (a soft limit of 8 KiB,
# above which C-core clients start refusing at random, and a hard one of 16 KiB): the details are sent
# base64-encoded (x 4/3), the message percent-encoded (x 3 for non-ASCII bytes at worst).
MAX_DETAILS_BYTES = 3 * 1024
MAX_MESSAGE_BYTES = 768
MAX_VIOLATIONS_IN_MESSAGE = 10
MAX_DESCRIPTION_CHARS = 200  # a description may quote the input; the field path says where it is


class InvalidArgument(ServiceError):
    """The request is malformed; the violations name each bad field.

    The status travels in the trailers, which gRPC clients refuse beyond their metadata limits (the caller
    would get RESOURCE_EXHAUSTED instead of the error): a request with thousands of bad numbers lists the
    first violations that fit `MAX_DETAILS_BYTES`, and says how many more there are, in the message and in
    ErrorInfo's metadata ("violations": the total, "violations_listed": how many BadRequest holds).
    """

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations = list(violations)
        self.listed = _fitting(self.violations)
        named = self.violations[:MAX_VIOLATIONS_IN_MESSAGE]
        summary = _clipped("; ".join(f"{v.field}: {v.description}" for v in named), MAX_MESSAGE_BYTES - 64)
        if len(self.violations) > len(named):
            summary += f"; and {len(self.violations) - len(named):,} more"
        super().__init__(f"invalid request: {summary}")

    def details(self) -> list[Message]:
        bad_request = error_details_pb2.BadRequest(field_violations=[_violation(v) for v in self.listed])
        info = error_details_pb2.ErrorInfo(
            reason=self.reason,
            domain=DOMAIN,
            metadata={"violations": str(len(self.violations)), "violations_listed": str(len(self.listed))},
        )
        return [bad_request, info]


def _violation(violation: FieldViolation) -> error_details_pb2.BadRequest.FieldViolation:
    return error_details_pb2.BadRequest.FieldViolation(
        field=violation.field[:MAX_DESCRIPTION_CHARS],
        description=_clipped(violation.description, MAX_DESCRIPTION_CHARS),
    )


def _fitting(violations: list[FieldViolation]) -> list[FieldViolation]:
    """The leading violations whose BadRequest entries fit MAX_DETAILS_BYTES (at least the first)."""
    size = 0
    for count, violation in enumerate(violations):
        size += _violation(violation).ByteSize() + 4  # field tag and length of the repeated entry
        if size > MAX_DETAILS_BYTES and count > 0:
            return violations[:count]
    return violations


def _clipped(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (whole characters), marked with "…" when cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "…"


class RequestIdReused(ServiceError):
    """A request id (AIP-155) was first used for a different request of the licence. ALREADY_EXISTS, as
    for a key that exists (HTTP 409, what idempotency keys reused with another payload commonly get): the
    request itself is valid, it is the id that is taken, and retrying cannot succeed; a new id is needed.
    Not INVALID_ARGUMENT, which means a request wrong whatever the server's state."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "REQUEST_ID_REUSED"

    def __init__(self, field: str, method: str) -> None:
        super().__init__(
            f"{field} was already used for a different {method} request of this licence; choose a new"
            f" {field} for a new request (a retry must repeat the first request exactly)"
        )
        self.field = field

    def details(self) -> list[Message]:
        return [
            error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata={"field": self.field})
        ]


class NotFound(ServiceError):
    """What the request names does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class Unauthenticated(ServiceError):
    """No token, or a token the server does not know (or that was revoked)."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    """The token is known but its roles or licences do not allow this call."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class FailedPrecondition(ServiceError):
    """The request is well formed but cannot be served in the system's state; the reason says which state
    (CURSOR_EXPIRED: the change feed no longer holds what a cursor points at)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class DeadlineExceeded(ServiceError):
    """The call ran out of time (the caller's deadline or the server's limit); the message says which."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Unavailable(ServiceError):
    """The server cannot go on with this call now; the reason says why and the message what the caller
    should do (retry; a stream: open a new one)."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class ResourceExhausted(ServiceError):
    """A limit was reached; the message names it."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "LIMIT_EXCEEDED"


def _classify(exc: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """Map an unexpected exception to (code, reason, public message)."""
    if isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED", "this method is not implemented yet"
    if isinstance(exc, asyncpg.QueryCanceledError):  # 57014: statement_timeout or cancelled
        return grpc.StatusCode.DEADLINE_EXCEEDED, "STATEMENT_TIMEOUT", "the database did not answer in time"
    if isinstance(exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):  # 40001, 40P01
        return grpc.StatusCode.ABORTED, "CONFLICT", "a concurrent change conflicted; retry the call"
    if isinstance(exc, asyncpg.UniqueViolationError):  # 23505
        return grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS", "it exists already"
    if isinstance(exc, CONNECTION_ERRORS):
        return grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE", "the database is unavailable; retry later"
    return grpc.StatusCode.INTERNAL, "INTERNAL", "internal error"


def status_for(exc: BaseException) -> tuple[status_pb2.Status, bool]:
    """The status to send for an exception raised by a servicer, and whether it is unexpected.

    Unexpected errors (INTERNAL) carry a reference that appears in the server log next to the traceback.
    """
    if isinstance(exc, ServiceError):
        return _status(exc.code, exc.message, exc.details()), False
    code, reason, message = _classify(exc)
    metadata: dict[str, str] = {}
    unexpected = code == grpc.StatusCode.INTERNAL
    if unexpected:
        metadata["reference"] = _reference()
        message = f"{message} (reference {metadata['reference']})"
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    return _status(code, message, [info]), unexpected


def _reference() -> str:
    """12 hexadecimal characters, at least one a letter: logs mask runs of digits as phone numbers, and a
    reference must stay whole to be found there."""
    reference = uuid.uuid4().hex[:12]
    return reference if not reference.isdigit() else "e" + reference[1:]


def _status(code: grpc.StatusCode, message: str, details: Iterable[Message]) -> status_pb2.Status:
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(
        code=_CODE_NUMBERS[code], message=_clipped(message, MAX_MESSAGE_BYTES), details=packed
    )


_CODE_NUMBERS = {code: code_pb2.Code.Value(code.name) for code in grpc.StatusCode}
