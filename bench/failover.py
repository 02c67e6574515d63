"""Failover drill: no acked STOP is lost when the primary dies and its synchronous standby takes over.

Starts a primary and a streaming standby (both private clusters on unix sockets), makes the standby
synchronous (`synchronous_standby_names`, `synchronous_commit = on`: a commit returns only once the standby
has flushed it), and serves stopgate on the primary. A client streams STOP events for --seconds and records
every ack; then every process of the primary is killed with SIGKILL mid-stream, the standby is promoted, and
the script checks on it that every acked event is stored with its effects (quarantine, stop list), and that
a stopgate serving from the promoted standby blocks every acked number. Exit status 1 if anything acked is
missing. With --asynchronous the standby is not synchronous (for contrast: acks may then be lost).

    .venv/bin/python bench/failover.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from harness import authorised_channel, descendants, postmaster_pid, private_database, stopgate_server
from ingest import SHORTCODE, events, load_sends, phone

STANDBY = "stopgate_standby"
BATCH = 50


async def make_synchronous(dsn: str, synchronous: bool) -> str:
    """Lists the standby in synchronous_standby_names (or not) and waits until it streams in that mode."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY if synchronous else ''}'"
        )
        await connection.execute("SELECT pg_reload_conf()")
        wanted = "sync" if synchronous else "async"
        for _ in range(300):
            state = await connection.fetchval(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", STANDBY
            )
            if state == wanted:
                return str(state)
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the standby did not stream as {wanted} (last state: {state})")
    finally:
        await connection.close()


async def stream_until_broken(
    address: str, seconds: float, sends: int, crash: asyncio.Event
) -> tuple[list[str], float]:
    """Streams batches of STOPs for the first `sends` numbers; `crash` is set after `seconds`, or when every
    event is acked or the stream fails before. Returns the acked event ids (in order) once the stream breaks
    or ends, and the acked events per second before the crash. A stream that fails before the crash raises.
    """
    from stopgate.v1 import stop_ingest_pb2, stop_ingest_pb2_grpc

    acked: list[str] = []
    rate = 0.0

    def requests() -> Any:
        for start in range(0, sends, BATCH):
            batch = events(start, min(BATCH, sends - start), "drill")
            yield stop_ingest_pb2.StreamEventsRequest(events=batch)

    async with authorised_channel(address) as channel:
        stub = stop_ingest_pb2_grpc.StopIngestStub(channel)
        started = time.perf_counter()
        try:
            async for response in stub.StreamEvents(requests(), timeout=seconds + 60):
                acked.extend(ack.event_id for ack in response.acks)
                elapsed = time.perf_counter() - started
                if elapsed >= seconds and not crash.is_set():
                    rate = len(acked) / elapsed
                    crash.set()
        except grpc.aio.AioRpcError as error:
            if not crash.is_set():
                raise  # not broken by the crash: the drill cannot run
            print(f"stream ended: {error.code().name}: {error.details()}", flush=True)  # the crash did it
        finally:
            if not crash.is_set():
                rate = len(acked) / (time.perf_counter() - started)
                crash.set()
    return acked, rate


def kill_cluster(data_dir: Path) -> int:
    """SIGKILL the postmaster of `data_dir` and all its processes at once (a crash, not a shutdown)."""
    doomed = descendants(postmaster_pid(data_dir))
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    # The dead cluster's pid file stays behind, and until init reaps the killed postmaster, `pg_ctl status`
    # would take it for running (and the clean-up would wait for it to stop). PostgreSQL itself replaces a
    # stale pid file at its next start.
    (data_dir / "postmaster.pid").unlink()
    return len(doomed)


async def verify(dsn: str, acked: list[str]) -> dict[str, int]:
    """What the promoted standby holds of the acked events and their effects."""
    numbers = [phone(int(event_id.removeprefix("drill-"))) for event_id in acked]
    connection = await asyncpg.connect(dsn)
    try:
        return {
            "stored": await connection.fetchval(
                "SELECT count(*) FROM inbound_events WHERE event_id = ANY($1::text[])", acked
            ),
            "quarantined": await connection.fetchval(
                "SELECT count(*) FROM quarantine WHERE licence_id = 'acme' AND phone = ANY($1::text[])",
                numbers,
            ),
            "stop_listed": await connection.fetchval(
                "SELECT count(*) FROM shortcode_stop_list WHERE shortcode = $1 AND phone = ANY($2::text[])",
                SHORTCODE,
                numbers,
            ),
            "stored_in_all": await connection.fetchval("SELECT count(*) FROM inbound_events"),
        }
    finally:
        await connection.close()


async def blocked_by_stopgate(address: str, acked: list[str]) -> int:
    """How many acked numbers CheckBatch blocks, asked of a stopgate serving from the promoted standby."""
    from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc

    numbers = [phone(int(event_id.removeprefix("drill-"))) for event_id in acked]
    blocked = 0
    async with authorised_channel(address) as channel:
        stub = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
        for start in range(0, len(numbers), 10_000):
            response = await stub.CheckBatch(
                quarantine_check_pb2.CheckBatchRequest(
                    licence_id="acme",
                    sender=common_pb2.Sender(address="ACME"),
                    category=common_pb2.MESSAGE_CATEGORY_MARKETING,
                    phone_numbers=numbers[start : start + 10_000],
                ),
                timeout=30,
            )
            blocked += response.blocked_count
    return blocked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="streaming time before the crash")
    parser.add_argument("--asynchronous", action="store_true", help="asynchronous standby, for contrast")
    parser.add_argument(
        "--sends",
        type=int,
        default=1_000_000,
        help="numbers sent to (so every STOP is attributed); the stream sends at most one STOP to each",
    )
    args = parser.parse_args()

    from stopgate_server.store.embedded import EmbeddedPostgres

    with private_database() as (dsn, workdir):
        primary = EmbeddedPostgres(workdir / "pg")  # the cluster private_database started
        standby = EmbeddedPostgres(workdir / "standby")
        standby.make_standby_of(primary, STANDBY)
        standby_dsn = standby.start()
        try:
            asyncio.run(load_sends(dsn, args.sends))
            mode = asyncio.run(make_synchronous(dsn, not args.asynchronous))
            print(f"primary and standby up; the standby streams as {mode}", flush=True)
            with stopgate_server(dsn) as server:

                async def drill() -> tuple[list[str], float, int]:
                    crash = asyncio.Event()
                    streaming = asyncio.create_task(
                        stream_until_broken(server.address, args.seconds, args.sends, crash)
                    )
                    await crash.wait()
                    killed = kill_cluster(primary.data_dir)
                    acked, rate = await streaming
                    return acked, rate, killed

                acked, rate, killed = asyncio.run(drill())
            print(
                f"{len(acked):,} events acked ({rate:,.0f}/s), then {killed} primary processes killed",
                flush=True,
            )
            started = time.perf_counter()
            standby.promote()
            print(f"standby promoted in {time.perf_counter() - started:.2f} s", flush=True)
            found = asyncio.run(verify(standby_dsn, acked))
            with stopgate_server(standby_dsn) as server:
                blocked = asyncio.run(blocked_by_stopgate(server.address, acked))
        finally:
            standby.stop()

    lost = {
        "not stored": len(acked) - found["stored"],
        "not quarantined": len(acked) - found["quarantined"],
        "not stop-listed": len(acked) - found["stop_listed"],
        "not blocked by CheckBatch": len(acked) - blocked,
    }
    print(
        f"on the promoted standby: {found['stored']:,} of {len(acked):,} acked events stored"
        f" ({found['stored_in_all'] - found['stored']:,} more that were not acked yet),"
        f" {found['quarantined']:,} quarantined, {found['stop_listed']:,} stop-listed;"
        f" CheckBatch blocks {blocked:,}"
    )
    missing = {what: count for what, count in lost.items() if count}
    print("acked and lost: none" if not missing else f"acked and lost: {missing}")
    if not acked:
        print("FAILED: no event was acked before the crash, so the drill proved nothing")
    return 1 if missing or not acked else 0


if __name__ == "__main__":
    sys.exit(main())
