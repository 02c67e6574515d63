"""Pool connections are not reset between uses (store/database.py, keep_session), which is only right while
no SQL of stopgate's leaves state in the session for the next user of the connection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import stopgate_server

STORE = Path(stopgate_server.__file__).parent / "store"
SESSION_STATE = re.compile(
    r"""(?imx)
    ^\s*SET\s+(?!LOCAL\b)          # SET of a setting for the session (SET LOCAL ends with the transaction)
    | \bset_config\s*\(            # the same as a function (its third argument is easy to get wrong)
    | ^\s*(UN)?LISTEN\b            # a subscription the next user would receive
    | \bpg_(try_)?advisory_lock    # a lock held until the session ends (pg_advisory_xact_lock is fine)
    | \bWITH\s+HOLD\b              # a cursor that outlives its transaction
    | ^\s*PREPARE\b                # a named statement of the session (asyncpg's own are managed by it)
    | \bTEMP(ORARY)?\s+TABLE\b     # a table of the session
    """
)


def sql_files() -> list[Path]:
    return sorted(STORE.rglob("*.sql"))


def test_the_sql_files_are_found() -> None:
    names = {path.name for path in sql_files()}
    assert {"queries.sql", "schema.sql", "0001_initial.sql"} <= names


@pytest.mark.parametrize("path", sql_files(), ids=lambda path: path.name)
def test_no_statement_leaves_session_state(path: Path) -> None:
    found = [match.group(0).strip() for match in SESSION_STATE.finditer(path.read_text())]
    assert not found, f"{path.name} keeps session state: {found}"


@pytest.mark.parametrize(
    "statement",
    [
        "SET statement_timeout = 0;",
        "  set search_path TO x;",
        "SELECT set_config('work_mem', '1GB', false);",
        "LISTEN stopgate;",
        "SELECT pg_advisory_lock(1);",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1;",
        "CREATE TEMP TABLE t (x int);",
    ],
)
def test_the_check_sees_session_state(statement: str) -> None:
    assert SESSION_STATE.search(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SET LOCAL statement_timeout = 0;",
        "UPDATE t SET x = 1;",
        "    ON CONFLICT (a) DO UPDATE SET\n        b = excluded.b",
        "SELECT pg_advisory_xact_lock(1);",
        "SELECT pg_notify('stopgate_blocklist', $1);",
    ],
)
def test_the_check_allows_transaction_scoped_statements(statement: str) -> None:
    assert not SESSION_STATE.search(statement)
