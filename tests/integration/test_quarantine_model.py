"""Property: whatever the sequence of quarantines, releases and stop-list changes, CheckBatch answers
exactly what a simple reference model of the rules answers."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc
from stopgate_server.app import Application

pb = quarantine_check_pb2
LICENCES = ("acme", "globex")
SHORTCODES = ("36180", "60999")
SENDERS = ("ACME", *SHORTCODES)
NUMBERS = ("+33612345678", "+33698765432", "+447700900123", "+32470123456")

operations = st.lists(
    st.one_of(
        st.tuples(st.just("quarantine"), st.sampled_from(LICENCES), st.sampled_from(NUMBERS)),
        st.tuples(st.just("release"), st.sampled_from(LICENCES), st.sampled_from(NUMBERS)),
        st.tuples(st.just("stop_list"), st.sampled_from(SHORTCODES), st.sampled_from(NUMBERS)),
        st.tuples(st.just("opt_in"), st.sampled_from(SHORTCODES), st.sampled_from(NUMBERS)),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
async def test_check_batch_matches_the_reference_model(
    app: Application, channel: grpc.aio.Channel, db: asyncpg.Connection, steps: list[tuple[str, str, str]]
) -> None:
    assert app.index is not None
    stub: Any = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    await db.execute("DELETE FROM quarantine; DELETE FROM shortcode_stop_list")
    quarantined: set[tuple[str, str]] = set()
    stop_listed: set[tuple[str, str]] = set()
    for action, key, number in steps:
        if action == "quarantine":
            await stub.QuarantineNumbers(
                pb.QuarantineNumbersRequest(licence_id=key, phone_numbers=[number], actor="t", reason="t")
            )
            quarantined.add((key, number))
        elif action == "release":
            await stub.ReleaseNumbers(
                pb.ReleaseNumbersRequest(
                    licence_id=key, phone_numbers=[number], actor="t", reason="t", consent_reference="c"
                )
            )
            quarantined.discard((key, number))
        elif action == "stop_list":
            await db.execute(
                "INSERT INTO shortcode_stop_list (phone, shortcode, since) VALUES ($1, $2, now())"
                " ON CONFLICT DO NOTHING",
                number,
                key,
            )
            stop_listed.add((key, number))
        else:
            await db.execute(
                "DELETE FROM shortcode_stop_list WHERE phone = $1 AND shortcode = $2", number, key
            )
            stop_listed.discard((key, number))
    await app.index.sync()  # direct SQL writes stand for another process: wait for their announcement

    for licence in LICENCES:
        for sender in SENDERS:
            request = pb.CheckBatchRequest(
                licence_id=licence,
                sender=common_pb2.Sender(address=sender),
                category=common_pb2.MESSAGE_CATEGORY_MARKETING,
                phone_numbers=NUMBERS,
            )
            response = await stub.CheckBatch(request, timeout=10)
            expected = []
            for number in NUMBERS:
                if (licence, number) in quarantined:
                    expected.append(pb.CHECK_REASON_QUARANTINED)
                elif sender in SHORTCODES and (sender, number) in stop_listed:
                    expected.append(pb.CHECK_REASON_SHORTCODE_STOP_LIST)
                else:
                    expected.append(pb.CHECK_REASON_UNSPECIFIED)
            assert [r.reason for r in response.results] == expected
            assert [r.verdict == pb.VERDICT_BLOCK for r in response.results] == [
                reason != pb.CHECK_REASON_UNSPECIFIED for reason in expected
            ]
