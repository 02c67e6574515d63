"""One stopgate server per gRPC port: a second one fails to start, naming the first.

gRPC sets SO_REUSEPORT on Linux, so without a guard a second `stopgate serve` on a port already served
binds it too and the kernel gives it part of the connections. The process that owns a port (a single
`stopgate serve`, or the supervisor of `--workers N`, whose workers share the port on purpose) first binds
a Linux abstract Unix socket named after the port. The kernel frees the name when the process ends, even
on kill -9, so a stale guard cannot exist. A second server finds the name taken, connects, reads the
owner's description (one JSON line) and fails with it.

The key is the port alone, not host and port: 0.0.0.0:P and 127.0.0.1:P overlap (one takes the other's
connections), and a host name can resolve to several addresses. Abstract socket names belong to the
network namespace, exactly as ports do: servers in different containers do not see each other's guards.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stopgate_server.config import Settings, parse_host_port

CONNECT_ATTEMPTS_S = 1.0  # a starting owner binds, then listens: give it that long to answer
READ_TIMEOUT_S = 2.0


class AddressInUse(RuntimeError):
    """Another stopgate server owns the gRPC port; the message names it."""


def guard_name(port: int) -> bytes:
    return f"\0stopgate-grpc-port-{port}".encode()


def describe_owner(settings: Settings) -> dict[str, Any]:
    """Who serves the port, for the message of a second server: never a password (nor a user name)."""
    if settings.database_url is None:
        database = f"embedded under {settings.data_dir.resolve() / 'pg'}"
    else:
        url = urlsplit(settings.database_url)
        query = parse_qs(url.query)  # libpq's ?host=/run/postgresql&port=5433 form
        host = url.hostname or query.get("host", ["localhost"])[0]
        port = url.port or query.get("port", [""])[0]
        database = f"{host}{f':{port}' if port else ''}{url.path}"
    return {
        "pid": os.getpid(),
        "grpc_addr": settings.grpc_addr,
        "workers": settings.workers,
        "database": database,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class AddressGuard:
    """The claim on a gRPC port, held while the server runs; `release` (or the process's end) frees it."""

    def __init__(self, listener: socket.socket, description: dict[str, Any]) -> None:
        self._listener = listener
        self._answer = (json.dumps(description) + "\n").encode()
        self._server: asyncio.AbstractServer | None = None

    @classmethod
    async def claim(cls, settings: Settings) -> AddressGuard | None:
        """Claim the port of settings.grpc_addr, or raise AddressInUse naming its owner. Port 0 (a free
        port, which nobody else can be serving) needs no guard: None."""
        port = parse_host_port(settings.grpc_addr)[1]
        if port == 0:
            return None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(guard_name(port))
        except OSError as exc:
            listener.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            owner = await asyncio.to_thread(_read_owner, port)
            raise AddressInUse(_taken(settings.grpc_addr, owner)) from None
        listener.listen()
        guard = cls(listener, describe_owner(settings))
        guard._server = await asyncio.start_unix_server(guard._describe, sock=listener)
        return guard

    async def _describe(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(self._answer)
            await writer.drain()
        writer.close()

    async def release(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._listener.close()


def _read_owner(port: int) -> dict[str, Any] | None:
    """The description the owner of the port's guard answers with; None if it does not answer."""
    deadline = time.monotonic() + CONNECT_ATTEMPTS_S
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(READ_TIMEOUT_S)
            try:
                probe.connect(guard_name(port))
                answer = probe.makefile("rb").readline(4096)
                owner: dict[str, Any] = json.loads(answer)
                return owner
            except ConnectionRefusedError:  # bound but not listening yet, or ending
                if time.monotonic() > deadline:
                    return None
            except (OSError, ValueError):
                return None
        time.sleep(0.05)


def _taken(address: str, owner: dict[str, Any] | None) -> str:
    if owner is None:
        who = "another stopgate server (it did not say which)"
    else:
        who = (
            f"stopgate pid {owner.get('pid')} ({owner.get('grpc_addr')}, {owner.get('workers')} worker(s),"
            f" database {owner.get('database')}, since {owner.get('started_at')})"
        )
    return f"cannot serve {address}: its port is already served by {who}; stop it or choose another port"
