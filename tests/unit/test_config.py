"""Settings: defaults, environment, flags, and validation messages that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from stopgate_server.config import ConfigError, Settings, load, parse_host_port
from stopgate_server.workers import worker_environment


def test_defaults() -> None:
    settings = load({}, environ={})
    assert settings == Settings()
    assert settings.grpc_addr == "127.0.0.1:50051"
    assert settings.metrics_addr == "127.0.0.1:9464"
    assert settings.database_url is None


def test_environment_then_flags() -> None:
    environ = {
        "STOPGATE_GRPC_ADDR": "0.0.0.0:6000",
        "STOPGATE_DB_POOL_SIZE": "7",
        "STOPGATE_DATA_DIR": "/srv/sg",
    }
    settings = load({"grpc_addr": "127.0.0.1:7000"}, environ=environ)
    assert settings.grpc_addr == "127.0.0.1:7000"
    assert settings.db_pool_size == 7
    assert settings.data_dir == Path("/srv/sg")


def test_empty_database_url_means_embedded() -> None:
    assert load({}, environ={"STOPGATE_DATABASE_URL": ""}).database_url is None


@pytest.mark.parametrize(
    ("flags", "environ", "named"),
    [
        ({}, {"STOPGATE_GRPC_ADDR": "localhost"}, "STOPGATE_GRPC_ADDR"),
        ({"metrics_addr": "127.0.0.1:99999"}, {}, "--metrics-addr"),
        ({}, {"STOPGATE_DATABASE_URL": "mysql://x"}, "STOPGATE_DATABASE_URL"),
        ({}, {"STOPGATE_DB_POOL_SIZE": "0"}, "STOPGATE_DB_POOL_SIZE"),
        ({"db_pool_size": "many"}, {}, "--db-pool-size"),
        ({}, {"STOPGATE_LOG_LEVEL": "loud"}, "STOPGATE_LOG_LEVEL"),
        ({"shutdown_grace_s": "-1"}, {}, "--shutdown-grace-s"),
        ({}, {"STOPGATE_DRAIN_DELAY_S": "-1"}, "STOPGATE_DRAIN_DELAY_S"),
        ({}, {"STOPGATE_WORKER_INDEX": "first"}, "STOPGATE_WORKER_INDEX"),
        ({}, {"STOPGATE_TLS_CERT_FILE": "/nonexistent/server.pem"}, "STOPGATE_TLS_CERT_FILE"),
        ({}, {"STOPGATE_STREAM_IDLE_TIMEOUT_S": "0"}, "STOPGATE_STREAM_IDLE_TIMEOUT_S"),
    ],
)
def test_invalid_values_are_named(flags: dict[str, str], environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid {named}="):
        load(flags, environ=environ)


def test_a_renamed_setting_is_refused_with_its_new_name() -> None:
    # Silently ignoring it would drop the operator's value
    with pytest.raises(ConfigError, match="STOPGATE_MAX_STREAMS_PER_CONNECTION was renamed STOPGATE_HTTP2_"):
        load({}, environ={"STOPGATE_MAX_STREAMS_PER_CONNECTION": "200"})
    settings = load({}, environ={"STOPGATE_HTTP2_MAX_CONCURRENT_STREAMS": "200"})
    assert settings.http2_max_concurrent_streams == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:9464", ("localhost", 9464)),
    ],
)
def test_parse_host_port(value: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(value) == expected


def test_no_drain_delay_is_allowed() -> None:
    assert load({"drain_delay_s": "0"}, environ={}).drain_delay_s == 0


def test_a_worker_reads_every_setting_of_its_supervisor_from_its_environment() -> None:
    """Workers get no flags but `--workers 1` (secrets stay off command lines): the environment carries the
    rest, the unset ones as empty variables so that none leaks in from the supervisor's own environment."""
    supervisor = Settings(
        database_url=None,
        workers=4,
        drain_delay_s=0.0,
        db_pool_size=7,
        insecure_no_auth=True,
        tls_cert_file=None,
        log_level="DEBUG",
    )
    dsn = "postgresql://stopgate:secret@db.internal/sg"
    environ = worker_environment(supervisor, dsn, "0.0.0.0:50051", "127.0.0.1:9466", 2)
    worker = load({"workers": "1"}, environ=environ)
    assert worker == Settings(
        database_url=dsn,
        grpc_addr="0.0.0.0:50051",
        metrics_addr="127.0.0.1:9466",
        workers=1,
        worker_index=2,
        drain_delay_s=0.0,
        db_pool_size=7,
        insecure_no_auth=True,
        log_level="DEBUG",
    )
