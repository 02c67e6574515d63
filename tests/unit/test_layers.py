"""The server's layers: api/ (servicers) → usecases/ → store/ (PostgreSQL), and domain/ beneath them all.
Read from the source's imports, so that a shortcut cannot hide behind a function-level import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).parents[2] / "server" / "stopgate_server"


def imported_modules(package: str, root: Path = SERVER) -> dict[str, set[str]]:
    """Each module of a package → every module it imports, wherever in the file."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                # `from stopgate_server import store` imports stopgate_server.store; relative imports are
                # not used in the server, and would be named with their dots, never allowed
                module = "." * node.level + (node.module or "")
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(root))] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...], root: Path = SERVER) -> dict[str, list[str]]:
    return {
        module: sorted(name for name in names if name.startswith(forbidden))
        for module, names in imported_modules(package, root).items()
        if any(name.startswith(forbidden) for name in names)
    }


def test_the_servicers_import_neither_the_stores_nor_asyncpg() -> None:
    assert imported_modules("api"), "no servicer found: the test reads the wrong directory"
    assert offenders("api", ("asyncpg", "stopgate_server.store")) == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("usecases", ("stopgate_server.api", "grpc", "stopgate.v1", "google.protobuf")),
        ("store", ("stopgate_server.api", "stopgate_server.usecases", "grpc", "stopgate.v1")),
        (
            "domain",
            ("stopgate_server.api", "stopgate_server.usecases", "stopgate_server.store", "asyncpg", "grpc"),
        ),
    ],
)
def test_no_layer_reaches_up_or_across(package: str, forbidden: tuple[str, ...]) -> None:
    """Use cases know no protobuf, stores know no use case, and the domain does no I/O."""
    assert imported_modules(package)
    assert offenders(package, forbidden) == {}


def test_a_function_level_import_is_found(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "sneaky.py").write_text(
        "def f():\n    from stopgate_server.store.queries import QUERIES\n    import asyncpg\n"
    )
    found = offenders("api", ("asyncpg", "stopgate_server.store"), tmp_path)
    assert found == {
        "api/sneaky.py": ["asyncpg", "stopgate_server.store.queries", "stopgate_server.store.queries.QUERIES"]
    }


def test_a_package_imported_from_its_parent_is_found(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "sneaky.py").write_text("from stopgate_server import store\n")
    assert offenders("api", ("stopgate_server.store",), tmp_path) == {
        "api/sneaky.py": ["stopgate_server.store"]
    }


def test_relative_imports_are_not_used() -> None:
    relative = {
        module: sorted(name for name in names if name.startswith("."))
        for package in ("api", "usecases", "store", "domain", "obs")
        for module, names in imported_modules(package).items()
        if any(name.startswith(".") for name in names)
    }
    assert relative == {}
