"""One version for server and client: written once, printed by both commands, read by both distributions'
builds, and described in the CHANGELOG. (The live server's `stopgate_build_info` is checked in
tests/integration/test_ops_kit.py, the client wheel's build in tests/e2e/test_client_cli.py.)"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import stopgate
from processes import CLI, REPOSITORY, STOPGATE

VERSION_SOURCE = REPOSITORY / "client" / "stopgate" / "_version.py"


@pytest.mark.parametrize("command", [STOPGATE, CLI])
def test_both_commands_print_it(command: str) -> None:
    result = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"stopgate {stopgate.__version__}"


def test_the_server_also_says_what_it_runs_on() -> None:
    result = subprocess.run([STOPGATE, "--version"], capture_output=True, text=True, timeout=30, check=True)
    assert re.fullmatch(r"Python 3\.\d+\.\d+, grpcio \S+, protobuf \S+", result.stdout.splitlines()[1])


@pytest.mark.parametrize("project", [REPOSITORY, REPOSITORY / "client"])
def test_both_distributions_read_it_from_the_one_source(project: Path) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    assert (project / pyproject["tool"]["hatch"]["version"]["path"]).resolve() == VERSION_SOURCE
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert (project / "LICENSE").read_text() == (REPOSITORY / "LICENSE").read_text()


def test_the_installed_metadata_carries_it() -> None:
    installed = importlib.metadata.version("stopgate")
    assert installed == stopgate.__version__, "reinstall (`make clean install`) after changing the version"


def test_the_changelog_describes_it() -> None:
    changelog = (REPOSITORY / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d[^\]]*)\] - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)
    assert stopgate.__version__ in released
    assert "## [Unreleased]" in changelog
