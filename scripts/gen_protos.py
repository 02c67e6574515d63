"""Generate the Python stubs of protos/ into client/stopgate/v1 (`make proto`), or check they are current.

`--check` regenerates into a temporary directory and fails when anything differs from the committed files,
so a contract change can never land without its stubs. The contracts' one googleapis import,
google/rpc/status.proto, is read from third_party/googleapis, the copy buf reads too.

The generator's version is the oldest runtime the stubs load on: a `_pb2.py` refuses a protobuf older than
the protoc that wrote it, a `_pb2_grpc.py` a grpcio older than its grpcio-tools. So the stubs are written by
a pinned, older grpcio-tools (GRPCIO_TOOLS), whose protoc is no newer than the client's protobuf floor
(client/README.md, Supported versions). It requires a protobuf older than the server's, so it is installed
on its own under .build/ on first use (one wheel, from the package index), not into the environment.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUTPUT = ROOT / "client"
GENERATED_DIR = "stopgate/v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
GOOGLEAPIS_PROTOS = ROOT / "third_party" / "googleapis"
# Its protoc is 33.5: the stubs need protobuf >= 6.33.5 and grpcio >= 1.81.1, which
# tests/unit/test_stub_versions.py holds within the range of client/pyproject.toml.
GRPCIO_TOOLS = "1.81.1"
GENERATOR = ROOT / ".build" / f"grpcio-tools-{GRPCIO_TOOLS}"
WELL_KNOWN_PROTOS = GENERATOR / "grpc_tools" / "_proto"


def install_generator() -> None:
    """Put grpcio-tools GRPCIO_TOOLS in GENERATOR, unless it is there. Its compiler is self-contained (it
    imports neither grpcio nor protobuf), so the wheel alone is enough: no dependencies, no environment."""
    if (GENERATOR / "grpc_tools" / "protoc.py").exists():
        return
    print(f"installing grpcio-tools {GRPCIO_TOOLS} into {GENERATOR.relative_to(ROOT)}", file=sys.stderr)
    GENERATOR.parent.mkdir(parents=True, exist_ok=True)
    # Installed next to its final place and renamed, so that an interrupted install is never taken as done.
    with tempfile.TemporaryDirectory(dir=GENERATOR.parent) as tmp:
        staged = Path(tmp) / GENERATOR.name
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            f"--target={staged}",
            f"grpcio-tools=={GRPCIO_TOOLS}",
        ]
        if subprocess.run(command, check=False).returncode != 0:
            raise SystemExit(f"could not install grpcio-tools {GRPCIO_TOOLS} (pip's error is above)")
        try:
            staged.rename(GENERATOR)
        except OSError:
            if not GENERATOR.exists():  # else another run installed it meanwhile
                raise


def generate(out: Path) -> None:
    bin_dir = Path(sys.executable).parent
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTOS}",
        f"--proto_path={GOOGLEAPIS_PROTOS}",
        f"--proto_path={WELL_KNOWN_PROTOS}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    # mypy-protobuf prints a line per file; show protoc's output only when it fails.
    # GENERATOR first on the path: its grpc_tools, not one the environment may have.
    environment = {**os.environ, "PYTHONPATH": str(GENERATOR)}
    result = subprocess.run(command, cwd=PROTOS, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(result.returncode)


def generated_files(base: Path) -> set[str]:
    return {p.name for p in (base / GENERATED_DIR).iterdir() if p.name.endswith(GENERATED_SUFFIXES)}


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        expected, committed = generated_files(fresh), generated_files(OUTPUT)
        drift = sorted(expected ^ committed)
        drift += [
            name
            for name in sorted(expected & committed)
            if not filecmp.cmp(fresh / GENERATED_DIR / name, OUTPUT / GENERATED_DIR / name, shallow=False)
        ]
    if drift:
        print("generated stubs are out of date, run `make proto`: " + ", ".join(drift), file=sys.stderr)
        return 1
    print(f"generated stubs are current ({len(committed)} files)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed stubs are stale")
    args = parser.parse_args()
    install_generator()
    if args.check:
        return check()
    for name in generated_files(OUTPUT):
        (OUTPUT / GENERATED_DIR / name).unlink()
    generate(OUTPUT)
    print(f"generated {len(generated_files(OUTPUT))} files in {OUTPUT / GENERATED_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
