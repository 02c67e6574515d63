"""The client distribution's dependencies as client/pyproject.toml declares them: the one place the tests read
the supported range from (the stubs' version checks, the oldest and newest environments of the e2e test)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPOSITORY = Path(__file__).resolve().parents[1]
CLIENT_PYPROJECT = REPOSITORY / "client" / "pyproject.toml"


def declared() -> list[str]:
    """The dependency lines, as written."""
    lines: list[str] = tomllib.loads(CLIENT_PYPROJECT.read_text())["project"]["dependencies"]
    return lines


def requirements() -> dict[str, Requirement]:
    """The dependencies by distribution name."""
    return {requirement.name: requirement for requirement in map(Requirement, declared())}


def floor(name: str) -> Version:
    """The oldest version of a dependency the client supports: its `>=` bound."""
    (bound,) = [spec.version for spec in requirements()[name].specifier if spec.operator == ">="]
    return Version(bound)


def floors() -> dict[str, Version]:
    """The oldest supported version of every dependency."""
    return {name: floor(name) for name in requirements()}
