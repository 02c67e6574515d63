"""Typed clients of stopgate: `AsyncClient` (primary) and `Client`, its blocking twin over the same code.

One method per RPC, named after it in snake_case. Unary methods return the response message; streaming
methods are iterators of the rows (`export_*`) or acks (`stream_events`). Every method takes keyword
`timeout` (seconds; the client's `default_timeout` when omitted) and `metadata`, and every method that
retries takes `retry`, which overrides the client's `RetryConfig` for that call; a failed call raises a
`stopgate.errors.StopgateError` subclass. `Client` spells out each method again with the same signature
(a unit test holds them equal), so that `help()`, `inspect` and mypy see its arguments.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
import uuid
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import datetime
from typing import Any, Concatenate, Literal, ParamSpec, TypeAlias, TypeVar

import grpc

from stopgate import enums
from stopgate import events as _events
from stopgate.errors import DeadlineExceededError, StopgateError, from_rpc_error
from stopgate.retry import RetryConfig, RetryThrottle
from stopgate.times import to_timestamp
from stopgate.v1 import (
    common_pb2,
    message_compliance_pb2,
    message_compliance_pb2_grpc,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)

DEFAULT_TARGET = "127.0.0.1:50051"
TOKEN_VARIABLE = "STOPGATE_TOKEN"  # noqa: S105 - the name of the variable holding the token
CHECK_BATCH_LIMIT = 10_000  # numbers per CheckBatch request, the server's limit
# The server's limit on a message. gRPC's default limit on received ones (4 MiB) is smaller than some
# answers: CheckMessages for 1,000 ten-part texts returns ~4.6 MB.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

Metadata = Iterable[tuple[str, str]]
SenderLike = str | common_pb2.Sender
# A category or intent: the `stopgate` enum member, or the generated int.
CategoryLike: TypeAlias = enums.MessageCategory | common_pb2.MessageCategory.ValueType
IntentLike: TypeAlias = enums.Intent | common_pb2.Intent.ValueType
Request = TypeVar("Request")
Response = TypeVar("Response")
Item = TypeVar("Item")


class AsyncClient:
    """Asynchronous client of every stopgate service, over one channel. Use it as `async with`."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        certificate_chain: bytes | None = None,
        private_key: bytes | None = None,
        default_timeout: float = 10.0,
        retry: RetryConfig | None = None,
        keepalive_s: float = 30.0,
        load_balancing: str | None = None,
        options: Iterable[tuple[str, Any]] = (),
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        """A client of the stopgate server at `target`, a gRPC target: `host:port`, or `dns:///name:port`
        for several replicas, with `load_balancing="round_robin"`. TLS is used when `tls` is true or any
        certificate is given; mutual TLS when `certificate_chain` and `private_key` are. `token` (by
        default the STOPGATE_TOKEN environment variable) is sent as `authorization: Bearer <token>`.

        `default_timeout` is the deadline of a call that sets none (streams have none unless one is
        given): one deadline for the whole call, all of its requests (`check_batch` splits large ones) and
        retries included. `retry` says how idempotent calls are retried on UNAVAILABLE (see
        `RetryConfig`); every method that retries also takes `retry=` for one call. `options` are extra
        gRPC channel options; `interceptors` (grpc.aio client interceptors, OpenTelemetry's for instance)
        are appended to the channel's, and see each attempt of a retried call.
        """
        self.target = target
        self.default_timeout = default_timeout
        self.retry = retry or RetryConfig()
        self._throttle = RetryThrottle()
        token = os.environ.get(TOKEN_VARIABLE) if token is None else token
        self._auth: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        channel_options: list[tuple[str, Any]] = [
            ("grpc.enable_retries", 1),
            # Transparent retries only (of calls that never reached a server): the client retries itself.
            ("grpc.service_config", self.retry.service_config(load_balancing, retry_policy=False)),
            ("grpc.keepalive_time_ms", int(keepalive_s * 1000)),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            *self.retry.channel_options(),
            *options,
        ]
        if tls or root_certificates or certificate_chain or private_key:
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self.channel = grpc.aio.secure_channel(
                target, credentials, options=channel_options, interceptors=list(interceptors) or None
            )
        else:
            self.channel = grpc.aio.insecure_channel(
                target, options=channel_options, interceptors=list(interceptors) or None
            )
        self._quarantine = quarantine_check_pb2_grpc.QuarantineCheckStub(self.channel)
        self._ingest = stop_ingest_pb2_grpc.StopIngestStub(self.channel)
        self._compliance = message_compliance_pb2_grpc.MessageComplianceStub(self.channel)
        self._reporting = reporting_pb2_grpc.ReportingStub(self.channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls in progress are cancelled."""
        await self.channel.close()

    # QuarantineCheck

    async def check_batch(
        self,
        licence_id: str,
        phone_numbers: Iterable[str],
        *,
        sender: SenderLike,
        category: CategoryLike,
        campaign_id: str = "",
        default_region: str = "",
        request_id: str = "",
        max_concurrency: int = 4,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.CheckBatchResponse:
        """Which of `phone_numbers` licence `licence_id` may message now, in input order.

        Any number of numbers: they go in requests of at most 10,000, `max_concurrency` at a time, and
        the answers are merged (results in input order, counts summed). With `campaign_id`, allowed numbers
        are recorded as sends of that campaign, and each request carries a request id (AIP-155): a new
        random one, or one derived from `request_id` (a UUID) when given, so that calling again with the
        same `request_id` and the same numbers (after a timeout, say) records nothing twice and returns the
        first answer. Every request is retried on UNAVAILABLE, with its same id. `timeout` is the deadline
        of the whole call, every request and retry included: past it, `DeadlineExceededError`.
        """
        numbers = list(phone_numbers)
        if not numbers:
            raise ValueError("phone_numbers is empty")
        deadline = self._deadline(timeout)
        retry = self._retry_of(retry)
        chunks = [
            numbers[start : start + CHECK_BATCH_LIMIT] for start in range(0, len(numbers), CHECK_BATCH_LIMIT)
        ]
        request_ids = _request_ids(request_id, len(chunks)) if campaign_id else [request_id] * len(chunks)
        requests = [
            quarantine_check_pb2.CheckBatchRequest(
                licence_id=licence_id,
                sender=_sender(sender),
                category=common_pb2.MessageCategory.ValueType(category),
                phone_numbers=chunk,
                campaign_id=campaign_id,
                default_region=default_region,
                request_id=chunk_request_id,
            )
            for chunk, chunk_request_id in zip(chunks, request_ids, strict=True)
        ]
        slots = asyncio.Semaphore(max_concurrency)

        async def check(
            request: quarantine_check_pb2.CheckBatchRequest,
        ) -> quarantine_check_pb2.CheckBatchResponse:
            async with slots:  # a request waiting for its turn is on the call's clock
                return await self._unary(self._quarantine.CheckBatch, request, deadline, metadata, retry)

        if len(requests) == 1:
            return await check(requests[0])
        replies = await _gather_or_cancel(check(request) for request in requests)
        merged = quarantine_check_pb2.CheckBatchResponse()
        for reply in replies:
            merged.results.extend(reply.results)
            merged.allowed_count += reply.allowed_count
            merged.blocked_count += reply.blocked_count
            merged.invalid_count += reply.invalid_count
            merged.recorded_sends += reply.recorded_sends
        return merged

    async def record_sends(
        self,
        licence_id: str,
        campaign_id: str,
        phone_numbers: Iterable[str],
        *,
        sender: SenderLike,
        sent_at: datetime | None = None,
        default_region: str = "",
        request_id: str = "",
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.RecordSendsResponse:
        """Record sends of `campaign_id` made without CheckBatch (at `sent_at`, timezone-aware, or now).

        The request carries a request id (AIP-155), `request_id` or a new random UUID, and is retried on
        UNAVAILABLE with it: a repeat records nothing twice and returns the first answer. To repeat a call
        yourself (after a timeout, say), pass the same `request_id` and the same arguments, `sent_at`
        included."""
        request = quarantine_check_pb2.RecordSendsRequest(
            licence_id=licence_id,
            campaign_id=campaign_id,
            sender=_sender(sender),
            sent_at=to_timestamp(sent_at, "sent_at"),
            phone_numbers=list(phone_numbers),
            default_region=default_region,
            request_id=request_id or str(uuid.uuid4()),
        )
        return await self._unary(
            self._quarantine.RecordSends, request, self._deadline(timeout), metadata, self._retry_of(retry)
        )

    async def get_number_status(
        self,
        licence_id: str,
        phone_number: str,
        *,
        default_region: str = "",
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.GetNumberStatusResponse:
        """Whether a number is quarantined in a licence, why, its stop lists, last send and history."""
        request = quarantine_check_pb2.GetNumberStatusRequest(
            licence_id=licence_id, phone_number=phone_number, default_region=default_region
        )
        return await self._unary(
            self._quarantine.GetNumberStatus,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    async def quarantine_numbers(
        self,
        licence_id: str,
        phone_numbers: Iterable[str],
        *,
        actor: str,
        reason: str,
        default_region: str = "",
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.QuarantineNumbersResponse:
        """Quarantine numbers by hand (admin), audited with `actor` and `reason`. Never retried: each call
        is audited."""
        request = quarantine_check_pb2.QuarantineNumbersRequest(
            licence_id=licence_id,
            phone_numbers=list(phone_numbers),
            actor=actor,
            reason=reason,
            default_region=default_region,
        )
        return await self._unary(
            self._quarantine.QuarantineNumbers, request, self._deadline(timeout), metadata, None
        )

    async def release_numbers(
        self,
        licence_id: str,
        phone_numbers: Iterable[str],
        *,
        actor: str,
        reason: str,
        consent_reference: str,
        default_region: str = "",
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.ReleaseNumbersResponse:
        """Release numbers from quarantine (admin), with the reference of the consent that allows it. Never
        retried: each call is audited."""
        request = quarantine_check_pb2.ReleaseNumbersRequest(
            licence_id=licence_id,
            phone_numbers=list(phone_numbers),
            actor=actor,
            reason=reason,
            consent_reference=consent_reference,
            default_region=default_region,
        )
        return await self._unary(
            self._quarantine.ReleaseNumbers, request, self._deadline(timeout), metadata, None
        )

    async def erase_personal_data(
        self,
        phone_number: str,
        *,
        licence_id: str = "",
        every_licence: bool = False,
        actor: str,
        reason: str,
        default_region: str = "",
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.ErasePersonalDataResponse:
        """Erase a number's personal data and keep its opt-out (admin; GDPR Art. 17 and 21), in one licence
        (`licence_id`) or in every licence (`every_licence=True`, a token not limited to licences): exactly
        one of the two. Audited with `actor` and `reason` (the reference of the person's request); the
        answer counts what was erased (0 for a repeat)."""
        request = quarantine_check_pb2.ErasePersonalDataRequest(
            phone_number=phone_number, default_region=default_region, actor=actor, reason=reason
        )
        if licence_id:
            request.licence_id = licence_id
        if every_licence:
            request.every_licence = True
        return await self._unary(
            self._quarantine.ErasePersonalData,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    async def bind_shortcode(
        self,
        licence_id: str,
        shortcode: str,
        *,
        actor: str,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.BindShortcodeResponse:
        """Bind a shortcode to a licence, so that tokens limited to the licence may send through it and see
        its stop list (admin, token not limited to licences); `created` is false when it was bound."""
        request = quarantine_check_pb2.BindShortcodeRequest(
            licence_id=licence_id, shortcode=shortcode, actor=actor
        )
        return await self._unary(
            self._quarantine.BindShortcode, request, self._deadline(timeout), metadata, self._retry_of(retry)
        )

    async def unbind_shortcode(
        self,
        licence_id: str,
        shortcode: str,
        *,
        actor: str,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.UnbindShortcodeResponse:
        """Remove a shortcode's binding to a licence (admin, token not limited to licences); `removed`
        says whether it was there."""
        request = quarantine_check_pb2.UnbindShortcodeRequest(
            licence_id=licence_id, shortcode=shortcode, actor=actor
        )
        return await self._unary(
            self._quarantine.UnbindShortcode,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    async def list_shortcode_bindings(
        self,
        *,
        licence_id: str = "",
        shortcode: str = "",
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> quarantine_check_pb2.ListShortcodeBindingsResponse:
        """The shortcode bindings of a licence, of a shortcode, or (neither given) all of them (admin, token
        not limited to licences)."""
        request = quarantine_check_pb2.ListShortcodeBindingsRequest(
            licence_id=licence_id, shortcode=shortcode
        )
        return await self._unary(
            self._quarantine.ListShortcodeBindings,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    # StopIngest

    async def stream_events(
        self,
        events: Iterable[stop_ingest_pb2.InboundEvent] | AsyncIterable[stop_ingest_pb2.InboundEvent],
        *,
        batch_size: int = 500,
        max_batches_in_flight: int = 4,
        linger_s: float = 0.05,
        reconnect_deadline_s: float = 60.0,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> AsyncIterator[stop_ingest_pb2.EventAck]:
        """Stream inbound events through StopIngest.StreamEvents; yield one ack per event, in order.

        Events go in batches of up to `batch_size` (a partial batch leaves after `linger_s` without a new
        event); at most `max_batches_in_flight` batches wait for their acks, so a slow server slows the
        reading of `events`. Each ack means its event is durably stored, and each event gets exactly one.

        When the stream fails with UNAVAILABLE (a server restarting, shutting down, or gone; any reason)
        or loses its connection, the client reconnects with the backoffs of `retry` (jittered, capped) and
        re-sends the unacked batches in order: ingest is idempotent on event_id, so an event stored before
        the failure is acked DUPLICATE with its first outcome. It keeps trying until
        `reconnect_deadline_s` have passed since the first failure with no ack after it (0, or a `retry`
        of one attempt such as `NO_RETRY`: gives up at that failure), then raises
        `ReconnectDeadlineError`, which counts the events not acked. A stream closed with nothing unacked
        (idle) is reopened when the next batch is ready. Other statuses fail at once. `timeout` bounds each
        connection (none by default).
        """
        stream = _events.EventStream(
            connect=lambda: self._ingest.StreamEvents(timeout=timeout, metadata=self._metadata(metadata)),
            retry=self._retry_of(retry),
            batch_size=batch_size,
            max_batches_in_flight=max_batches_in_flight,
            linger_s=linger_s,
            reconnect_deadline_s=reconnect_deadline_s,
        )
        async for ack in stream.run(events):
            yield ack

    async def ingest_event(
        self,
        event: stop_ingest_pb2.InboundEvent,
        *,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> stop_ingest_pb2.IngestEventResponse:
        """Ingest one event (low-rate ingress); retried on UNAVAILABLE, as ingest is idempotent."""
        request = stop_ingest_pb2.IngestEventRequest(event=event)
        return await self._unary(
            self._ingest.IngestEvent, request, self._deadline(timeout), metadata, self._retry_of(retry)
        )

    async def classify_text(
        self,
        text: str,
        *,
        country: str = "",
        shortcode: str = "",
        licence_id: str = "",
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> stop_ingest_pb2.ClassifyTextResponse:
        """What intent stopgate reads in a text (a dry run: nothing is stored), with the custom keywords of
        `shortcode` and `licence_id` when given."""
        request = stop_ingest_pb2.ClassifyTextRequest(
            text=text, country=country, shortcode=shortcode, licence_id=licence_id
        )
        return await self._unary(
            self._ingest.ClassifyText, request, self._deadline(timeout), metadata, self._retry_of(retry)
        )

    async def set_custom_keyword(
        self,
        keyword: str,
        intent: IntentLike,
        *,
        actor: str,
        shortcode: str = "",
        licence_id: str = "",
        replies: Mapping[str, str] | None = None,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> stop_ingest_pb2.SetCustomKeywordResponse:
        """Add a keyword to a shortcode or a licence (exactly one), or replace it there (admin). `replies`:
        the reply to suggest when it matches, by ISO 639-1 language."""
        custom = common_pb2.CustomKeyword(
            keyword=keyword,
            intent=common_pb2.Intent.ValueType(intent),
            shortcode=shortcode,
            licence_id=licence_id,
            replies=replies or {},
        )
        request = stop_ingest_pb2.SetCustomKeywordRequest(keyword=custom, actor=actor, licence_id=licence_id)
        return await self._unary(
            self._ingest.SetCustomKeyword, request, self._deadline(timeout), metadata, self._retry_of(retry)
        )

    async def list_custom_keywords(
        self,
        *,
        shortcode: str = "",
        licence_id: str = "",
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> stop_ingest_pb2.ListCustomKeywordsResponse:
        """The custom keywords of a shortcode, of a licence, or (neither given) all of them (admin)."""
        request = stop_ingest_pb2.ListCustomKeywordsRequest(shortcode=shortcode, licence_id=licence_id)
        return await self._unary(
            self._ingest.ListCustomKeywords, request, self._deadline(timeout), metadata, self._retry_of(retry)
        )

    async def remove_custom_keyword(
        self,
        keyword: str,
        *,
        actor: str,
        shortcode: str = "",
        licence_id: str = "",
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> stop_ingest_pb2.RemoveCustomKeywordResponse:
        """Remove a keyword from a shortcode or a licence (admin); `removed` says whether it was there."""
        request = stop_ingest_pb2.RemoveCustomKeywordRequest(
            keyword=keyword, shortcode=shortcode, licence_id=licence_id, actor=actor
        )
        return await self._unary(
            self._ingest.RemoveCustomKeyword,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    # MessageCompliance

    async def check_message(
        self,
        text: str,
        *,
        country: str,
        sender: SenderLike,
        category: CategoryLike,
        shortcode: str = "",
        allow_accent_folding: bool = False,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> message_compliance_pb2.CheckMessageResponse:
        """Whether a text carries the STOP mention `country` requires, and its SMS parts."""
        request = message_compliance_pb2.CheckMessageRequest(
            text=text,
            country=country,
            sender=_sender(sender),
            category=common_pb2.MessageCategory.ValueType(category),
            shortcode=shortcode,
            allow_accent_folding=allow_accent_folding,
        )
        return await self._unary(
            self._compliance.CheckMessage, request, self._deadline(timeout), metadata, self._retry_of(retry)
        )

    async def check_messages(
        self,
        texts: Iterable[str],
        *,
        country: str,
        sender: SenderLike,
        category: CategoryLike,
        shortcode: str = "",
        allow_accent_folding: bool = False,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> message_compliance_pb2.CheckMessagesResponse:
        """`check_message` for many texts of one campaign; assessments in input order."""
        request = message_compliance_pb2.CheckMessagesRequest(
            texts=list(texts),
            country=country,
            sender=_sender(sender),
            category=common_pb2.MessageCategory.ValueType(category),
            shortcode=shortcode,
            allow_accent_folding=allow_accent_folding,
        )
        return await self._unary(
            self._compliance.CheckMessages, request, self._deadline(timeout), metadata, self._retry_of(retry)
        )

    async def list_country_policies(
        self, *, retry: RetryConfig | None = None, timeout: float | None = None, metadata: Metadata = ()
    ) -> message_compliance_pb2.ListCountryPoliciesResponse:
        """The country policy table the server applies."""
        request = message_compliance_pb2.ListCountryPoliciesRequest()
        return await self._unary(
            self._compliance.ListCountryPolicies,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    # Reporting

    async def get_campaign_report(
        self,
        licence_id: str,
        campaign_id: str,
        *,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> reporting_pb2.GetCampaignReportResponse:
        """Sends, unsubscribes and unsubscribe rate of one campaign."""
        request = reporting_pb2.GetCampaignReportRequest(licence_id=licence_id, campaign_id=campaign_id)
        return await self._unary(
            self._reporting.GetCampaignReport,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    async def list_campaign_reports(
        self,
        licence_id: str,
        *,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> reporting_pb2.ListCampaignReportsResponse:
        """One page of campaign reports of campaigns active between `start_time` and `end_time`
        (timezone-aware); `iter_campaign_reports` walks every page."""
        request = reporting_pb2.ListCampaignReportsRequest(
            licence_id=licence_id,
            start_time=to_timestamp(start_time, "start_time"),
            end_time=to_timestamp(end_time, "end_time"),
            page_size=page_size,
            page_token=page_token,
        )
        return await self._unary(
            self._reporting.ListCampaignReports,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    async def iter_campaign_reports(
        self,
        licence_id: str,
        *,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 0,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> AsyncIterator[reporting_pb2.CampaignReport]:
        """Every campaign report of `list_campaign_reports`, page after page (`timeout` per page)."""
        to_timestamp(start_time, "start_time")  # a naive datetime fails here, not at the first page
        to_timestamp(end_time, "end_time")
        page_token = ""
        while True:
            page = await self.list_campaign_reports(
                licence_id,
                start_time=start_time,
                end_time=end_time,
                page_size=page_size,
                page_token=page_token,
                retry=retry,
                timeout=timeout,
                metadata=metadata,
            )
            for report in page.reports:
                yield report
            page_token = page.next_page_token
            if not page_token:
                return

    async def export_interactions(
        self,
        licence_id: str,
        campaign_id: str,
        *,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> AsyncIterator[reporting_pb2.Interaction]:
        """One row per send of a campaign, SENT or STOPPED, as the server streams them. A failure before
        the first row is retried; `timeout` bounds the whole export (none by default)."""
        request = reporting_pb2.ExportInteractionsRequest(licence_id=licence_id, campaign_id=campaign_id)
        async for response in self._server_stream(
            self._reporting.ExportInteractions, request, timeout, metadata, self._retry_of(retry)
        ):
            for interaction in response.interactions:
                yield interaction

    async def export_quarantine(
        self,
        licence_id: str,
        *,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> AsyncIterator[reporting_pb2.QuarantineEntry]:
        """Every quarantined number of a licence, as the server streams them. A failure before the first
        row is retried; `timeout` bounds the whole export (none by default)."""
        request = reporting_pb2.ExportQuarantineRequest(licence_id=licence_id)
        async for response in self._server_stream(
            self._reporting.ExportQuarantine, request, timeout, metadata, self._retry_of(retry)
        ):
            for entry in response.entries:
                yield entry

    async def watch_blocklist_changes(
        self,
        after_cursor: str = "",
        *,
        start: Literal["now", "oldest"] = "now",
        licence_ids: Iterable[str] = (),
        reconnect_deadline_s: float = 60.0,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> AsyncIterator[reporting_pb2.WatchBlocklistChangesResponse]:
        """Every change of the block lists after `after_cursor` (empty: from `start`, "now" or "oldest"),
        of `licence_ids` only if given, for as long as the caller iterates.

        Yields the server's responses: up to 1,000 changes each, in commit order, or none (a heartbeat
        every 15 s while nothing changes). Record `response.cursor` once you have applied a response's
        changes (or a change's `cursor` after each change), and pass it as `after_cursor` next time: nothing
        after it is missed. When the stream fails with UNAVAILABLE (a server restarting or shutting down) or
        loses its connection, or the server ends it because the caller did not read for a while, the client
        opens it again after the last response yielded, with the backoffs of `retry`; so a change may come
        twice (the same `change_id`). It gives up when `reconnect_deadline_s` pass with no response since
        the first failure (or at once with a `retry` of one attempt, such as `NO_RETRY`), raising that
        failure. Other statuses fail at once (FAILED_PRECONDITION, reason CURSOR_EXPIRED: the cursor is
        older than the feed's retention). With a `timeout`, the iteration ends once that many seconds have
        passed (none by default: it follows for ever).
        """
        cursor, licences = after_cursor, list(licence_ids)
        retry = self._retry_of(retry)
        outage_ends_at: float | None = None
        backoffs = retry.reconnect_backoffs()
        loop = asyncio.get_running_loop()
        ends_at = None if timeout is None else loop.time() + timeout
        while True:
            request = reporting_pb2.WatchBlocklistChangesRequest(
                after_cursor=cursor, start=_FEED_STARTS[start], licence_ids=licences
            )
            remaining = None if ends_at is None else ends_at - loop.time()
            if remaining is not None and remaining <= 0:
                return
            try:
                async for response in self._server_stream(
                    self._reporting.WatchBlocklistChanges, request, remaining, metadata, None
                ):
                    cursor, outage_ends_at = response.cursor, None
                    backoffs = retry.reconnect_backoffs()
                    yield response
            except StopgateError as failure:
                if ends_at is not None and loop.time() >= ends_at:
                    return  # the caller's timeout: the end of the iteration, not a failure
                if not retry.retries or not _resumable(failure):
                    raise
                outage_ends_at = outage_ends_at or loop.time() + reconnect_deadline_s
                if loop.time() >= outage_ends_at:
                    raise
                await asyncio.sleep(min(next(backoffs), max(0.0, outage_ends_at - loop.time())))
            else:
                return  # the server ended the stream without an error: it does not, but then so do we

    async def get_licence_summary(
        self,
        licence_id: str,
        *,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        top_campaigns: int = 0,
        retry: RetryConfig | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> reporting_pb2.GetLicenceSummaryResponse:
        """Quarantine size, stops and opt-ins per day, and the campaigns with the most unsubscribes, between
        `start_time` and `end_time` (timezone-aware)."""
        request = reporting_pb2.GetLicenceSummaryRequest(
            licence_id=licence_id,
            start_time=to_timestamp(start_time, "start_time"),
            end_time=to_timestamp(end_time, "end_time"),
            top_campaigns=top_campaigns,
        )
        return await self._unary(
            self._reporting.GetLicenceSummary,
            request,
            self._deadline(timeout),
            metadata,
            self._retry_of(retry),
        )

    # Plumbing

    def _metadata(self, metadata: Metadata) -> tuple[tuple[str, str], ...]:
        return (*self._auth, *metadata)

    def _retry_of(self, retry: RetryConfig | None) -> RetryConfig:
        """A call's own `retry`, or the client's."""
        return self.retry if retry is None else retry

    def _deadline(self, timeout: float | None) -> float:
        """The `time.monotonic()` by which a call must end, all of its requests and attempts included."""
        return time.monotonic() + (self.default_timeout if timeout is None else timeout)

    async def _unary(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        deadline: float,
        metadata: Metadata,
        retry: RetryConfig | None,
    ) -> Response:
        """One unary call by `deadline` (a `time.monotonic()`), with the metadata and typed errors; retried
        as `retry` says (None: never, for the calls that are not idempotent), every attempt on the same
        clock."""
        backoffs = retry.backoffs() if retry else iter(())
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed before this request"
                )
            try:
                response = await method(request, timeout=remaining, metadata=self._metadata(metadata))
            except grpc.aio.AioRpcError as error:
                backoff = self._backoff(error, retry, backoffs, deadline)
                if backoff is None:
                    raise from_rpc_error(error) from error
                await asyncio.sleep(backoff)
            else:
                if retry is not None:
                    self._throttle.succeeded()
                return response

    def _backoff(
        self,
        error: grpc.RpcError,
        retry: RetryConfig | None,
        backoffs: Iterator[float],
        ends_at: float | None,
    ) -> float | None:
        """The wait before the next attempt of a call that failed with `error`, or None if it must fail:
        not retried (`retry` None or the code not retryable), out of attempts, throttled, or out of time
        (`ends_at`, a `time.monotonic()`)."""
        if retry is None or not retry.is_retryable(error.code()):
            return None
        self._throttle.failed()
        backoff = next(backoffs, None)
        if backoff is None or not self._throttle.allows_retry():
            return None
        if ends_at is not None and time.monotonic() + backoff >= ends_at:
            return None
        return backoff

    async def _server_stream(
        self,
        method: grpc.aio.UnaryStreamMultiCallable[Request, Response],
        request: Request,
        timeout: float | None,
        metadata: Metadata,
        retry: RetryConfig | None,
    ) -> AsyncIterator[Response]:
        """The responses of a server stream, typed errors; a failure before the first response is retried
        as `retry` says (None: never), within `timeout` (None: no deadline)."""
        ends_at = None if timeout is None else time.monotonic() + timeout
        backoffs = retry.backoffs() if retry else iter(())
        while True:
            remaining = None if ends_at is None else ends_at - time.monotonic()
            call = method(request, timeout=remaining, metadata=self._metadata(metadata))
            received = False
            try:
                async for response in call:
                    received = True
                    yield response
                return
            except grpc.aio.AioRpcError as error:
                backoff = None if received else self._backoff(error, retry, backoffs, ends_at)
                if backoff is None:
                    raise from_rpc_error(error) from error
                call.cancel()
                await asyncio.sleep(backoff)
            finally:
                call.cancel()


_FEED_STARTS = {"now": reporting_pb2.FEED_START_NOW, "oldest": reporting_pb2.FEED_START_OLDEST}


def _resumable(failure: StopgateError) -> bool:
    """Whether a change feed is opened again after this failure: the server or the connection went away,
    or the server ended a stream its caller did not read (STREAM_NOT_READ)."""
    if failure.code == grpc.StatusCode.UNAVAILABLE:
        return True
    return failure.code == grpc.StatusCode.DEADLINE_EXCEEDED and failure.reason == "STREAM_NOT_READ"


def _request_ids(request_id: str, requests: int) -> list[str]:
    """The request ids of the `requests` requests of one call: new random ones, or `request_id` for a single
    request, or ids derived from it (the same each time: UUIDv5 of the request's index under it)."""
    if not request_id:
        return [str(uuid.uuid4()) for _ in range(requests)]
    if requests == 1:
        return [request_id]
    try:
        namespace = uuid.UUID(request_id)
    except ValueError:
        raise ValueError(f"request_id must be a UUID, got {request_id!r}") from None
    return [str(uuid.uuid5(namespace, str(index))) for index in range(requests)]


def _sender(sender: SenderLike) -> common_pb2.Sender:
    return common_pb2.Sender(address=sender) if isinstance(sender, str) else sender


async def _gather_or_cancel(calls: Iterable[Coroutine[Any, Any, Response]]) -> list[Response]:
    """Run coroutines concurrently; the first failure cancels the others and is raised (itself, not in an
    ExceptionGroup: callers catch `StopgateError`s)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except BaseExceptionGroup as failures:
        first = failures.exceptions[0]
        raise first from first.__cause__
    return [task.result() for task in tasks]


Method = TypeVar("Method", bound=Callable[..., Any])
P = ParamSpec("P")


def _twin(async_method: Callable[..., Any]) -> Callable[[Method], Method]:
    """Give a method of `Client` the docstring of its `AsyncClient` twin (a unit test holds their
    signatures equal, so that one cannot gain an argument the other lacks)."""

    def decorate(method: Method) -> Method:
        method.__doc__ = async_method.__doc__
        return method

    return decorate


def _as_twin(method: Callable[..., Any], twin: Callable[..., Any], returns: str | None = None) -> None:
    """Show `method` as its `AsyncClient` twin: name, docstring and signature (with `returns` as its return
    annotation), which `inspect`, `help()` and notebooks read; type checkers read the ParamSpec."""
    method.__name__ = method.__qualname__ = twin.__name__
    method.__doc__ = twin.__doc__
    signature = inspect.signature(twin)
    if returns is not None:
        signature = signature.replace(return_annotation=returns)
    method.__signature__ = signature  # type: ignore[attr-defined]


def _blocking(
    async_method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, Response]],
) -> Callable[Concatenate[Client, P], Response]:
    """The blocking method of `Client` that runs `async_method` on the client's loop: the same arguments,
    checked in the caller's thread, and the same result."""

    def method(client: Client, /, *args: P.args, **kwargs: P.kwargs) -> Response:
        return client._run(async_method(client._async, *args, **kwargs))

    _as_twin(method, async_method)
    return method


def _blocking_iterator(
    async_method: Callable[Concatenate[AsyncClient, P], AsyncIterator[Item]],
) -> Callable[Concatenate[Client, P], Iterator[Item]]:
    """The blocking method of `Client` that iterates over `async_method`'s async iterator."""

    def method(client: Client, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[Item]:
        return client._iterate(async_method(client._async, *args, **kwargs))

    returns = str(inspect.signature(async_method).return_annotation).replace("AsyncIterator[", "Iterator[", 1)
    _as_twin(method, async_method, returns)
    return method


class Client:
    """The blocking twin of `AsyncClient`: same arguments, same methods, same results, run on a private
    event loop thread. Use it as `with`. It may be shared between threads.

    Each method has the signature and docstring of its `AsyncClient` twin, for `help()`, `inspect` and type
    checkers: a misspelt keyword is a TypeError in the caller's thread (and a mypy error)."""

    @_twin(AsyncClient.__init__)
    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        certificate_chain: bytes | None = None,
        private_key: bytes | None = None,
        default_timeout: float = 10.0,
        retry: RetryConfig | None = None,
        keepalive_s: float = 30.0,
        load_balancing: str | None = None,
        options: Iterable[tuple[str, Any]] = (),
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stopgate-client", daemon=True)
        self._thread.start()

        async def make() -> AsyncClient:  # grpc.aio binds a channel to the loop running when it is made
            return AsyncClient(
                target,
                token=token,
                tls=tls,
                root_certificates=root_certificates,
                certificate_chain=certificate_chain,
                private_key=private_key,
                default_timeout=default_timeout,
                retry=retry,
                keepalive_s=keepalive_s,
                load_balancing=load_balancing,
                options=options,
                interceptors=interceptors,
            )

        try:
            self._async = self._run(make())
        except BaseException:
            self._stop_loop()
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and stop the client's event loop thread."""
        if self._loop.is_closed():
            return
        self._run(self._async.close())
        self._stop_loop()

    @property
    def target(self) -> str:
        return self._async.target

    @property
    def default_timeout(self) -> float:
        return self._async.default_timeout

    @property
    def retry(self) -> RetryConfig:
        return self._async.retry

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, Response]) -> Response:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _iterate(self, iterator: AsyncIterator[Item]) -> Iterator[Item]:
        """A blocking iterator over an async one; leaving it early closes the async one (and its call)."""
        sentinel = object()

        async def next_item() -> Any:
            return await anext(iterator, sentinel)

        try:
            while (item := self._run(next_item())) is not sentinel:
                yield item
        finally:
            if not self._loop.is_closed():
                self._run(iterator.aclose())  # type: ignore[attr-defined]

    # QuarantineCheck

    check_batch = _blocking(AsyncClient.check_batch)
    record_sends = _blocking(AsyncClient.record_sends)
    get_number_status = _blocking(AsyncClient.get_number_status)
    quarantine_numbers = _blocking(AsyncClient.quarantine_numbers)
    release_numbers = _blocking(AsyncClient.release_numbers)
    erase_personal_data = _blocking(AsyncClient.erase_personal_data)
    bind_shortcode = _blocking(AsyncClient.bind_shortcode)
    unbind_shortcode = _blocking(AsyncClient.unbind_shortcode)
    list_shortcode_bindings = _blocking(AsyncClient.list_shortcode_bindings)

    # StopIngest

    stream_events = _blocking_iterator(AsyncClient.stream_events)
    ingest_event = _blocking(AsyncClient.ingest_event)
    classify_text = _blocking(AsyncClient.classify_text)
    set_custom_keyword = _blocking(AsyncClient.set_custom_keyword)
    list_custom_keywords = _blocking(AsyncClient.list_custom_keywords)
    remove_custom_keyword = _blocking(AsyncClient.remove_custom_keyword)

    # MessageCompliance

    check_message = _blocking(AsyncClient.check_message)
    check_messages = _blocking(AsyncClient.check_messages)
    list_country_policies = _blocking(AsyncClient.list_country_policies)

    # Reporting

    get_campaign_report = _blocking(AsyncClient.get_campaign_report)
    list_campaign_reports = _blocking(AsyncClient.list_campaign_reports)
    iter_campaign_reports = _blocking_iterator(AsyncClient.iter_campaign_reports)
    export_interactions = _blocking_iterator(AsyncClient.export_interactions)
    export_quarantine = _blocking_iterator(AsyncClient.export_quarantine)
    watch_blocklist_changes = _blocking_iterator(AsyncClient.watch_blocklist_changes)
    get_licence_summary = _blocking(AsyncClient.get_licence_summary)
