"""What this build is: stopgate's version (written once, in the client package, which both distributions
ship) and the versions of what it runs on. `stopgate --version` prints them; every server process exports
them as the `stopgate_build_info` metric."""

from __future__ import annotations

import platform

import grpc
from google import protobuf
from stopgate import __version__


def build_info() -> dict[str, str]:
    """The labels of `stopgate_build_info`, like Prometheus's own `prometheus_build_info`."""
    return {
        "version": __version__,
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": protobuf.__version__,
    }


def version_text() -> str:
    """`stopgate <version>`, then on a second line what it runs on (for bug reports)."""
    info = build_info()
    return (
        f"stopgate {info['version']}\n"
        f"Python {info['python']}, grpcio {info['grpcio']}, protobuf {info['protobuf']}\n"
    )
