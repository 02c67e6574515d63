"""Helpers of the end-to-end tests: `stopgate serve` in a child process, its JSON log read as it comes;
commands run without blocking the test's event loop."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

STOPGATE = str(Path(sys.executable).with_name("stopgate"))
CLI = str(Path(sys.executable).with_name("stopgate-cli"))
REPOSITORY = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60


class ServerProcess:
    """`stopgate serve` in a child process, its JSON log lines read as they come. It stops accepting calls
    as soon as it is signalled (no drain delay) unless a test sets one."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        # One process unless a test asks for workers: the default (one per core) depends on the machine.
        workers = () if "--workers" in args else ("--workers", "1")
        self.process = subprocess.Popen(
            [
                STOPGATE,
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
                *workers,
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"STOPGATE_DRAIN_DELAY_S": "0", **os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, message: str, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            entry = json.loads(line) if line.startswith("{") else {"msg": line.rstrip()}
            self.log.append(entry)
            if entry["msg"] == message:
                return entry
        pytest.fail(f"no log line {message!r}; got {[e['msg'] for e in self.log]}")

    def exit_and_output(self, timeout: float) -> tuple[int, str]:
        """Wait for the process to end by itself (SIGTERM and a failure if it does not within `timeout`);
        its exit status and the output not read yet."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGTERM)
            pytest.fail(f"the server did not exit by itself within {timeout} s")
        self._reader.join(timeout=10)
        lines = []
        while not self.lines.empty():
            lines.append(self.lines.get())
        return code, "".join(lines)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


SpawnServer = Callable[..., ServerProcess]


def process_gone(pid: int, within_s: float = 10) -> bool:
    """Whether a process has ended within `within_s` (a zombie, exited but not yet reaped, has ended)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@dataclass
class Run:
    """How a command ended: exit status and its decoded output."""

    code: int
    out: str
    err: str


async def run(*command: str, stdin: str = "", env: dict[str, str] | None = None) -> Run:
    """A command in a child process, awaited so that the in-process server keeps serving meanwhile."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=240)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())
