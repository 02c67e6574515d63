"""Which OTEL_* configurations turn tracing on, and what the process's tracer provider then is."""

from __future__ import annotations

import importlib.util
import os

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from stopgate_server.obs.tracing import Tracing, TracingError, check_environment, exporter_names

ENDPOINT = "http://collector:4317"


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        # The specification's default exporter is otlp: here an exporter or an endpoint must be named.
        ({"OTEL_SERVICE_NAME": "stopgate-eu", "OTEL_TRACES_SAMPLER": "always_on"}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ["otlp_proto_grpc"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT}, ["otlp_proto_grpc"]),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp_proto_grpc"]),
        ({"OTEL_TRACES_EXPORTER": " Console "}, ["console"]),
        (
            {"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ["otlp_proto_http", "console"],
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            ["otlp_proto_grpc"],
        ),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "TRUE"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}, ["console"]),
    ],
)
def test_tracing_is_on_only_when_an_exporter_or_an_endpoint_is_named(
    environ: dict[str, str], exporters: list[str]
) -> None:
    assert exporter_names(environ) == exporters


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "none,console"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json"),
    ],
)
def test_a_contradictory_or_unknown_setting_is_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(TracingError, match=named):
        exporter_names(environ)


def test_unconfigured_sets_nothing_up() -> None:
    assert Tracing.from_environment() is None


def test_an_exporter_that_is_not_installed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
    with pytest.raises(TracingError, match=r"OTEL_TRACES_EXPORTER.*carrier-pigeon"):
        Tracing.from_environment()


def test_otlp_over_http_names_the_extra_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http"):
        pytest.skip("the `otel` extra is installed here")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    with pytest.raises(TracingError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL.*stopgate\[otel\]"):
        check_environment()


def test_the_service_is_called_stopgate_unless_the_variables_say_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
    tracing = Tracing.from_environment()
    assert tracing is not None
    assert tracing.provider.resource.attributes["service.name"] == "stopgate"
    assert tracing.provider.resource.attributes["deployment.environment"] == "prod"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=stopgate-eu")
    assert _service_name() == "stopgate-eu"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "stopgate-us")  # wins over the resource attribute
    assert _service_name() == "stopgate-us"


def test_the_sampler_is_the_sdks_reading_of_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    tracing = Tracing.from_environment()
    assert tracing is not None
    assert tracing.provider.sampler is ALWAYS_OFF


def _service_name() -> str:
    tracing = Tracing.from_environment()
    assert tracing is not None
    return str(tracing.provider.resource.attributes["service.name"])
