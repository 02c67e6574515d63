"""grpc.health.v1 status that follows PostgreSQL: NOT_SERVING while it is unreachable, SERVING when back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import asyncpg
from grpc_health.v1 import health, health_pb2

from stopgate_server.obs import metrics
from stopgate_server.store.database import ping

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DatabaseHealth:
    """Probes PostgreSQL every `interval` seconds and sets the health of the server and of each service."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        services: Iterable[str],
        pool: asyncpg.Pool,
        interval: float,
    ) -> None:
        self.servicer = servicer
        self.services = ["", *services]  # "" is the whole server
        self.pool = pool
        self.interval = interval
        self.serving: bool | None = None

    async def check_once(self) -> bool:
        """Probe once, update the statuses when they change, and return whether the database answered."""
        try:
            await ping(self.pool, within_s=max(self.interval, 1.0))
            healthy, error = True, ""
        except Exception as exc:  # any failure to answer means the state cannot be established
            healthy, error = False, f"{type(exc).__name__}: {exc}"
        if healthy != self.serving:
            await self.set_all(SERVING if healthy else NOT_SERVING)
            metrics.DATABASE_UP.set(1 if healthy else 0)
            if healthy:
                log.info("database reachable: SERVING")
            else:
                log.error("database unreachable: NOT_SERVING", extra={"error": error})
            self.serving = healthy
        return healthy

    async def run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval)

    async def set_all(self, status: int) -> None:
        for service in self.services:
            await self.servicer.set(service, status)

    async def shut_down(self) -> None:
        """Report NOT_SERVING for good (load balancers stop sending calls while the server drains)."""
        with contextlib.suppress(Exception):
            await self.servicer.enter_graceful_shutdown()
