"""The operations kit against the real thing: the metric catalogue equals what a live server exposes, the
dashboard and alert rules use only catalogued metrics, and a real Prometheus scrapes a live server."""

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

import pytest
from clients import EitherClient
from processes import REPOSITORY
from stopgate import AsyncClient
from stopgate.v1 import common_pb2
from stopgate_server.app import Application

CATALOGUE = REPOSITORY / "docs" / "METRICS.md"
DASHBOARD = REPOSITORY / "ops" / "grafana" / "stopgate.json"
ALERTS = REPOSITORY / "ops" / "prometheus" / "alerts.yml"
OURS = re.compile(r"\b(?:grpc_server|stopgate)_[a-z_]+\b")
# Series every Prometheus target has, or the Prometheus client library adds, outside the catalogue.
STANDARD = {"up", "process_resident_memory_bytes", "process_open_fds"}


def catalogue() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", CATALOGUE.read_text(), re.MULTILINE))


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL text uses (histogram series reduced to the histogram's name)."""
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in OURS.findall(query)}


def scrape(app: Application) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


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
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert queries
    used = set().union(*map(metric_names, queries))
    assert used <= catalogue()
    assert catalogue() <= used  # RED per RPC and every business metric have a panel
    standard = {name for query in queries for name in re.findall(r"\b(process_[a-z_]+)\b", query)}
    assert standard <= STANDARD


def test_alert_rules_use_catalogued_metrics_only() -> None:
    used = metric_names(ALERTS.read_text())
    assert used
    assert used <= catalogue()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def prometheus(app: Application, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus on loopback scraping the in-process server every second, with the alert rules."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus; CI installs it)")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{json.dumps(str(ALERTS))}]\n"
        "scrape_configs:\n"
        "  - job_name: stopgate\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{app.metrics_port}']}}]\n"
    )
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
        'up{job="stopgate"}': 1.0,
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
    groups = (await asyncio.to_thread(_api, prometheus, "rules"))["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == ALERTS.read_text().count("- alert: ")
    assert {rule["health"] for rule in rules} == {"ok"}
    assert not [rule["name"] for rule in rules if rule["state"] != "inactive"]  # a healthy server
