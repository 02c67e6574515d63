"""The interceptor every RPC goes through: metrics, authorisation, and exceptions turned into statuses."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from stopgate_server.api.wire import EncodedResponse
from stopgate_server.auth import Authoriser
from stopgate_server.errors import DeadlineExceeded, FieldViolation, InvalidArgument, status_for
from stopgate_server.obs import metrics
from stopgate_server.obs.logging import bind_call
from stopgate_server.shutdown import InFlightCalls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deadlines:
    """How long unary-response calls may run: `default_s` when the caller set no deadline, at most `max_s`."""

    default_s: float
    max_s: float


Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]]


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every RPC (go-grpc-prometheus names), authorises it before the servicer runs, and
    maps exceptions with errors.status_for. Running calls are tracked in `in_flight` (what a shutdown cut)."""

    def __init__(
        self, authoriser: Authoriser, deadlines: Deadlines, in_flight: InFlightCalls | None = None
    ) -> None:
        self.authoriser = authoriser
        self.deadlines = deadlines
        self.in_flight = in_flight or InFlightCalls()

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        service, _, method = handler_call_details.method.lstrip("/").partition("/")
        labels = (
            metrics.grpc_type(handler.request_streaming, handler.response_streaming),
            service,
            method,
        )
        call = _Call(labels, handler_call_details.method, self.authoriser, self.deadlines, self.in_flight)
        return _wrap(handler, call)


class _Call:
    """What every call of one method goes through: metrics, authorisation, deadlines, status mapping."""

    def __init__(
        self,
        labels: tuple[str, str, str],
        method: str,
        authoriser: Authoriser,
        deadlines: Deadlines,
        in_flight: InFlightCalls,
    ) -> None:
        self.labels = labels
        self.method = method
        self.authoriser = authoriser
        self.deadlines = deadlines
        self.in_flight = in_flight

    @contextlib.asynccontextmanager
    async def bounded(self, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        """Run a unary-response call within its deadline, the server's default when it set none, and
        never longer than the server's maximum."""
        remaining: float | None = context.time_remaining()
        default, maximum = self.deadlines.default_s, self.deadlines.max_s
        if remaining is None:
            limit, origin = (
                default,
                f"the server's default deadline ({default} s, STOPGATE_DEFAULT_DEADLINE_S)",
            )
        elif remaining > maximum:
            limit, origin = maximum, f"the server's maximum deadline ({maximum} s, STOPGATE_MAX_DEADLINE_S)"
        else:
            limit, origin = remaining, "the call's deadline"
        timeout = asyncio.timeout(limit)
        try:
            async with timeout:
                yield
        except TimeoutError:
            if timeout.expired():
                raise DeadlineExceeded(f"the call ran past {origin}") from None
            raise

    async def authorise(self, context: grpc.aio.ServicerContext[Any, Any], request: Any) -> None:
        await self.authoriser.check(self.method, context.invocation_metadata(), request)

    @contextlib.asynccontextmanager
    async def observed(self, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        """Count and time the call, and abort it with the status its exception maps to."""
        metrics.STARTED.labels(*self.labels).inc()
        start = time.perf_counter()
        cancelled = False
        try:
            with self.in_flight.track(self.method):
                yield
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            status, unexpected = status_for(exc)
            if unexpected:
                log.error(
                    "unexpected error in %s", self.method, exc_info=exc, extra={"reply": status.message}
                )
            await context.abort_with_status(rpc_status.to_status(status))
        except BaseException:  # cancellation: the caller went away or the server is stopping
            cancelled = True
            raise
        finally:
            metrics.HANDLED.labels(*self.labels, _final_code(context, cancelled).name).inc()
            metrics.HANDLING_SECONDS.labels(*self.labels).observe(time.perf_counter() - start)

    async def count_received(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        received = metrics.MSG_RECEIVED.labels(*self.labels)
        async for request in requests:
            received.inc()
            yield accepted(request)


@dataclass(frozen=True)
class Undecodable:
    """A request message that did not parse (bad wire format, bad UTF-8 in a string field)."""

    type_name: str
    reason: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that returns `Undecodable` instead of raising: grpc would answer UNKNOWN with the
    parser's exception text; the servicer wrapper answers INVALID_ARGUMENT naming the message instead."""
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except DecodeError as exc:
            type_name = str(exc).partition("type '")[2].partition("'")[0] or "request"
            return Undecodable(type_name, str(exc).rpartition(": ")[2] or "malformed")

    return deserialize


def _encoded_as_returned(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """A serializer that sends an `EncodedResponse` (a response a servicer encoded itself: CheckBatch's, see
    api/wire.py) as it is, and serializes any other response, plain bytes included."""
    if serializer is None:
        return None

    def serialize(response: Any) -> bytes:
        return response.payload if isinstance(response, EncodedResponse) else serializer(response)

    return serialize


def accepted(request: Any) -> Any:
    """The request, unless it did not parse: then INVALID_ARGUMENT."""
    if isinstance(request, Undecodable):
        reason = f"not a valid {request.type_name} message ({request.reason})"
        raise InvalidArgument([FieldViolation("request", reason)])
    return request


def _final_code(context: grpc.aio.ServicerContext[Any, Any], cancelled: bool) -> grpc.StatusCode:
    if cancelled:
        return grpc.StatusCode.CANCELLED
    # code() is None until a handler sets one (abort, set_code), whatever the stubs say: a plain return is OK.
    code: grpc.StatusCode | None = context.code()
    return code or grpc.StatusCode.OK


def _wrap(handler: grpc.RpcMethodHandler[Any, Any], call: _Call) -> grpc.RpcMethodHandler[Any, Any]:
    if handler.response_streaming:
        behaviour: Any = handler.stream_stream if handler.request_streaming else handler.unary_stream
        factory = (
            grpc.stream_stream_rpc_method_handler
            if handler.request_streaming
            else grpc.unary_stream_rpc_method_handler
        )

        async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            bind_call(call.method, context.invocation_metadata())
            if handler.request_streaming:
                request = call.count_received(request)
            sent = metrics.MSG_SENT.labels(*call.labels)
            async with call.observed(context):
                await call.authorise(context, None if handler.request_streaming else accepted(request))
                result = behaviour(request, context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        sent.inc()
                        yield response
                else:  # a coroutine writing with context.write (the health Watch does)
                    await result

        return factory(
            streaming,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=_encoded_as_returned(handler.response_serializer),
        )

    behaviour = handler.stream_unary if handler.request_streaming else handler.unary_unary
    factory = (
        grpc.stream_unary_rpc_method_handler
        if handler.request_streaming
        else grpc.unary_unary_rpc_method_handler
    )

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        bind_call(call.method, context.invocation_metadata())
        if handler.request_streaming:
            request = call.count_received(request)
        async with call.observed(context), call.bounded(context):
            await call.authorise(context, None if handler.request_streaming else accepted(request))
            return await behaviour(request, context)

    return factory(
        unary,
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=_encoded_as_returned(handler.response_serializer),
    )
