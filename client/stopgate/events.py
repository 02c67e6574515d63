"""The client side of StopIngest.StreamEvents: events into batches, a bounded window of unacked batches,
and reconnection that re-sends what was not acked (safe: ingest is idempotent on event_id), for as long as
the caller's reconnect deadline allows."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import grpc

from stopgate.errors import (
    InternalError,
    ReconnectDeadlineError,
    StopgateError,
    UnavailableError,
    from_rpc_error,
)
from stopgate.retry import RetryConfig
from stopgate.v1 import stop_ingest_pb2

MAX_BATCH_SIZE = 1_000  # events per request, the server's limit

Call = grpc.aio.StreamStreamCall[stop_ingest_pb2.StreamEventsRequest, stop_ingest_pb2.StreamEventsResponse]
Events = Iterable[stop_ingest_pb2.InboundEvent] | AsyncIterable[stop_ingest_pb2.InboundEvent]
_END = object()


@dataclass
class _Outage:
    """From a failure of the stream while batches waited for their acks, until the next ack."""

    give_up_at: float  # event loop time
    backoffs: Iterator[float]
    failure: StopgateError  # the latest


class EventStream:
    """One run of `stream_events`. A producer task cuts `events` into requests; for each connection a
    writer task sends them while the caller's loop reads the acks. `max_batches_in_flight` requests at
    most are sent and unacked, so a slow server holds back the reading of `events`.

    When a connection fails (UNAVAILABLE, whatever the reason, or a lost connection) with requests unacked,
    the stream reconnects after a jittered backoff and re-sends them, in order, then goes on; it gives up
    with `ReconnectDeadlineError` once `reconnect_deadline_s` have passed since that failure without an ack.
    A stream that ends with nothing unacked (closed by the server as idle, or between two batches) is
    reopened only when the next request is ready. A `retry` of one attempt (`NO_RETRY`) never reconnects."""

    def __init__(
        self,
        connect: Callable[[], Call],
        retry: RetryConfig,
        batch_size: int,
        max_batches_in_flight: int,
        linger_s: float,
        reconnect_deadline_s: float,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
        if max_batches_in_flight < 1:
            raise ValueError("max_batches_in_flight must be at least 1")
        if linger_s < 0:
            raise ValueError("linger_s must not be negative")
        if reconnect_deadline_s < 0:
            raise ValueError("reconnect_deadline_s must not be negative")
        self._connect = connect
        self._retry = retry
        self._batch_size = batch_size
        self._linger_s = linger_s
        # A retry of one attempt (NO_RETRY) reconnects no more than a deadline of 0.
        self._reconnect_deadline_s = reconnect_deadline_s if retry.retries else 0.0
        self._window = asyncio.Semaphore(max_batches_in_flight)
        self._requests: asyncio.Queue[stop_ingest_pb2.StreamEventsRequest | None] = asyncio.Queue(maxsize=1)
        self._unacked: deque[stop_ingest_pb2.StreamEventsRequest] = deque()
        self._batch: list[stop_ingest_pb2.InboundEvent] = []
        self._exhausted = False  # every request of `events` has been taken by a writer
        self._source_error: Exception | None = None
        self._send_failed = False  # a write on the current connection failed
        self._outage: _Outage | None = None
        self._events_read = 0  # from `events`
        self._events_acked = 0

    async def run(self, events: Events) -> AsyncIterator[stop_ingest_pb2.EventAck]:
        producer = asyncio.create_task(self._produce(events))
        try:
            while True:
                call = self._connect()
                self._send_failed = False
                writer = asyncio.create_task(self._write(call))
                failure: StopgateError | None = None
                try:
                    async for ack in self._read(call):
                        yield ack
                except StopgateError as error:
                    failure = error
                except TimeoutError:  # no ack by the deadline of the outage (see `_read`)
                    if self._outage is None:
                        raise
                    raise self._gave_up(self._outage) from self._outage.failure
                finally:
                    writer.cancel()
                    call.cancel()
                    await asyncio.gather(writer, return_exceptions=True)
                if failure is None:
                    break
                failure = self._explained(failure)
                if not self._retry.is_retryable(failure.code):
                    raise failure
                if not self._unacked:
                    # Nothing to re-send: reopen when there is a request to send, not before, so that a
                    # quiet source does not keep reopening streams that the server closes as idle.
                    if await self._take_next() is None:
                        break
                    continue
                await self._back_off(failure)
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        if self._source_error is not None:
            raise self._source_error

    async def _back_off(self, failure: StopgateError) -> None:
        """Wait before reconnecting after `failure`, or give up if the outage has lasted too long."""
        now = asyncio.get_running_loop().time()
        if self._outage is None:
            give_up_at = now + self._reconnect_deadline_s
            self._outage = _Outage(give_up_at, self._retry.reconnect_backoffs(), failure)
        self._outage.failure = failure
        remaining = self._outage.give_up_at - now
        if remaining <= 0:
            raise self._gave_up(self._outage) from failure
        await asyncio.sleep(min(next(self._outage.backoffs), remaining))

    def _gave_up(self, outage: _Outage) -> ReconnectDeadlineError:
        unacked = self._events_read - self._events_acked
        return ReconnectDeadlineError(
            f"stream_events gave up: no ack within reconnect_deadline_s={self._reconnect_deadline_s:g} s of "
            f"a failure; the {unacked:,} events read from the source after the first {self._events_acked:,} "
            f"are not acked (last failure: {outage.failure})",
            acked_events=self._events_acked,
            unacked_events=unacked,
        )

    def _explained(self, failure: StopgateError) -> StopgateError:
        """grpc.aio reports a send on a stream that has just ended as INTERNAL ("Internal error from
        Core"), whatever the server said (grpc/grpc#36066): taken for a broken connection, to reconnect like
        UNAVAILABLE. A status of the server that is not UNAVAILABLE then shows on the next attempt, unless
        that one loses the same race."""
        if failure.code is grpc.StatusCode.INTERNAL and self._send_failed:
            message = f"the stream broke while sending ({failure})"
            return UnavailableError(grpc.StatusCode.UNAVAILABLE, message)
        return failure

    async def _read(self, call: Call) -> AsyncIterator[stop_ingest_pb2.EventAck]:
        """The acks of `call`, in order. During an outage each read is bounded by its deadline (raising
        TimeoutError): a connection that hangs must not hold the stream past it."""
        while True:
            try:
                async with asyncio.timeout_at(self._outage.give_up_at if self._outage else None):
                    response = await call.read()
            except grpc.aio.AioRpcError as error:
                raise from_rpc_error(error) from error
            if not isinstance(response, stop_ingest_pb2.StreamEventsResponse):  # grpc.aio.EOF
                if self._unacked or not self._exhausted:
                    raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "the server ended the stream early")
                return
            if not self._unacked or len(response.acks) != len(self._unacked[0].events):
                raise InternalError(grpc.StatusCode.INTERNAL, "acks do not match the batch sent")
            self._unacked.popleft()
            self._window.release()
            self._events_acked += len(response.acks)
            self._outage = None  # progress: a later failure starts a new outage
            for ack in response.acks:
                yield ack

    async def _write(self, call: Call) -> None:
        """Re-send the unacked requests of a broken connection, then new ones; half-close at the end.
        A failed write ends the writer: the reader sees the failure on the call."""
        try:
            for unacked in list(self._unacked):
                await self._send(call, unacked)
            while (request := await self._take_next()) is not None:
                await self._send(call, request)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return

    async def _take_next(self) -> stop_ingest_pb2.StreamEventsRequest | None:
        """The next request, once the window has room for it, counted as unacked; None after the last."""
        if self._exhausted:
            return None
        await self._window.acquire()
        try:
            request = await self._requests.get()
        except BaseException:
            self._window.release()
            raise
        if request is None:
            self._exhausted = True
            self._window.release()
            return None
        self._unacked.append(request)
        return request

    async def _send(self, call: Call, request: stop_ingest_pb2.StreamEventsRequest) -> None:
        try:
            await call.write(request)
        except BaseException:  # failed, or cancelled because the reader saw the call end meanwhile
            self._send_failed = True
            raise

    async def _produce(self, events: Events) -> None:
        """Cut `events` into requests. A failing `events` ends the stream after what it gave is acked,
        then `run` raises its error."""
        try:
            if isinstance(events, AsyncIterable):
                await self._produce_lingering(aiter(events))
            else:
                for event in events:
                    await self._add(event)
        except Exception as error:  # the caller's iterator failed; raised by `run` at the end
            self._source_error = error
        await self._flush()
        await self._requests.put(None)

    async def _produce_lingering(self, events: AsyncIterator[stop_ingest_pb2.InboundEvent]) -> None:
        """Like the loop over a plain iterable, but a partial batch leaves once no event came for
        `linger_s`: a slow source must not hold events back unacked."""
        upcoming: asyncio.Future[object] | None = None
        try:
            while True:
                upcoming = asyncio.ensure_future(anext(events, _END))
                if self._batch:
                    done, _ = await asyncio.wait({upcoming}, timeout=self._linger_s)
                    if not done:
                        await self._flush()
                event = await upcoming
                if event is _END:
                    return
                await self._add(cast(stop_ingest_pb2.InboundEvent, event))
        finally:
            if upcoming is not None and not upcoming.done():
                upcoming.cancel()

    async def _add(self, event: stop_ingest_pb2.InboundEvent) -> None:
        self._events_read += 1
        self._batch.append(event)
        if len(self._batch) == self._batch_size:
            await self._flush()

    async def _flush(self) -> None:
        if self._batch:
            request = stop_ingest_pb2.StreamEventsRequest(events=self._batch)
            self._batch = []
            await self._requests.put(request)
