"""`stopgate-cli` as a shell user runs it: a separate process against a live server; and the client wheel
installed alone in a clean virtual environment."""

from __future__ import annotations

import csv
import importlib.metadata
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import client_dependencies
import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from processes import CLI, REPOSITORY, Run, run
from stopgate_server.app import Application


@pytest.fixture
def target(app: Application) -> str:
    return f"127.0.0.1:{app.grpc_port}"


Cli = Callable[..., Awaitable[Run]]


@pytest.fixture
def cli(target: str, api_token: str) -> Cli:
    """`stopgate-cli --target <the test server> ARGS...`, with the test token in STOPGATE_TOKEN."""

    async def call(*args: str, stdin: str = "") -> Run:
        return await run(CLI, "--target", target, *args, stdin=stdin, env={"STOPGATE_TOKEN": api_token})

    return call


async def test_check_quarantine_status_release(cli: Cli) -> None:
    quarantined = await cli("quarantine", "acme", "+33612345678", "--actor", "ana", "--reason", "complaint")
    assert (quarantined.code, quarantined.out) == (0, "+33612345678\t+33612345678\tQUARANTINED\n")

    checked = await cli(
        "check", "acme", "-", "--sender", "36180", "--region", "FR", stdin="06 12 34 56 78\nx\n"
    )
    assert checked.code == 0
    lines = checked.out.splitlines()
    assert lines[0].startswith("06 12 34 56 78\t+33612345678\tBLOCK\tQUARANTINED\t")
    assert lines[1] == "x\t-\tINVALID\tINVALID_NUMBER"
    assert lines[2] == "2 numbers: 0 allowed, 1 blocked, 1 invalid"

    as_json = await cli("check", "acme", "+33612345678", "--sender", "36180", "--json")
    assert json.loads(as_json.out)["results"][0]["verdict"] == "VERDICT_BLOCK"

    released = await cli(
        "release",
        "acme",
        "+33612345678",
        "--actor",
        "bo",
        "--reason",
        "opt-in",
        "--consent-reference",
        "c-1",
    )
    assert released.out.split("\t")[-1] == "RELEASED\n"
    status = await cli("--json", "status", "acme", "+33612345678")
    history = json.loads(status.out)["history"]
    assert [h["action"] for h in history] == [
        "HISTORY_ACTION_MANUAL_QUARANTINE",
        "HISTORY_ACTION_MANUAL_RELEASE",
    ]


async def test_shortcode_bind_list_unbind(cli: Cli) -> None:
    bound = await cli("--json", "shortcode-bind", "acme", "36180", "--actor", "ana")
    assert bound.code == 0, bound.err
    assert json.loads(bound.out)["binding"]["shortcode"] == "36180"
    assert json.loads(bound.out)["created"] is True
    await cli("shortcode-bind", "globex", "60999", "--actor", "ana")
    listed = await cli("--json", "shortcode-list", "--licence", "acme")
    assert [(b["licence_id"], b["shortcode"]) for b in json.loads(listed.out)["bindings"]] == [
        ("acme", "36180")
    ]
    unbound = await cli("shortcode-unbind", "acme", "36180", "--actor", "ana")
    assert unbound.code == 0, unbound.err
    assert unbound.out.splitlines() == ["removed: True"]
    everything = await cli("--json", "shortcode-list")
    assert [b["licence_id"] for b in json.loads(everything.out)["bindings"]] == ["globex"]
    refused = await cli("shortcode-bind", "acme", "12", "--actor", "ana")
    assert refused.code != 0
    assert "shortcode: must be a shortcode of 3 to 8 digits" in refused.err


async def test_classify_check_message_and_report(cli: Cli) -> None:
    classified = await cli("classify", "ARRET")
    assert "intent: INTENT_OPT_OUT" in classified.out.splitlines()
    message = await cli("--json", "check-message", "Promo -20%", "--country", "FR", "--sender", "ACME")
    assert json.loads(message.out)["assessment"]["mention_position"] == "MENTION_POSITION_ABSENT"
    await cli("check", "acme", "+33612340001", "--sender", "36180", "--campaign", "spring")
    report = await cli("report", "acme")
    assert report.out.splitlines()[1:] == ["spring\t1\t1\t0\t0.00"]
    one = await cli("--json", "report", "acme", "spring")
    assert json.loads(one.out)["report"]["sent_count"] == "1"  # int64 is a string in proto JSON


async def test_import_stops_is_idempotent_and_reports_rejected_rows(cli: Cli, tmp_path: Path) -> None:
    stops = tmp_path / "stops.csv"
    stops.write_text(
        "MSISDN,Shortcode,Text,Network\n"
        "+33612340001,36180,STOP,orange\n"
        "33612340002,36180,ARRET,sfr\n"
        "not-a-number,36180,STOP,x\n"
        "+447700900123,,,\n"
    )
    first = await cli("import-stops", str(stops), "--licence", "acme")
    assert first.code == 1  # a row was rejected
    assert first.out.splitlines() == [
        f"4 rows imported from {stops}: 3 QUARANTINED, 1 REJECTED",
        "  line 4: invalid request: phone_number: not a valid phone number",
    ]
    assert "4/4 rows (100%)" in first.err
    assert first.err.splitlines()[-1] == "stopgate-cli: 1 of 4 rows rejected"

    exported = tmp_path / "quarantine.csv"
    await cli("export", "quarantine", "acme", "-o", str(exported))
    before = exported.read_text()
    assert sorted(row["phone_number"] for row in csv.DictReader(before.splitlines())) == [
        "+33612340001",
        "+33612340002",
        "+447700900123",
    ]

    again = await cli("--json", "import-stops", str(stops), "--licence", "acme", "--quiet")
    summary = json.loads(again.out)
    assert summary["outcomes"] == {"DUPLICATE": 3, "REJECTED": 1}
    assert summary["rejected"][0]["line"] == 4
    await cli("export", "quarantine", "acme", "-o", str(exported))
    assert exported.read_text() == before  # the second import changed nothing


async def test_export_interactions_as_csv_and_json_lines(cli: Cli, tmp_path: Path) -> None:
    await cli("check", "acme", "+33612340001", "+33612340002", "--sender", "36180", "--campaign", "spring")
    out = tmp_path / "spring.csv"
    written = await cli("export", "interactions", "acme", "spring", "--output", str(out))
    assert (written.code, written.err) == (0, f"2 rows written to {out}\n")
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [(r["phone_number"], r["status"]) for r in rows] == [
        ("+33612340001", "SENT"),
        ("+33612340002", "SENT"),
    ]
    lines = await cli("--json", "export", "interactions", "acme", "spring")
    assert [json.loads(line)["status"] for line in lines.out.splitlines()] == ["INTERACTION_STATUS_SENT"] * 2


async def test_failures_exit_non_zero_with_one_line(cli: Cli, target: str, tmp_path: Path) -> None:
    invalid = await cli("check", "", "+33612345678", "--sender", "36180")
    assert invalid.code == 1
    assert invalid.err == "stopgate-cli: INVALID_ARGUMENT: invalid request: licence_id: required\n"
    anonymous = await run(CLI, "--target", target, "classify", "STOP", env={"STOPGATE_TOKEN": ""})
    assert (anonymous.code, anonymous.err) == (
        1,
        "stopgate-cli: UNAUTHENTICATED: missing token: send `authorization: Bearer <token>`\n",
    )
    unreachable = await run(CLI, "--target", "127.0.0.1:1", "--timeout", "2", "classify", "STOP")
    assert unreachable.code == 1
    assert unreachable.err.startswith("stopgate-cli: UNAVAILABLE: ")
    assert unreachable.err.count("\n") == 1
    usage = await cli("check", "acme")
    assert usage.code == 2
    no_phone_column = tmp_path / "bad.csv"
    no_phone_column.write_text("name\nbob\n")
    bad_file = await cli("import-stops", str(no_phone_column))
    assert (bad_file.code, bad_file.err) == (
        2,
        f"stopgate-cli: {no_phone_column}: no phone number column "
        "(one of phone_number, phone, number, msisdn)\n",
    )


# The client on its own, in a fresh virtual environment: as another team installs it, on the oldest
# versions of its dependencies it declares (the floors of client/pyproject.toml) and on the newest (those
# of this environment, which `make install` fills with the newest releases the server accepts).
NEWEST = {name: Version(importlib.metadata.version(name)) for name in client_dependencies.requirements()}
TEAM_PROGRAM = Path(__file__).with_name("team_program.py")


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel ./client`, built once for the module."""
    wheels = tmp_path_factory.mktemp("wheels")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        str(wheels),
        str(REPOSITORY / "client"),
    ]
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("stopgate_client-*.whl")
    return wheel


def test_client_wheel_holds_the_client_alone(client_wheel: Path) -> None:
    """It needs only grpcio and protobuf (plus the google.rpc types), in the range client/pyproject.toml
    declares, and carries nothing of the server."""
    with zipfile.ZipFile(client_wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith("METADATA"))
        requires = re.findall(r"^Requires-Dist: (.+)$", archive.read(metadata).decode(), re.MULTILINE)
        # What every install needs: the requirements of extras (`otel`) are marked `; extra == "…"`.
        requires = [line for line in requires if "extra ==" not in line]
        assert not [name for name in archive.namelist() if name.startswith("stopgate_server")]
    assert sorted(map(Requirement, requires), key=str) == sorted(
        client_dependencies.requirements().values(), key=str
    )


@pytest.mark.parametrize("versions", ["oldest", "newest"])
async def test_client_wheel_works_alone_in_a_clean_environment(
    versions: str, client_wheel: Path, target: str, api_token: str, tmp_path: Path
) -> None:
    """Installed in a fresh virtual environment with the pinned versions, without the server, its CLI and
    both clients talk to a live server, and importing the stubs warns of nothing."""
    pinned = client_dependencies.floors() if versions == "oldest" else NEWEST
    for name, version in pinned.items():
        assert version in client_dependencies.requirements()[name].specifier, f"{name} {version}"
    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    alone = {"PYTHONPATH": ""}  # the CLI sees the environment alone, not the repository's sources
    # No pip inside: this environment's pip installs into it (saves seconds); wheels only, from pip's cache
    # after the first run.
    assert (await run(sys.executable, "-m", "venv", "--without-pip", str(venv))).code == 0
    installed = await run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        str(client_wheel),
        *[f"{name}=={version}" for name, version in pinned.items()],
    )
    assert installed.code == 0, installed.err

    server_absent = await run(python, "-I", "-c", "import stopgate_server")
    assert server_absent.code == 1
    assert "ModuleNotFoundError" in server_absent.err
    classified = await run(
        str(venv / "bin" / "stopgate-cli"),
        "--target",
        target,
        "--token",
        api_token,
        "--json",
        "classify",
        "STOP",
        env=alone,
    )
    assert classified.code == 0, classified.err
    assert json.loads(classified.out)["intent"] == "INTENT_OPT_OUT"

    # -I: the program sees the environment alone (not the test's path); -W error: nothing may warn, such as
    # protobuf about the age of the stubs.
    used = await run(python, "-I", "-W", "error", str(TEAM_PROGRAM), target, api_token)
    assert used.code == 0, used.err
    seen = json.loads(used.out)
    assert seen.pop("installed") == {name: str(version) for name, version in pinned.items()}
    assert seen.pop("imported") == {"grpcio": str(pinned["grpcio"]), "protobuf": str(pinned["protobuf"])}
    sent, stopped = "INTERACTION_STATUS_SENT", "INTERACTION_STATUS_STOPPED"
    assert seen == {
        "async check_batch": ["VERDICT_ALLOW", "VERDICT_ALLOW"],
        "async stream_events": [["INGEST_OUTCOME_QUARANTINED", "spring"]],
        "async export_interactions": [["+33612340001", stopped], ["+33612340002", sent]],
        "stream_events": [["INGEST_OUTCOME_QUARANTINED", "spring"]],
        "check_batch": ["VERDICT_BLOCK", "VERDICT_BLOCK"],
        "export_quarantine": ["+33612340001", "+33612340002"],
    }
