"""Settings of a stopgate server: defaults, overridden by STOPGATE_* environment variables, then by flags.

Every setting is declared once in SETTINGS; the `stopgate` command builds its flags from that table and
validates every value before anything starts, so a bad value ends with one clear message naming it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting has an invalid value; the message names the variable and the flag."""


@dataclass(frozen=True)
class Settings:
    """Validated settings of one server process."""

    database_url: str | None = None
    grpc_addr: str = "127.0.0.1:50051"
    metrics_addr: str = "127.0.0.1:9464"
    data_dir: Path = Path(".stopgate")
    log_level: str = "INFO"
    db_pool_size: int = 10
    db_connect_timeout_s: float = 30.0
    statement_timeout_ms: int = 5000
    health_interval_s: float = 1.0
    drain_delay_s: float = 5.0
    shutdown_grace_s: float = 10.0
    max_message_parts: int = 10
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)  # one per core
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    insecure_no_auth: bool = False
    default_deadline_s: float = 30.0
    max_deadline_s: float = 120.0
    max_concurrent_rpcs: int = 1000
    max_open_streams_per_connection: int = 100
    max_open_streams_per_token: int = 100
    stream_idle_timeout_s: float = 60.0
    http2_max_concurrent_streams: int = 1000
    index_reconcile_interval_s: float = 30.0
    change_feed_retention_s: float = 7 * 86400.0
    worker_index: int | None = None  # set by the supervisor of `--workers N` on each worker it starts
    request_id_retention_s: float = 86400.0
    raw_text_retention_days: int = 0  # 0: raw texts are kept

    def __post_init__(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError("--tls-cert-file and --tls-key-file (STOPGATE_TLS_*) go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ConfigError("--tls-client-ca-file (mutual TLS) needs --tls-cert-file and --tls-key-file")


def parse_host_port(value: str) -> tuple[str, int]:
    """Split "HOST:PORT" (IPv6 hosts in brackets), checking the port is 0..65535."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected HOST:PORT, such as 127.0.0.1:50051 (port 0 picks a free one)")
    return host.strip("[]"), int(port)


def _address(value: str) -> str:
    parse_host_port(value)
    return value


def _database_url(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(
            "expected a postgresql:// URL, such as postgresql://user:password@host:5432/stopgate"
        )
    return value


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
    return level


def _readable_file(value: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ValueError("no readable file there")
    return path


def _boolean(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _not_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("expected 0 or more seconds")
    return number


def _days(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("expected a whole number of days, 0 or more (0 keeps raw texts)")
    return number


def _index(value: str) -> int | None:
    if not value:
        return None
    number = int(value)
    if number < 0:
        raise ValueError("expected 0 or more")
    return number


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if number <= 0:
            raise ValueError("expected a number greater than 0")
        return number

    return parse


def variable(field: str) -> str:
    """The environment variable of a setting, as messages name it: STOPGATE_ and the field in capitals."""
    return "STOPGATE_" + field.upper()


@dataclass(frozen=True)
class Option:
    """One setting: its field in Settings, environment variable, parser and help text."""

    field: str
    parse: Callable[[str], Any]
    help: str
    switch: bool = False  # a flag that needs no value (`--insecure-no-auth`)

    @property
    def env(self) -> str:
        return variable(self.field)

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


SETTINGS = (
    Option(
        "database_url",
        _database_url,
        "PostgreSQL URL; when empty, a private cluster is started under DATA_DIR/pg",
    ),
    Option("grpc_addr", _address, "HOST:PORT the gRPC server listens on"),
    Option("metrics_addr", _address, "HOST:PORT serving Prometheus metrics on /metrics"),
    Option("data_dir", Path, "directory of the embedded PostgreSQL cluster"),
    Option("log_level", _log_level, "DEBUG, INFO, WARNING or ERROR"),
    Option("db_pool_size", _positive(int), "maximum PostgreSQL connections of this process"),
    Option("db_connect_timeout_s", _positive(float), "seconds to wait for PostgreSQL at start"),
    Option("statement_timeout_ms", _positive(int), "PostgreSQL statement_timeout of every query"),
    Option("health_interval_s", _positive(float), "seconds between database health probes"),
    Option(
        "drain_delay_s",
        _not_negative,
        "seconds a stopping server keeps serving while its health reports NOT_SERVING, so that load"
        " balancers stop sending it calls (0 stops accepting calls at once)",
    ),
    Option(
        "shutdown_grace_s",
        _positive(float),
        "seconds in-flight calls get to finish once a stopping server no longer accepts calls",
    ),
    Option("max_message_parts", _positive(int), "longest text MessageCompliance accepts, in SMS parts"),
    Option(
        "workers",
        _positive(int),
        "server processes sharing the gRPC port (default: one per core); worker i serves metrics on"
        " METRICS_ADDR's port + i",
    ),
    Option("tls_cert_file", _readable_file, "PEM certificate chain of the server; serves TLS when set"),
    Option("tls_key_file", _readable_file, "PEM private key of that certificate"),
    Option(
        "tls_client_ca_file",
        _readable_file,
        "PEM CA certificates client certificates must chain to; requires them (mutual TLS)",
    ),
    Option(
        "default_deadline_s",
        _positive(float),
        "deadline of unary calls that set none (streams have none unless the caller sets one)",
    ),
    Option("max_deadline_s", _positive(float), "longest a unary call may run, whatever its deadline"),
    Option(
        "max_concurrent_rpcs",
        _positive(int),
        "stopgate.v1 calls a process runs at once (health and reflection are not counted); more are"
        " refused with RESOURCE_EXHAUSTED",
    ),
    Option(
        "max_open_streams_per_connection",
        _positive(int),
        "streaming calls (StreamEvents, exports, health Watch, reflection) open at once on one connection;"
        " more are refused with RESOURCE_EXHAUSTED",
    ),
    Option(
        "max_open_streams_per_token",
        _positive(int),
        "streaming calls open at once with one token, over all its connections; more are refused with"
        " RESOURCE_EXHAUSTED",
    ),
    Option(
        "stream_idle_timeout_s",
        _positive(float),
        "seconds a stream may wait for the client's next request (UNAVAILABLE, STREAM_IDLE) or for the"
        " client to read a response (DEADLINE_EXCEEDED, STREAM_NOT_READ) before it is ended; health"
        " Watch is exempt",
    ),
    Option(
        "http2_max_concurrent_streams",
        _positive(int),
        "HTTP/2 streams (calls of any kind) in flight on one connection; more wait in the client for a"
        " free one",
    ),
    Option(
        "index_reconcile_interval_s",
        _positive(float),
        "seconds between comparisons of the in-memory block-list index with PostgreSQL (lists changed by"
        " writes that bypassed the triggers are reloaded)",
    ),
    Option(
        "change_feed_retention_s",
        _positive(float),
        "seconds the change feed (WatchBlocklistChanges) keeps a change at least: a consumer may resume from"
        " a cursor this old (older changes are deleted hourly)",
    ),
    Option(
        "worker_index",
        _index,
        "internal: set by `--workers N` on each worker process it starts (0 to N-1); never set it yourself",
    ),
    Option(
        "request_id_retention_s",
        _positive(float),
        "seconds a request id of RecordSends or CheckBatch with a campaign is remembered at least: a retry"
        " within it gets the first answer and records nothing again (ids are deleted hourly after it)",
    ),
    Option(
        "raw_text_retention_days",
        _days,
        "days the raw texts of inbound events (and the raw input of rejected ones) are kept; older ones are"
        " emptied hourly, in small batches (0: kept)",
    ),
    Option(
        "insecure_no_auth",
        _boolean,
        "serve WITHOUT authentication: any caller may do anything (local experiments only)",
        switch=True,
    ),
)

# Settings that were renamed: a deployment still setting one must not silently lose its value.
RENAMED = {"max_streams_per_connection": "http2_max_concurrent_streams"}

DATABASE_OPTIONS = ("database_url", "data_dir", "db_connect_timeout_s", "log_level")
"""The settings `stopgate migrate` takes (the rest only matter to a serving process)."""


def add_arguments(parser: argparse.ArgumentParser, fields: tuple[str, ...] | None = None) -> None:
    """Add a flag per setting (or per named setting) to an argparse parser."""
    defaults = Settings()
    for option in SETTINGS:
        if fields is None or option.field in fields:
            default = getattr(defaults, option.field)
            shown = "none" if default is None else default
            parser.add_argument(
                option.flag,
                dest=option.field,
                default=None,
                nargs="?" if option.switch else None,
                const="true" if option.switch else None,
                metavar="BOOL" if option.switch else option.field.split("_")[-1].upper(),
                help=f"{option.help} (env {option.env}, default: {shown})",
            )


def load(flags: Mapping[str, str | None], environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from defaults, the environment and flags (in rising priority), validating each."""
    environ = os.environ if environ is None else environ
    for old, new in RENAMED.items():
        if variable(old) in environ:
            raise ConfigError(f"{variable(old)} was renamed {variable(new)}: set that instead")
    values: dict[str, Any] = {}
    for option in SETTINGS:
        flag_value = flags.get(option.field)
        raw, origin = (
            (flag_value, option.flag) if flag_value is not None else (environ.get(option.env), option.env)
        )
        if raw is None:
            continue
        try:
            values[option.field] = option.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid {origin}={raw!r}: {exc}") from None
    return dataclasses.replace(Settings(), **values)
