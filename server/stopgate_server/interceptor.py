"""The interceptor every RPC goes through: metrics, limits, authorisation, idle streams ended, and exceptions
turned into statuses."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from stopgate_server.api.wire import EncodedResponse
from stopgate_server.auth import PROTECTED_PREFIX, Authoriser
from stopgate_server.errors import DeadlineExceeded, FieldViolation, InvalidArgument, status_for
from stopgate_server.grpc_handlers import behaviour_and_factory, final_code
from stopgate_server.limits import Caps, IdleTimeout, Limits
from stopgate_server.obs import metrics
from stopgate_server.obs.logging import bind_call
from stopgate_server.shutdown import InFlightCalls, StreamsEnding
from stopgate_server.store.tokens import TokenRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deadlines:
    """How long unary-response calls may run: `default_s` when the caller set no deadline, at most `max_s`."""

    default_s: float
    max_s: float


# Streams that wait for the server by design, exempt from the idle timeout: a health Watch sends only when the
# status changes. The per-connection cap still bounds how many a client holds.
IDLE_BY_DESIGN = frozenset({"/grpc.health.v1.Health/Watch"})

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]]


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every RPC (go-grpc-prometheus names), holds it within the caps of `limits`,
    authorises it before the servicer runs, ends idle streams, and maps exceptions with errors.status_for.
    Running calls are tracked in `in_flight` (what a shutdown cut); streams that never end by themselves (the
    health Watch) are ended when `streams_ending` begins."""

    def __init__(
        self,
        authoriser: Authoriser,
        deadlines: Deadlines,
        limits: Limits,
        in_flight: InFlightCalls | None = None,
        streams_ending: StreamsEnding | None = None,
    ) -> None:
        self.authoriser = authoriser
        self.deadlines = deadlines
        self.limits = limits
        self.caps = Caps(limits)  # shared by every call of the process
        self.in_flight = in_flight or InFlightCalls()
        self.streams_ending = streams_ending or StreamsEnding()

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
        full_name = handler_call_details.method
        idle_s = None if full_name in IDLE_BY_DESIGN else self.limits.stream_idle_timeout_s
        streaming = handler.request_streaming or handler.response_streaming
        return _wrap(handler, _Call(labels, full_name, streaming, self, IdleTimeout(idle_s)))


class _Call:
    """What every call of one method goes through: metrics, limits, authorisation, deadlines, idle streams,
    status mapping."""

    def __init__(
        self,
        labels: tuple[str, str, str],
        method: str,
        streaming: bool,
        interceptor: CallInterceptor,
        idle: IdleTimeout,
    ) -> None:
        self.labels = labels
        self.method = method
        self.streaming = streaming
        self.counted = method.startswith(PROTECTED_PREFIX)  # health and reflection take no call slot
        self.authoriser = interceptor.authoriser
        self.deadlines = interceptor.deadlines
        self.caps = interceptor.caps
        self.in_flight = interceptor.in_flight
        self.streams_ending = interceptor.streams_ending
        self.idle = idle

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

    async def authorise(
        self, context: grpc.aio.ServicerContext[Any, Any], request: Any
    ) -> TokenRecord | None:
        return await self.authoriser.check(self.method, context.invocation_metadata(), request)

    @contextlib.contextmanager
    def admitted(self, context: grpc.aio.ServicerContext[Any, Any]) -> Iterator[None]:
        """Until the call ends, hold a slot among the stopgate calls running and, for a stream, one of its
        connection's streams (context.peer() names the HTTP/2 connection: the client's address and port);
        RESOURCE_EXHAUSTED when either is full. Taken before authorisation: callers without a token are
        bounded too."""
        with contextlib.ExitStack() as held:
            if self.counted:
                held.enter_context(self.caps.calls.held(Caps.SERVER, "the server"))
            if self.streaming:
                held.enter_context(self.caps.streams_per_connection.held(context.peer(), "this connection"))
            yield

    @contextlib.contextmanager
    def opened(self, token: TokenRecord | None) -> Iterator[None]:
        """Until a stream ends, hold one of its token's streams (RESOURCE_EXHAUSTED when they are all
        taken) and count it open. Unary calls hold nothing here."""
        if not self.streaming:
            yield
            return
        with contextlib.ExitStack() as held:
            if token is not None:
                held.enter_context(self.caps.streams_per_token.held(token.token_id, f"token {token.name!r}"))
            held.enter_context(metrics.OPEN_STREAMS.labels(*self.labels).track_inprogress())
            yield

    async def respond(self, result: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Write each response the servicer yields, ending the stream when the client reads none for the
        idle timeout; the servicer's generator is closed at once however the stream ends, so that it lets
        go of what it holds (a database connection). A servicer that writes with context.write itself (the
        health Watch, which never ends by itself) runs until it ends or the server's streams must end."""
        if not inspect.isasyncgen(result):
            await self.streams_ending.unless_ending(result)
            return
        sent = metrics.MSG_SENT.labels(*self.labels)
        async with contextlib.aclosing(result) as responses:
            async for response in responses:
                await self.idle.send(context.write(response))
                sent.inc()

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
            metrics.HANDLED.labels(*self.labels, metrics.grpc_code(final_code(context, cancelled))).inc()
            metrics.HANDLING_SECONDS.labels(*self.labels).observe(time.perf_counter() - start)

    async def received(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The request messages, counted; the stream is ended when the next one does not come within the
        idle timeout."""
        counter = metrics.MSG_RECEIVED.labels(*self.labels)
        iterator = aiter(requests)
        while True:
            try:
                request = await self.idle.receive(anext(iterator))
            except StopAsyncIteration:
                return
            counter.inc()
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


def _wrap(handler: grpc.RpcMethodHandler[Any, Any], call: _Call) -> grpc.RpcMethodHandler[Any, Any]:
    behaviour, factory = behaviour_and_factory(handler)
    if handler.response_streaming:
        # A coroutine writing with context.write, not a generator grpc would drive: the writes are bounded
        # by the idle timeout, and the counts of the caps are released when the call ends, cancelled too.
        async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            bind_call(call.method, context.invocation_metadata())
            if handler.request_streaming:
                request = call.received(request)
            async with call.observed(context):
                with call.admitted(context):
                    token = await call.authorise(
                        context, None if handler.request_streaming else accepted(request)
                    )
                    with call.opened(token):
                        await call.respond(behaviour(request, context), context)

        return factory(
            streaming,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=_encoded_as_returned(handler.response_serializer),
        )

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        bind_call(call.method, context.invocation_metadata())
        if handler.request_streaming:
            request = call.received(request)
        async with call.observed(context), call.bounded(context):
            with call.admitted(context):
                token = await call.authorise(
                    context, None if handler.request_streaming else accepted(request)
                )
                with call.opened(token):
                    return await behaviour(request, context)

    return factory(
        unary,
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=_encoded_as_returned(handler.response_serializer),
    )
