"""The generated stubs load on the oldest versions the client declares: each `_pb2.py` refuses a protobuf
older than the protoc that wrote it and each `_pb2_grpc.py` a grpcio older than its grpcio-tools, so the
generator of scripts/gen_protos.py must be no newer than client/pyproject.toml's floors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import stopgate.v1
from client_dependencies import REPOSITORY, declared, floor, requirements
from packaging.version import Version

STUBS = Path(stopgate.v1.__path__[0])
MESSAGE_MODULES = sorted(STUBS.glob("*_pb2.py"))
SERVICE_MODULES = sorted(STUBS.glob("*_pb2_grpc.py"))
PROTOBUF_CHECK = re.compile(
    r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),\s*''"
)
GRPC_CHECK = re.compile(r"^GRPC_GENERATED_VERSION = '([\d.]+)'$", re.MULTILINE)


def test_every_stub_module_is_seen() -> None:
    assert len(MESSAGE_MODULES) == len(SERVICE_MODULES) == 5


@pytest.mark.parametrize("module", MESSAGE_MODULES, ids=lambda path: path.name)
def test_message_stubs_accept_the_oldest_supported_protobuf(module: Path) -> None:
    match = PROTOBUF_CHECK.search(module.read_text())
    assert match, f"{module.name} has no protobuf runtime version check"
    assert Version(".".join(match.groups())) <= floor("protobuf")


@pytest.mark.parametrize("module", SERVICE_MODULES, ids=lambda path: path.name)
def test_service_stubs_accept_the_oldest_supported_grpcio(module: Path) -> None:
    match = GRPC_CHECK.search(module.read_text())
    assert match, f"{module.name} has no grpcio version check"
    assert Version(match.group(1)) <= floor("grpcio")


def test_protobuf_range_spans_the_maintained_and_the_active_major() -> None:
    """Below the next major, which may remove runtime APIs: the cap is raised once the client runs on it."""
    (cap,) = [spec.version for spec in requirements()["protobuf"].specifier if spec.operator == "<"]
    assert Version(cap).major == floor("protobuf").major + 2


def test_the_client_readme_states_the_declared_range() -> None:
    readme = (REPOSITORY / "client" / "README.md").read_text()
    section = readme.split("## Supported versions", 1)[1].split("\n## ", 1)[0]
    for line in declared():
        assert f"`{line}`" in section
