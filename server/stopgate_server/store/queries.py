"""The named queries of queries.sql, loaded once: `QUERIES["ping"]`."""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load(path: Path) -> dict[str, str]:
    """Split a file of `-- name: NAME` blocks into {NAME: SQL}."""
    parts = _NAME.split(path.read_text())
    queries = {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2], strict=True)}
    if len(queries) != len(parts[1::2]):
        raise ValueError(f"{path}: a query name is used twice")
    return queries


QUERIES = load(Path(__file__).with_name("queries.sql"))
