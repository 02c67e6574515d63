"""Named queries: `:name` parameters become asyncpg's `$n`, and a query is bound by name or not at all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import stopgate_server.store.queries as queries
from stopgate_server.store.queries import load, parse

QUERIES_FILE = Path(queries.__file__).with_name("queries.sql")


def test_names_become_positions_in_order_of_first_use() -> None:
    query = parse(
        "q",
        "-- the window :ignored_in_comments\n"
        "SELECT * FROM t WHERE a = :licence_id AND b = ANY(:phones::text[]) AND c <> :licence_id",
    )
    assert query.parameters == ("licence_id", "phones")
    assert query.sql.endswith("WHERE a = $1 AND b = ANY($2::text[]) AND c <> $1")
    assert "-- the window :ignored_in_comments" in query.sql


def test_casts_and_words_with_colons_are_not_parameters() -> None:
    query = parse("q", "SELECT now()::date, 'a:b', x::interval FROM t")
    assert query.parameters == ()
    assert query.sql == "SELECT now()::date, 'a:b', x::interval FROM t"


def test_bind_gives_the_arguments_in_order() -> None:
    query = parse("q", "SELECT :b, :a")
    assert query.bind(a=1, b=2) == ("SELECT $1, $2", 2, 1)


@pytest.mark.parametrize("values", [{"a": 1}, {"a": 1, "b": 2, "c": 3}, {"a": 1, "c": 3}])
def test_a_missing_or_unknown_name_is_refused_before_postgresql_is_asked(values: dict[str, int]) -> None:
    with pytest.raises(TypeError, match=r"query q takes \['a', 'b'\]"):
        parse("q", "SELECT :a, :b").bind(**values)


def test_a_name_used_twice_in_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "queries.sql"
    path.write_text("-- name: ping\nSELECT 1;\n-- name: ping\nSELECT 2;\n")
    with pytest.raises(ValueError, match="used twice"):
        load(path)


def test_no_query_of_the_project_is_written_with_positional_parameters() -> None:
    """A `$1` written by hand would bypass the names, and take the place of the first named parameter."""
    code = [line.partition("--")[0] for line in QUERIES_FILE.read_text().splitlines()]
    assert [line for line in code if re.search(r"\$\d", line)] == []
