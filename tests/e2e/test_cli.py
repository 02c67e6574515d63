"""The `stopgate` command as an operator runs it: a separate process, the embedded database, signals."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from processes import STOPGATE, SpawnServer, process_gone
from stopgate.v1.stop_ingest_pb2 import ClassifyTextRequest
from stopgate.v1.stop_ingest_pb2_grpc import StopIngestStub


@pytest.fixture
def data_dir(reachable_tmp: Path, request: pytest.FixtureRequest) -> Path:
    return reachable_tmp / f"cli-{request.node.name}"


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return int(reply.status)


def _classify(address: str, token: str | None) -> grpc.StatusCode:
    """The status of a ClassifyText call with this token (or none)."""
    metadata: tuple[tuple[str, str | bytes], ...] = (("authorization", f"Bearer {token}"),) if token else ()
    request = ClassifyTextRequest(text="STOP")
    with grpc.insecure_channel(address) as channel:
        try:
            StopIngestStub(channel).ClassifyText(request, timeout=5, metadata=metadata)
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return code
    return grpc.StatusCode.OK


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "data" / "postmaster.pid").read_text().split("\n", 1)[0])


def test_serve_embedded_database_then_stop_cleanly(data_dir: Path, spawn_server: SpawnServer) -> None:
    """First run initialises the cluster; SIGTERM drains and stops it; a second run reuses it; SIGINT."""
    first = spawn_server("--data-dir", str(data_dir))
    serving = first.wait_for("serving")
    assert any(e["msg"] == "initialising embedded PostgreSQL" for e in first.log)
    assert _health(serving["grpc_addr"]) == health_pb2.HealthCheckResponse.SERVING
    postmaster = _postmaster_pid(data_dir)
    assert not process_gone(postmaster, within_s=0)
    token_file = data_dir / "dev-token"
    token = token_file.read_text().strip()
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert any(e["msg"] == "development token created" for e in first.log)
    assert any(e["msg"].strip() == token for e in first.log if "level" not in e)  # printed on the terminal
    assert not [e for e in first.log if "level" in e and token in str(e)]  # never in the JSON log
    assert _classify(serving["grpc_addr"], token) == grpc.StatusCode.OK
    assert _classify(serving["grpc_addr"], None) == grpc.StatusCode.UNAUTHENTICATED

    assert first.stop(signal.SIGTERM) == 0
    first.wait_for("stopped")
    assert any(e["msg"] == "embedded PostgreSQL stopped" for e in first.log)
    assert process_gone(postmaster)
    assert not (data_dir / "pg" / "data" / "postmaster.pid").exists()

    second = spawn_server("--data-dir", str(data_dir), "--insecure-no-auth")
    serving = second.wait_for("serving")
    assert not any(e["msg"] == "initialising embedded PostgreSQL" for e in second.log)
    assert any(e["msg"].startswith("AUTHENTICATION IS OFF") and e["level"] == "WARNING" for e in second.log)
    assert serving["auth"] == "OFF"
    assert _health(serving["grpc_addr"]) == health_pb2.HealthCheckResponse.SERVING
    assert _classify(serving["grpc_addr"], None) == grpc.StatusCode.OK
    postmaster = _postmaster_pid(data_dir)
    assert second.stop(signal.SIGINT) == 0
    assert process_gone(postmaster)


def test_invalid_setting_is_refused_with_its_name(data_dir: Path) -> None:
    result = subprocess.run(
        [STOPGATE, "serve", "--data-dir", str(data_dir)],
        env={**os.environ, "STOPGATE_GRPC_ADDR": "nowhere"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid STOPGATE_GRPC_ADDR='nowhere'" in result.stderr
    assert not data_dir.exists()


def test_missing_postgresql_binaries_give_one_clear_error(data_dir: Path) -> None:
    result = subprocess.run(
        [STOPGATE, "serve", "--data-dir", str(data_dir)],
        env={**os.environ, "STOPGATE_PG_BINDIR": str(data_dir / "no-such-bin")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "holds no initdb and pg_ctl" in result.stderr


def test_migrate_command_on_a_current_database(database_url: str) -> None:
    result = subprocess.run(
        [STOPGATE, "migrate", "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "applied migrations: none (schema is current)" in result.stdout


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"]])
def test_help(command: list[str]) -> None:
    result = subprocess.run(
        [STOPGATE, *command, "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    assert "usage: stopgate" in result.stdout
    if command:
        assert "STOPGATE_DATABASE_URL" in result.stdout
