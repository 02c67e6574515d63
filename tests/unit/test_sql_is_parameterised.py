"""SQL is written in queries.sql with bound parameters (`:name`): no statement is built from strings."""

from __future__ import annotations

import ast
from pathlib import Path

import stopgate_server

SQL_METHODS = {
    "execute",
    "executemany",
    "fetch",
    "fetchrow",
    "fetchval",
    "cursor",
    "prepare",
    "copy_to_table",
}
SERVER = Path(stopgate_server.__file__).parent


def built_sql(root: Path) -> list[str]:
    """Every database call under `root` whose statement is an f-string, a concatenation or a .format()."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            statement = node.args[0]
            built = isinstance(statement, ast.JoinedStr | ast.BinOp) or (
                isinstance(statement, ast.Call)
                and isinstance(statement.func, ast.Attribute)
                and statement.func.attr == "format"
            )
            if node.func.attr in SQL_METHODS and built:
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_statement_is_built_from_strings() -> None:
    assert built_sql(SERVER) == []


def test_the_check_sees_a_built_statement(tmp_path: Path) -> None:
    (tmp_path / "leak.py").write_text(
        "async def leak(connection, phone):\n"
        '    await connection.fetch(f"SELECT * FROM quarantine WHERE phone = {phone}")\n'
    )
    assert built_sql(tmp_path) == ["leak.py:2"]
