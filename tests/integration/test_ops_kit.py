"""The operations kit against the real thing: the metric catalogue equals what a live server exposes, the
dashboard and alert rules use only catalogued metrics, the latency objective is one number everywhere, every
alert has its runbook section, and a real Prometheus, configured by the shipped prometheus.yml, scrapes a
live server."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from clients import EitherClient
from processes import REPOSITORY
from prometheus_client import REGISTRY
from stopgate import AsyncClient, __version__
from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc
from stopgate_server.app import Application
from stopgate_server.config import Settings, parse_host_port
from stopgate_server.obs.metrics import GRPC_CODES, GRPC_LABELS, HANDLING_SECONDS, MetricsServer

CATALOGUE = REPOSITORY / "docs" / "METRICS.md"
DASHBOARD = REPOSITORY / "ops" / "grafana" / "stopgate.json"
ALERTS = REPOSITORY / "ops" / "prometheus" / "alerts.yml"
ALERT_TESTS = REPOSITORY / "ops" / "prometheus" / "alerts_test.yml"
SCRAPE_CONFIG = REPOSITORY / "ops" / "prometheus" / "prometheus.yml"
RUNBOOK = REPOSITORY / "docs" / "RUNBOOK.md"
OURS = re.compile(r"\b(?:grpc_server|stopgate)_[a-z_]+\b")
# Series the Prometheus client library adds to every process, outside the catalogue.
STANDARD = re.compile(r"\b(?:process|python)_[a-z_]+\b")
# grpc-go's codes.Code.String(): the `grpc_code` values of go-grpc-prometheus.
GO_CODES = {
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
}
# The CheckBatch latency objective, as docs/METRICS.md states it (once).
OBJECTIVE = re.compile(r"\*\*CheckBatch: (\d+)% of calls answered within (\d+) ms, over (\d+) days\.\*\*")


def catalogue() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", CATALOGUE.read_text(), re.MULTILINE))


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL text uses (histogram series reduced to the histogram's name)."""
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in OURS.findall(query)}


def scrape(app: Application) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


async def traffic(client: EitherClient) -> None:
    await client.call("quarantine_numbers", "acme", ["+33612345678"], actor="ops", reason="test")
    for _ in range(3):
        await client.call(
            "check_batch",
            "acme",
            ["+33612345678", "+33612345679"],
            sender="36180",
            category=common_pb2.MESSAGE_CATEGORY_MARKETING,
        )
    await client.call("classify_text", "STOP")


async def test_the_catalogue_is_what_a_live_server_exposes(app: Application, client: EitherClient) -> None:
    await traffic(client)
    exposition = await asyncio.to_thread(scrape, app)
    exposed = {
        name
        for name in re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE)
        if OURS.fullmatch(name) and not name.endswith("_created")
    }
    assert exposed == catalogue()


def test_the_catalogue_has_no_unbounded_labels() -> None:
    labels = " ".join(re.findall(r"^\| `[a-z_]+` \| \w+ \| ([^|]*) \|", CATALOGUE.read_text(), re.MULTILINE))
    for unbounded in ("phone", "licence", "campaign", "token", "event_id"):
        assert unbounded not in labels


def test_the_dashboard_covers_every_metric_and_uses_no_other() -> None:
    queries = dashboard_queries()
    assert queries
    used = set().union(*map(metric_names, queries))
    assert used <= catalogue()
    assert catalogue() <= used  # RED per RPC and every business metric have a panel


async def test_the_process_metrics_the_dashboard_uses_are_exposed(app: Application) -> None:
    """CPU and memory per worker come from the client library's process collector, which a server process
    (each worker is one) must keep registered; the build info comes with the package's version."""
    exposition = await asyncio.to_thread(scrape, app)
    exposed = set(re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE))
    standard = {name for query in dashboard_queries() for name in STANDARD.findall(query)}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= standard
    assert standard <= exposed
    (labels,) = re.findall(r"^stopgate_build_info\{(.*)\} 1\.0$", exposition, re.MULTILINE)
    assert f'version="{__version__}"' in labels
    assert re.search(r'python="3\.\d+\.\d+"', labels)


async def test_handled_calls_carry_go_grpc_prometheus_codes(
    app: Application, channel: grpc.aio.Channel
) -> None:
    """Community dashboards and alerts for gRPC servers select `grpc_code="OK"`, `"InvalidArgument"`..."""
    assert set(GRPC_CODES.values()) == GO_CODES
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckBatch(quarantine_check_pb2.CheckBatchRequest(licence_id="acme"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    exposition = await asyncio.to_thread(scrape, app)
    codes = set(re.findall(r'^grpc_server_handled_total\{[^}]*grpc_code="(\w+)"', exposition, re.MULTILINE))
    assert {"OK", "InvalidArgument"} <= codes <= GO_CODES


def test_alert_rules_use_catalogued_metrics_only() -> None:
    used = metric_names(ALERTS.read_text())
    assert used
    assert used <= catalogue()


def test_status_codes_are_written_as_go_grpc_prometheus_does_everywhere() -> None:
    """Every `grpc_code` value the kit selects is one the server writes: Go's names (InvalidArgument),
    never Python's (INVALID_ARGUMENT), which would match nothing."""
    for path in (ALERTS, ALERT_TESTS, DASHBOARD, RUNBOOK, REPOSITORY / "SECURITY.md"):
        values = re.findall(r'grpc_code=~?\\?"([^"\\]+)', path.read_text())
        assert values, path
        assert set("|".join(values).split("|")) <= GO_CODES, path


def alert_rules() -> list[dict[str, Any]]:
    """Each rule of alerts.yml: its name, expression and annotations (read without a YAML library: the
    file's layout is regular, and a real Prometheus loads it in test_prometheus_scrapes_a_live_server)."""
    rules = []
    for block in re.split(r"^      - alert: ", ALERTS.read_text(), flags=re.MULTILINE)[1:]:
        name, body = block.split("\n", 1)
        expression = re.search(r"^ {8}expr: (.*?)^ {8}(?:for|labels):", body, re.MULTILINE | re.DOTALL)
        assert expression, name
        annotations = {}
        # `key: "value"` on one line, or `key: >-` and the value folded over the more indented lines after it
        for key, value, folded in re.findall(
            r"^ {10}(\w+): (.*)\n((?: {12}.*\n)*)", body.split("annotations:\n", 1)[1], re.MULTILINE
        ):
            annotations[key] = " ".join(folded.split()) if value == ">-" else value.strip('"')
        rules.append({"name": name, "expr": expression.group(1), "annotations": annotations})
    return rules


def test_every_alert_says_what_it_means_and_links_its_runbook_section() -> None:
    rules = alert_rules()
    assert len(rules) == ALERTS.read_text().count("- alert: ")
    runbook = RUNBOOK.read_text()
    anchors = {heading.lower() for heading in re.findall(r"^### (\w+)$", runbook, re.MULTILINE)}
    for rule in rules:
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, rule["name"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor in anchors, rule["name"]
        assert rule["name"] in runbook


def test_the_latency_objective_is_one_number() -> None:
    """METRICS.md states the CheckBatch objective; its threshold is a bucket of grpc_server_handling_seconds,
    and the burn-rate alerts and the dashboard use that bucket and its target, and say the same in words."""
    (objective,) = OBJECTIVE.findall(CATALOGUE.read_text())
    target, threshold_ms = int(objective[0]) / 100, int(objective[1])
    le = f'le="{threshold_ms / 1000:g}"'
    in_words = f"{objective[0]}% of CheckBatch calls within {threshold_ms} ms over {objective[2]} days"

    check_batch = ("unary", "stopgate.v1.QuarantineCheck", "CheckBatch")
    HANDLING_SECONDS.labels(*check_batch)  # the series every server creates at start (metrics.initialise)
    bucket = dict(zip(GRPC_LABELS, check_batch, strict=True), le=f"{threshold_ms / 1000:g}")
    assert REGISTRY.get_sample_value("grpc_server_handling_seconds_bucket", bucket) is not None

    burn_rules = [rule for rule in alert_rules() if 'grpc_method="CheckBatch"' in rule["expr"]]
    assert len(burn_rules) == 2
    for rule in burn_rules:
        assert set(re.findall(r'le="[^"]+"', rule["expr"])) == {le}
        budgets = {float(budget) for budget in re.findall(r"\* ([0-9.]+)\)", rule["expr"])}
        assert sorted(budgets) == pytest.approx([1 - target])
        assert in_words in rule["annotations"]["description"]

    panels = json.loads(DASHBOARD.read_text())["panels"]
    share = [p for p in panels if any('grpc_method="CheckBatch"' in t["expr"] for t in p.get("targets", []))]
    assert len(share) == 1
    assert all(set(re.findall(r'le="[^"]+"', t["expr"])) <= {le} for t in share[0]["targets"])
    assert _threshold(share[0]) == pytest.approx(target)
    (p99,) = [p for p in panels if p["title"] == "p99 duration by method"]
    assert _threshold(p99) == pytest.approx(threshold_ms / 1000)


def _threshold(panel: dict[str, Any]) -> float:
    """The value of the one threshold a panel draws as a line."""
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    (value,) = [step["value"] for step in defaults["thresholds"]["steps"] if step["value"] is not None]
    return float(value)


def shipped_targets() -> list[str]:
    return re.findall(r"^\s+- (\S+:\d+)", SCRAPE_CONFIG.read_text(), re.MULTILINE)


def test_the_scrape_configuration_lists_one_port_per_worker_from_the_default() -> None:
    """Worker i serves metrics on STOPGATE_METRICS_ADDR's port + i: the shipped targets are those ports."""
    host, port = parse_host_port(Settings().metrics_addr)
    targets = shipped_targets()
    assert len(targets) > 1
    assert targets == [f"{host}:{port + worker}" for worker in range(len(targets))]
    assert "job_name: stopgate\n" in SCRAPE_CONFIG.read_text()


def test_promtool_accepts_the_scrape_configuration_and_its_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; CI installs it)")
    checked = subprocess.run(
        [promtool, "check", "config", SCRAPE_CONFIG.name],
        cwd=SCRAPE_CONFIG.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "alerts.yml" in checked.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape_config_for(targets: list[str]) -> str:
    """The shipped prometheus.yml with other targets, scraping and evaluating every second: the rest (job,
    rule files) as shipped."""
    shipped = SCRAPE_CONFIG.read_text()
    (first, *_) = shipped_targets()
    indent = re.search(rf"^(\s+)- {re.escape(first)}", shipped, re.MULTILINE)
    assert indent
    listed = "".join(f"{indent.group(1)}- {target}\n" for target in targets)
    config, replaced = re.subn(rf"(?:^{indent.group(1)}- \S+:\d+.*\n)+", listed, shipped, flags=re.MULTILINE)
    assert replaced == 1
    config, replaced = re.subn(r"(scrape|evaluation)_interval: \w+", r"\1_interval: 1s", config)
    assert replaced == 2
    return config


@pytest.fixture
def second_worker() -> Iterator[MetricsServer]:
    """Another metrics endpoint, standing for a second worker (it serves this process's metrics too)."""
    server = MetricsServer("127.0.0.1", 0)
    yield server
    server.close()


@pytest.fixture
def prometheus(app: Application, second_worker: MetricsServer, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus on loopback, configured by the shipped prometheus.yml and alerts.yml, scraping the
    in-process server and a second endpoint every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus; CI installs it)")
    shutil.copy(ALERTS, tmp_path / ALERTS.name)  # rule_files are relative to the configuration
    config = tmp_path / "prometheus.yml"
    config.write_text(scrape_config_for([f"127.0.0.1:{app.metrics_port}", f"127.0.0.1:{second_worker.port}"]))
    address = f"127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://{address}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback http URL
        return json.loads(response.read())["data"]


async def _query(base: str, query: str) -> float | None:
    try:
        result = await asyncio.to_thread(_api, base, "query", query=query)
    except OSError:
        return None  # Prometheus is still starting
    return float(result["result"][0]["value"][1]) if result["result"] else None


async def test_prometheus_scrapes_a_live_server(prometheus: str, app: Application, api_token: str) -> None:
    client = EitherClient(AsyncClient(f"127.0.0.1:{app.grpc_port}", token=api_token))
    await traffic(client)
    await client.close()
    # At least these values: the counters are the test process's, shared with earlier tests.
    expected = {
        'count(up{job="stopgate"} == 1)': 2.0,
        f'stopgate_build_info{{job="stopgate", version="{__version__}"}}': 1.0,
        'process_cpu_seconds_total{job="stopgate"}': 0.0,
        'process_resident_memory_bytes{job="stopgate"}': 1.0,
        'stopgate_database_up{job="stopgate"}': 1.0,
        'grpc_server_handled_total{job="stopgate", grpc_method="CheckBatch", grpc_code="OK"}': 3.0,
        'sum(stopgate_checked_numbers_total{job="stopgate", verdict="BLOCK", reason="QUARANTINED"})': 3.0,
        'sum(stopgate_checked_numbers_total{job="stopgate", verdict="ALLOW", reason="NONE"})': 3.0,
        'stopgate_blocklist_index_entries{job="stopgate", list="quarantine"}': 1.0,
        'grpc_server_handling_seconds_count{job="stopgate", grpc_method="ClassifyText"}': 1.0,
    }
    short: dict[str, float | None] = {}
    for _ in range(60):  # Prometheus starts, then scrapes every second
        seen = {query: await _query(prometheus, query) for query in expected}
        short = {q: value for q, value in seen.items() if value is None or value < expected[q]}
        if not short:
            break
        await asyncio.sleep(0.5)
    assert short == {}
    assert (await _query(prometheus, 'stopgate_blocklist_propagation_seconds_count{job="stopgate"}') or 0) > 0
    assert (await _query(prometheus, 'stopgate_event_loop_lag_seconds_count{job="stopgate"}') or 0) > 0
    # A healthy server raises no alert; StopgateAbsent may be pending from an evaluation before the first
    # scrape, until the next evaluation (every second).
    active: list[str] = []
    for _ in range(20):
        groups = (await asyncio.to_thread(_api, prometheus, "rules"))["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        active = [rule["name"] for rule in rules if rule["state"] != "inactive"]
        if not active:
            break
        await asyncio.sleep(0.5)
    assert len(rules) == ALERTS.read_text().count("- alert: ")
    assert {rule["health"] for rule in rules} == {"ok"}
    assert active == []
