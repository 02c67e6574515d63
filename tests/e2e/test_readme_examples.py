"""The examples of README.md and client/README.md, run as written against a live server (only its address
is substituted), so that they cannot rot."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from processes import CLI, REPOSITORY, run
from stopgate_server.app import Application

DOCUMENTED_ADDRESS = "127.0.0.1:50051"


def blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.DOTALL)


@pytest.mark.parametrize("readme", ["README.md", "client/README.md"])
async def test_python_examples_run(readme: str, app: Application, api_token: str) -> None:
    examples = blocks(REPOSITORY / readme, "python")
    assert examples
    for example in examples:
        code = example.replace(DOCUMENTED_ADDRESS, f"127.0.0.1:{app.grpc_port}")
        result = await run(sys.executable, "-c", code, env={"STOPGATE_TOKEN": api_token})
        assert result.code == 0, f"{readme} example failed:\n{example}\n{result.err}"


async def test_cli_examples_run(app: Application, api_token: str, tmp_path: Path) -> None:
    (example,) = [b for b in blocks(REPOSITORY / "client/README.md", "sh") if "stopgate-cli" in b]
    script = example.replace(DOCUMENTED_ADDRESS, f"127.0.0.1:{app.grpc_port}")
    script = script.replace("stopgate-cli ", f"{CLI} ")
    script = script.replace("$(cat .stopgate/dev-token)", api_token)
    result = await run("bash", "-euo", "pipefail", "-c", f"cd {tmp_path}\n{script}")
    assert result.code == 0, result.err
    assert "1 row imported from operator-stops.csv: 1 DUPLICATE" in result.out


VENV_BIN = Path(sys.executable).parent
GRPCURL = shutil.which("grpcurl", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.skipif(GRPCURL is None, reason="grpcurl is not installed (README, Calling it: where to get it)")
async def test_grpcurl_examples_run(app: Application, api_token: str, tmp_path: Path) -> None:
    """README's grpcurl session, as written, in a directory holding the development token `make run` saves:
    reflection lists the services, and the authenticated CheckBatch answers."""
    (example,) = [b for b in blocks(REPOSITORY / "README.md", "sh") if "grpcurl" in b]
    script = example.replace(DOCUMENTED_ADDRESS, f"127.0.0.1:{app.grpc_port}")
    script = script.replace("127.0.0.1:9464", f"127.0.0.1:{app.metrics_port}")
    (tmp_path / ".stopgate").mkdir()
    (tmp_path / ".stopgate" / "dev-token").write_text(api_token)
    assert GRPCURL is not None
    path = f"{Path(GRPCURL).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = await run("bash", "-euo", "pipefail", "-c", f"cd {tmp_path}\n{script}", env={"PATH": path})
    assert result.code == 0, result.err
    assert "stopgate.v1.QuarantineCheck" in result.out
    assert '"e164": "+33612345678"' in result.out
    assert '"verdict": "VERDICT_ALLOW"' in result.out
    assert '"status": "SERVING"' in result.out
    assert 'grpc_method="CheckBatch"' in result.out  # the call above, counted in the metrics
