"""What another team's program does with the client, run by tests/e2e/test_client_cli.py in a virtual
environment that holds the client wheel alone: both clients check, stream STOPs and export against the
server given as `TARGET TOKEN`, then it prints as one JSON object what it saw and the versions it ran on."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import re
import sys
from typing import Any

import google.protobuf
import grpc
from stopgate import AsyncClient, Client, EventSource, InboundEvent, IngestOutcome, MessageCategory, Verdict
from stopgate.v1.quarantine_check_pb2 import CheckBatchResponse
from stopgate.v1.reporting_pb2 import InteractionStatus
from stopgate.v1.stop_ingest_pb2 import EventAck

NUMBERS = ["+33612340001", "+33612340002"]
MARKETING = MessageCategory.MESSAGE_CATEGORY_MARKETING


def stop(event_id: str, number: str) -> InboundEvent:
    return InboundEvent(
        event_id=event_id,
        source=EventSource.EVENT_SOURCE_SMS_REPLY,
        phone_number=number,
        recipient="36180",
        text="STOP",
    )


def verdicts(reply: CheckBatchResponse) -> list[str]:
    return [Verdict.Name(result.verdict) for result in reply.results]


def outcomes(acks: list[EventAck]) -> list[list[str]]:
    return [[IngestOutcome.Name(ack.outcome), ack.attributed_campaign_id] for ack in acks]


async def with_async_client(target: str, token: str, seen: dict[str, Any]) -> None:
    async with AsyncClient(target, token=token) as client:
        reply = await client.check_batch(
            "acme", NUMBERS, sender="36180", category=MARKETING, campaign_id="spring"
        )
        seen["async check_batch"] = verdicts(reply)
        seen["async stream_events"] = outcomes(
            [ack async for ack in client.stream_events([stop("e-1", NUMBERS[0])])]
        )
        rows = [row async for row in client.export_interactions("acme", "spring")]
        seen["async export_interactions"] = [
            [row.phone_number, InteractionStatus.Name(row.status)] for row in rows
        ]


def with_client(target: str, token: str, seen: dict[str, Any]) -> None:
    with Client(target, token=token) as client:
        seen["stream_events"] = outcomes(list(client.stream_events([stop("e-2", NUMBERS[1])])))
        seen["check_batch"] = verdicts(
            client.check_batch("acme", NUMBERS, sender="36180", category=MARKETING)
        )
        seen["export_quarantine"] = sorted(entry.phone_number for entry in client.export_quarantine("acme"))


def main() -> None:
    target, token = sys.argv[1:]
    requires = importlib.metadata.requires("stopgate-client") or []
    # What every install needs, not the extras' (`; extra == "otel"`), which this environment lacks.
    dependencies = sorted(
        re.split(r"[^\w.-]", line, maxsplit=1)[0] for line in requires if "extra ==" not in line
    )
    seen: dict[str, Any] = {
        "installed": {name: importlib.metadata.version(name) for name in dependencies},
        "imported": {"grpcio": grpc.__version__, "protobuf": google.protobuf.__version__},
    }
    asyncio.run(with_async_client(target, token, seen))
    with_client(target, token, seen)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
