"""Every RPC of the stopgate.v1 contracts, taken from the server's own service table, for tests that go
over all of them (authorisation, fuzzing, the client's surface)."""

from __future__ import annotations

from google.protobuf.descriptor import MethodDescriptor
from stopgate_server.app import SERVICES

METHODS: list[tuple[str, MethodDescriptor]] = [
    (f"/{service.full_name}/{method.name}", method) for service, _ in SERVICES for method in service.methods
]
"""(full method path "/stopgate.v1.Service/Method", its descriptor) of every RPC."""
METHOD_IDS = [path for path, _ in METHODS]
ENDLESS_STREAMS = frozenset({"/stopgate.v1.Reporting/WatchBlocklistChanges"})
"""Server streams that end only when their caller cancels them (or the server stops): a test reads their
first response, then cancels."""
