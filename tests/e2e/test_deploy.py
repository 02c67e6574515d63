"""The release kit under deploy/: the systemd unit and the OCI image.

The unit passes `systemd-analyze verify` and its hardening score, and its stop timeout covers the server's
drain. The image is built as `make image` builds it (Debian packages and this checkout's wheels, no base
image pulled); containers cannot run on these machines (no cgroup rights), so its entrypoint is run from
the image's own filesystem, mounted read-only by podman, in a chroot as the image's user with the tmpfs
mounts a container runtime gives it (what `podman run --read-only` does), against the test PostgreSQL.
The image tests need root, mmdebstrap and podman (`.ci/run` installs them); the build takes minutes the
first time, then reuses the root filesystem cached under .build/oci.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stopgate
from processes import REPOSITORY, STOPGATE, ServerProcess
from stopgate import Client
from stopgate.v1 import common_pb2
from stopgate.v1 import quarantine_check_pb2 as qc
from stopgate_server import config
from stopgate_server.workers import STOP_MARGIN_S

UNIT = REPOSITORY / "deploy" / "systemd" / "stopgate.service"
ENV_EXAMPLE = REPOSITORY / "deploy" / "systemd" / "stopgate.env"
BUILD = REPOSITORY / "deploy" / "oci" / "build.sh"
BUILD_TIMEOUT_S = 900  # a first build: mmdebstrap, wheels, podman build
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1  # linux/prctl.h, Linux 6.3+

# Run as the image's entrypoint: a private mount namespace (everything mounted here goes when the process
# ends), the mounts a container runtime makes over the read-only image, then chroot as the image's user.
CONTAINER_LIKE = r"""
root=$1 user=$2; shift 2
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs "$root/run"
mount -t tmpfs -o nosuid,mode=755 tmpfs "$root/dev"
for node in null zero full random urandom; do
  touch "$root/dev/$node" && mount --bind "/dev/$node" "$root/dev/$node"
done
exec chroot --userspec="$user" "$root" "$@"
"""

# Refuse writable-and-executable memory (what the unit's MemoryDenyWriteExecute= enforces), then exec.
WITHOUT_WRITE_EXECUTE = f"""
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE) failed: errno " + str(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])
"""


def _unit_lines(path: Path) -> list[tuple[str, str]]:
    """The unit's `Key=value` lines, in order (a key may repeat, so no configparser)."""
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if line and line[0] not in "#;[")
    return [(key, value) for key, value in pairs]


def _unit_value(key: str) -> str:
    values = [value for name, value in _unit_lines(UNIT) if name == key]
    assert len(values) == 1, f"{key} is set {len(values)} times in {UNIT.name}"
    return values[0]


@pytest.fixture
def verifiable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's `stopgate`: `systemd-analyze verify` checks
    that the command exists, and there is no /opt/stopgate here."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not found (Debian: apt-get install systemd)")
    installed = _unit_value("ExecStart").split()[0]
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(installed, STOPGATE))
    return unit


def test_unit_passes_systemd_analyze_verify(verifiable_unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(verifiable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # unknown or misspelt keys are only warned about


def test_unit_hardening_keeps_its_exposure_score(verifiable_unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(verifiable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"exposure over 2.0: {result.stdout[-3000:]}"


def test_unit_stops_after_the_drain_the_server_does() -> None:
    """systemd's SIGKILL must come after the supervisor's own: drain delay + grace + its margin."""
    assert _unit_value("Type") == "exec"  # the server never calls sd_notify
    assert _unit_value("KillSignal") == "SIGTERM"
    assert _unit_value("KillMode") == "mixed"  # the supervisor signals its workers itself
    timeout_s = float(_unit_value("TimeoutStopSec").removesuffix("s"))
    defaults = config.Settings()
    assert timeout_s > defaults.drain_delay_s + defaults.shutdown_grace_s + STOP_MARGIN_S


def test_env_example_sets_only_real_settings_with_valid_values() -> None:
    """A misspelt variable would be ignored silently; every name in the example is a setting, and its
    uncommented values load."""
    text = ENV_EXAMPLE.read_text()
    named = set(re.findall(r"^#?(STOPGATE_[A-Z0-9_]+)=", text, re.MULTILINE))
    assert named - {option.env for option in config.SETTINGS} == set()
    values = dict(re.findall(r"^(STOPGATE_[A-Z0-9_]+)=(.*)$", text, re.MULTILINE))
    assert "STOPGATE_DATABASE_URL" in values
    config.load({}, values)


@dataclass(frozen=True)
class Image:
    tag: str
    config: dict[str, Any]
    labels: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config["Env"])

    @property
    def command(self) -> list[str]:
        return [*self.config["Entrypoint"], *self.config["Cmd"]]


def _missing_image_tools() -> str | None:
    if os.geteuid() != 0:
        return "building the image, `podman image mount` and chroot need root"
    missing = [tool for tool in ("mmdebstrap", "podman", "unshare", "chroot") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found (Debian: apt-get install mmdebstrap podman; .ci/run does)"
    return None


def _podman(*args: str) -> str:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """The image, built from this checkout by deploy/oci/build.sh under a tag of its own, removed after."""
    if reason := _missing_image_tools():
        pytest.skip(reason)
    tag = f"localhost/stopgate:test-{uuid.uuid4().hex[:8]}"
    build = subprocess.run(
        [str(BUILD), "--tag", tag, "--", "--layers=false"],  # no cached layers left behind
        env={**os.environ, "PYTHON": sys.executable},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if build.returncode != 0:
        pytest.fail(f"deploy/oci/build.sh failed:\n{build.stdout[-5000:]}")
    try:
        inspected = json.loads(_podman("image", "inspect", tag))[0]
        yield Image(tag, inspected["Config"], inspected["Config"].get("Labels") or {})
    finally:
        _podman("image", "rm", tag)


@pytest.fixture
def image_root(image: Image) -> Iterator[Path]:
    """The image's filesystem, mounted read-only."""
    root = Path(_podman("image", "mount", image.tag).strip())
    try:
        yield root
    finally:
        _podman("image", "unmount", image.tag)


def _refuses_write_execute() -> bool:
    """Whether this kernel can refuse writable-and-executable memory to a process (PR_SET_MDWE)."""
    wrapped = [sys.executable, "-c", WITHOUT_WRITE_EXECUTE, "true"]
    return subprocess.run(wrapped, capture_output=True, timeout=30, check=False).returncode == 0


def _as_entrypoint(image: Image, root: Path, *, refuse_write_execute: bool = False) -> list[str]:
    """The command line that runs the image's entrypoint and command from its filesystem."""
    command = ["unshare", "--mount", "--", "sh", "-c", CONTAINER_LIKE, "sh", str(root), image.config["User"]]
    command += image.command
    return [sys.executable, "-c", WITHOUT_WRITE_EXECUTE, *command] if refuse_write_execute else command


class ImageServer(ServerProcess):
    """The image's entrypoint in a child process, its JSON log read as it comes (ServerProcess's own
    constructor starts this environment's `stopgate` instead)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines = queue.Queue()
        self.log = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


class PostgresOverTcp:
    """127.0.0.1:PORT relayed to the test PostgreSQL's unix socket, whose directory only the cluster's user
    may enter: the image's server reaches it over TCP, as it reaches PostgreSQL in production."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        query = parse_qs(parts.query)
        self.socket = f"{query['host'][0]}/.s.PGSQL.{query['port'][0]}"
        self.database = parts.path
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.start()
        assert ready.wait(timeout=10), "the relay did not start"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}{self.database}"

    async def _serve(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with await asyncio.start_server(self._relay, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await self._stop.wait()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_unix_connection(self.socket)
            await asyncio.gather(_pipe(client_reader, writer), _pipe(reader, client_writer))

    def close(self) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@pytest.fixture
def postgres_over_tcp(database_url: str) -> Iterator[str]:
    relay = PostgresOverTcp(database_url)
    yield relay.url
    relay.close()


@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_image_metadata(image: Image, image_root: Path) -> None:
    """Non-root numeric user, `stopgate serve` by default, the ports it listens on exposed, the version."""
    uid, _, gid = image.config["User"].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert image.config["Entrypoint"] == ["/opt/stopgate/venv/bin/stopgate"]
    assert image.config["Cmd"] == ["serve"]
    listening = {
        image.env[name].rpartition(":")[2] for name in ("STOPGATE_GRPC_ADDR", "STOPGATE_METRICS_ADDR")
    }
    assert set(image.config["ExposedPorts"]) == {f"{port}/tcp" for port in listening}
    assert image.env["STOPGATE_WORKERS"] == "1"
    assert image.labels["org.opencontainers.image.version"] == stopgate.__version__
    assert image.labels["org.opencontainers.image.revision"]
    passwd = (image_root / "etc" / "passwd").read_text()
    assert re.search(rf"^stopgate:x:{uid}:{gid}:", passwd, re.MULTILINE)
    assert not (image_root / "usr" / "lib" / "postgresql").exists()
    assert not list((image_root / "opt" / "stopgate" / "venv").glob("lib/python3*/site-packages/pip"))


@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_image_serves_check_batch_and_stops_on_sigterm(
    image: Image, image_root: Path, postgres_over_tcp: str, api_token: str
) -> None:
    server = ImageServer(
        _as_entrypoint(image, image_root, refuse_write_execute=_refuses_write_execute()),
        {
            **image.env,
            "STOPGATE_DATABASE_URL": postgres_over_tcp,
            "STOPGATE_GRPC_ADDR": "127.0.0.1:0",  # free ports: the machine is shared
            "STOPGATE_METRICS_ADDR": "127.0.0.1:0",
        },
    )
    try:
        serving = server.wait_for("serving")
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        uid = image.config["User"].partition(":")[0]
        assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.MULTILINE)
        assert Path(f"/proc/{server.process.pid}/root").readlink() == image_root
        with Client(serving["grpc_addr"], token=api_token) as client:
            client.quarantine_numbers("acme", ["+33612345678"], actor="deploy-test", reason="test")
            reply = client.check_batch(
                "acme",
                ["+33612345678", "+33612345679"],
                sender="ACME",
                category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            )
        assert [result.verdict for result in reply.results] == [qc.VERDICT_BLOCK, qc.VERDICT_ALLOW]
        with urllib.request.urlopen(f"http://{serving['metrics_addr']}/metrics", timeout=10) as metrics:
            assert 'grpc_method="CheckBatch"' in metrics.read().decode()

        assert server.stop(signal.SIGTERM) == 0  # after the image's default drain delay
        server.wait_for("stopped")
    finally:
        server.kill()


@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_image_without_database_url_says_what_to_set(image: Image, image_root: Path) -> None:
    """The image holds no PostgreSQL: without STOPGATE_DATABASE_URL the server stops at once, saying so."""
    result = subprocess.run(
        _as_entrypoint(image, image_root),
        env=image.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "set STOPGATE_DATABASE_URL" in result.stderr


def test_write_execute_wrapper_refuses_such_memory() -> None:
    """Where the kernel can, the wrapper the image's server runs under does refuse writable-and-executable
    memory: the server serving under it shows the unit's MemoryDenyWriteExecute= is safe."""
    if not _refuses_write_execute():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    probe = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_WRITE_EXECUTE, sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "PermissionError" in result.stderr
