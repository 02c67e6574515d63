"""Transport security: the server with TLS and with mutual TLS, reached by both clients and the CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest
from certificates import Certificates
from clients import Connect
from processes import CLI, run
from stopgate.errors import UnavailableError
from stopgate.v1 import common_pb2
from stopgate_server.app import Application
from stopgate_server.config import ConfigError, Settings


@pytest.fixture(params=["TLS", "mutual TLS"])
async def secure_app(
    request: pytest.FixtureRequest,
    database_url: str,
    server_settings: Callable[[str], Settings],
    certificates: Certificates,
) -> AsyncIterator[Application]:
    settings = dataclasses.replace(
        server_settings(database_url),
        tls_cert_file=certificates.server_cert,
        tls_key_file=certificates.server_key,
        tls_client_ca_file=certificates.ca if request.param == "mutual TLS" else None,
    )
    application = Application(settings)
    await application.start()
    yield application
    await application.stop()


def _client_certificate(app: Application, certificates: Certificates) -> dict[str, bytes]:
    if app.settings.tls_client_ca_file is None:
        return {}
    return {
        "certificate_chain": certificates.read("client_cert"),
        "private_key": certificates.read("client_key"),
    }


async def test_clients_verify_the_server_and_present_their_certificate(
    secure_app: Application, certificates: Certificates, connect: Connect, api_token: str
) -> None:
    client = await connect(
        f"127.0.0.1:{secure_app.grpc_port}",
        token=api_token,
        root_certificates=certificates.read("ca"),
        **_client_certificate(secure_app, certificates),
    )
    reply = await client.call("classify_text", "STOP")
    assert reply.intent == common_pb2.INTENT_OPT_OUT


async def test_plaintext_and_unknown_clients_are_refused(
    secure_app: Application, certificates: Certificates, connect: Connect
) -> None:
    target = f"127.0.0.1:{secure_app.grpc_port}"
    plaintext = await connect(target, default_timeout=2)
    with pytest.raises(UnavailableError):
        await plaintext.call("classify_text", "STOP")
    if secure_app.settings.tls_client_ca_file is not None:
        no_certificate = await connect(target, root_certificates=certificates.read("ca"), default_timeout=2)
        with pytest.raises(UnavailableError):
            await no_certificate.call("classify_text", "STOP")


async def test_cli_speaks_tls(secure_app: Application, certificates: Certificates, api_token: str) -> None:
    mutual = (
        ["--cert-file", str(certificates.client_cert), "--key-file", str(certificates.client_key)]
        if secure_app.settings.tls_client_ca_file
        else []
    )
    target = f"127.0.0.1:{secure_app.grpc_port}"
    ca = ["--ca-file", str(certificates.ca)]
    result = await run(
        CLI, "--target", target, *ca, *mutual, "classify", "STOP", env={"STOPGATE_TOKEN": api_token}
    )
    assert result.code == 0, result.err
    assert "intent: INTENT_OPT_OUT" in result.out


def test_tls_settings_go_together(certificates: Certificates) -> None:
    with pytest.raises(ConfigError, match="--tls-cert-file and --tls-key-file"):
        Settings(tls_cert_file=certificates.server_cert)
    with pytest.raises(ConfigError, match="mutual TLS"):
        Settings(tls_client_ca_file=certificates.ca)
