"""The named queries of queries.sql, loaded once: `QUERIES["find_blocks"]`.

A query names its parameters (`:licence_id`), and callers pass them by name:
`await pool.fetch(*QUERIES["find_blocks"].bind(licence_id=..., shortcode=..., phones=...))`. The names
become asyncpg's `$1..$n` when the file is loaded; a missing or unknown name raises before PostgreSQL is
asked, so a statement and its callers cannot drift apart silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
# `:name`, but not a cast (`::text`) and not inside a word
_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Query:
    """One named query: its SQL with positional parameters, and the parameters' names in order."""

    name: str
    sql: str
    parameters: tuple[str, ...]

    def bind(self, **values: object) -> tuple[str, *tuple[object, ...]]:
        """The SQL and its arguments in order, to pass on as `fetch(*query.bind(...))`."""
        if values.keys() != set(self.parameters):
            raise TypeError(f"query {self.name} takes {sorted(self.parameters)}, got {sorted(values)}")
        return (self.sql, *(values[name] for name in self.parameters))


def parse(name: str, text: str) -> Query:
    """A query written with `:name` parameters (SQL comments are left as they are)."""
    parameters: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match[1] not in parameters:
            parameters.append(match[1])
        return f"${parameters.index(match[1]) + 1}"

    lines = []
    for line in text.splitlines():
        code, dashes, comment = line.partition("--")
        lines.append(_PARAMETER.sub(positional, code) + dashes + comment)
    return Query(name, "\n".join(lines).strip(), tuple(parameters))


def load(path: Path) -> dict[str, Query]:
    """Split a file of `-- name: NAME` blocks into {NAME: Query}."""
    parts = _NAME.split(path.read_text())
    names = parts[1::2]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: a query name is used twice")
    return {name: parse(name, sql) for name, sql in zip(names, parts[2::2], strict=True)}


QUERIES = load(Path(__file__).with_name("queries.sql"))
