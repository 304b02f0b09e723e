"""TLS and SASL on the embedded broker (Tansu 0.6.0).

TLS: the listener speaks plaintext whatever ``--cert``/``--key`` say. SASL: with
``--authentication`` only SCRAM is offered and every unauthenticated request is
refused, including the one that would create the first SCRAM user; without it no
mechanism is offered. With the memory engine users cannot survive the restart that
switches authentication on, so SASL cannot be used at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, UnsupportedSaslMechanismError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streams.broker import find_binary
from tests.integration.brokerkit import TansuProcess

pytestmark = pytest.mark.integration


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A P-256 key and a certificate for 127.0.0.1/localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _tls_handshake(port: int, cafile: Path) -> str:
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return str(tls.version())


@pytest.mark.parametrize("option", ["--cert", "--key"])
def test_the_listener_speaks_plaintext_even_when_given_a_certificate_or_key(
    tmp_path: Path, option: str
) -> None:
    cert, key = _self_signed(tmp_path)
    broker = TansuProcess(option, str(cert if option == "--cert" else key), log=tmp_path / "log")
    try:
        broker.wait_listening()
        assert broker.answers_metadata()
        # The ClientHello is read as the length prefix of a huge Kafka request: the
        # broker waits for the rest and the handshake times out.
        with pytest.raises(TimeoutError):
            _tls_handshake(broker.port, cert)
    finally:
        broker.stop()


def test_cert_and_key_cannot_be_given_together(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    broker = TansuProcess("--cert", str(cert), "--key", str(key), log=tmp_path / "log")
    assert broker.proc.wait(timeout=10) == 2
    assert "'--cert <CERT>' cannot be used with '--key <KEY>'" in broker.output()
    broker.stop()


async def _sasl_login(port: int, mechanism: str, user: str, password: str) -> None:
    conn = await create_conn(
        "127.0.0.1",
        port,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )
    conn.close()


def _create_user(bootstrap: str, user: str, mechanism: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(find_binary()), "user", "create", user, "pw-" + user]
    cmd += ["--broker", f"tcp://{bootstrap}", "--mechanism", mechanism]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def test_authentication_refuses_plaintext_clients_plain_and_the_first_user(
    tmp_path: Path,
) -> None:
    broker = TansuProcess("--authentication", log=tmp_path / "log")
    try:
        broker.wait_listening()
        assert not broker.answers_metadata()
        # PLAIN: the broker logs NoSharedMechanism and closes the connection.
        with pytest.raises(KafkaConnectionError):
            asyncio.run(_sasl_login(broker.port, "PLAIN", "alice", "pw"))
        # Creating a SCRAM user needs an authenticated connection, and there is no user.
        created = _create_user(broker.bootstrap, "alice", "scram512")
        assert created.returncode == 1 and "early eof" in created.stderr
        # The server's final SCRAM message carries no verifier ("v="): aiokafka's
        # parser fails on the missing key. Either way, nobody gets in.
        with pytest.raises(KeyError):
            asyncio.run(_sasl_login(broker.port, "SCRAM-SHA-512", "alice", "pw-alice"))
    finally:
        broker.stop()
    log = broker.output()
    assert "NoSharedMechanism" in log and "NotAuthenticated" in log


def test_without_authentication_users_are_stored_but_sasl_is_not_offered(
    tmp_path: Path,
) -> None:
    broker = TansuProcess(log=tmp_path / "log")
    try:
        broker.wait_listening()
        for mechanism in ("scram256", "scram512"):
            assert _create_user(broker.bootstrap, "bob", mechanism).returncode == 0
        with pytest.raises(UnsupportedSaslMechanismError):
            asyncio.run(_sasl_login(broker.port, "SCRAM-SHA-512", "bob", "pw-bob"))
    finally:
        broker.stop()


def test_plaintext_clients_are_dropped_by_an_authenticating_broker(tmp_path: Path) -> None:
    broker = TansuProcess("--authentication", log=tmp_path / "log")
    try:
        broker.wait_listening()
        with pytest.raises(KafkaConnectionError):
            asyncio.run(_metadata(broker.port))
    finally:
        broker.stop()


async def _metadata(port: int) -> None:
    conn = await create_conn("127.0.0.1", port)
    try:
        from aiokafka.protocol.metadata import MetadataRequest

        await conn.send(MetadataRequest([]))
    finally:
        conn.close()
