"""Security defaults: Kafka TLS/SASL client settings, no pickle on the wire, loopback
HTTP endpoints, no identifiers in metric labels, no local variables in tracebacks.

The embedded broker has neither TLS nor SASL (docs/broker.md), so what is checked
here is the client configuration every Kafka client is built from; the handshake
itself is Apache Kafka's (docs/security.md).
"""

from __future__ import annotations

import ast
import datetime as dt
import ssl
from pathlib import Path

import faust
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streams import metrics
from streams.app import faust_credentials
from streams.cli import app
from streams.kafka import KafkaConnection
from streams.settings import StreamsSettings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zq9-not-for-logs-77"


def _ca_and_client(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed certificate (used as the CA) and its key, plus the key as client key."""
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
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
    return cert_path, cert_path, key_path


def test_sasl_ssl_settings_give_every_client_scram_over_verified_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cafile, certfile, keyfile = _ca_and_client(tmp_path)
    password_file = tmp_path / "kafka-password"
    password_file.write_text(SECRET + "\n")
    for name, value in {
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": "SCRAM-SHA-512",
        "SASL_USERNAME": "scorer",
        "SASL_PASSWORD_FILE": str(password_file),
        "SSL_CAFILE": str(cafile),
        "SSL_CERTFILE": str(certfile),
        "SSL_KEYFILE": str(keyfile),
    }.items():
        monkeypatch.setenv(f"STREAMSCORE_KAFKA__{name}", value)
    conn = KafkaConnection.from_settings(StreamsSettings().kafka, "broker:9093")
    for kwargs in (conn.aiokafka_kwargs("-x"), conn.kafka_python_kwargs("-x")):
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_username"] == "scorer"
        assert kwargs["sasl_plain_password"] == SECRET
        ctx = kwargs["ssl_context"]
        assert isinstance(ctx, ssl.SSLContext)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert len(ctx.get_ca_certs()) == 1  # our CA, not only the system store
    credentials = faust_credentials(conn)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.ssl_context is not None
    assert SECRET not in repr(conn) and SECRET not in repr(StreamsSettings())


def test_ssl_without_sasl_and_plaintext_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plain = KafkaConnection.from_settings(StreamsSettings().kafka, "127.0.0.1:9092")
    assert plain.aiokafka_kwargs()["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in plain.aiokafka_kwargs() and faust_credentials(plain) is None
    cafile, _, _ = _ca_and_client(tmp_path)
    monkeypatch.setenv("STREAMSCORE_KAFKA__SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("STREAMSCORE_KAFKA__SSL_CAFILE", str(cafile))
    tls = KafkaConnection.from_settings(StreamsSettings().kafka, "broker:9093")
    assert "sasl_mechanism" not in tls.aiokafka_kwargs()
    assert isinstance(faust_credentials(tls), faust.SSLCredentials)


def test_http_endpoints_and_the_embedded_broker_bind_loopback_by_default() -> None:
    settings = StreamsSettings()
    assert settings.metrics.host == "127.0.0.1"
    assert settings.worker.web_host == "127.0.0.1" and not settings.worker.web_enabled
    assert settings.broker.host == "127.0.0.1"


def test_no_metric_has_an_identifier_label() -> None:
    names = set()
    for collector in list(metrics.REGISTRY._collector_to_names):
        names.update(getattr(collector, "_labelnames", ()))
    assert names, "the registry has labelled metrics"
    assert not [n for n in names if n.endswith("_id") or n in {"transaction", "customer"}]


def test_no_topic_uses_the_pickle_codec() -> None:
    """Serializers are given as ``raw`` or ``json``; nothing names Faust's pickle codecs."""
    found = []
    for path in [
        *ROOT.joinpath("streams").rglob("*.py"),
        *ROOT.joinpath("producers").rglob("*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg and node.arg.endswith("serializer"):
                value = node.value
                if not (isinstance(value, ast.Constant) and value.value in ("raw", "json")):
                    found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_tracebacks_do_not_print_local_variables() -> None:
    assert app.pretty_exceptions_show_locals is False


def test_the_worker_serves_no_table_router_or_graph_endpoints(tmp_path: Path) -> None:
    from models.settings import ModelsSettings
    from streams.app import StreamWorker

    settings = StreamsSettings(worker={"data_dir": tmp_path, "web_enabled": True})
    models = ModelsSettings(registry={"uri": str(tmp_path / "registry"), "dev_key": True})
    worker = StreamWorker(settings, KafkaConnection("127.0.0.1:9"), models)
    conf = worker.app.conf
    assert conf.web_bind == "127.0.0.1"
    assert not (conf.web_tables_enabled or conf.web_router_enabled or conf.web_graph_enabled)
    assert conf.value_serializer == conf.key_serializer == "raw"
