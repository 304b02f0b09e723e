"""Kafka connection parameters for every client we use (aiokafka, kafka-python, Faust).

:class:`KafkaConnection` is built once from :class:`streams.settings.KafkaSettings`
and handed down; its password never appears in ``repr`` or logs.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.settings import KafkaSettings


@dataclass(frozen=True)
class KafkaConnection:
    """Where and how to connect to Kafka."""

    bootstrap_servers: str
    client_id: str = "streamscore"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    #: True for the embedded broker (tune group timings to it; see docs/broker.md).
    embedded: bool = False

    @classmethod
    def from_settings(
        cls, settings: KafkaSettings, bootstrap_servers: str, embedded: bool = False
    ) -> KafkaConnection:
        """Build from settings; ``bootstrap_servers`` may come from an embedded broker."""
        return cls(
            bootstrap_servers=bootstrap_servers,
            embedded=embedded,
            client_id=settings.client_id,
            security_protocol=settings.security_protocol,
            sasl_mechanism=settings.sasl_mechanism,
            sasl_username=settings.sasl_username,
            sasl_password=settings.password(),
            ssl_cafile=settings.ssl_cafile,
            ssl_certfile=settings.ssl_certfile,
            ssl_keyfile=settings.ssl_keyfile,
            ssl_check_hostname=settings.ssl_check_hostname,
        )

    @property
    def uses_tls(self) -> bool:
        """True when connections are wrapped in TLS."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context, or None for plaintext."""
        if not self.uses_tls:
            return None
        ctx = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            ctx.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return ctx

    def aiokafka_kwargs(self, suffix: str = "") -> dict[str, Any]:
        """Keyword arguments for aiokafka producers, consumers and admin clients."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": f"{self.client_id}{suffix}",
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism is not None:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs

    def bulk_producer(self, suffix: str, linger_ms: int = 5, **overrides: Any) -> AIOKafkaProducer:
        """An aiokafka producer for publishing many records.

        Every replica acknowledges; batches of up to 256 KiB fill for ``linger_ms``;
        ``overrides`` replace or add producer settings.
        """
        settings: dict[str, Any] = {
            "acks": "all",
            "linger_ms": linger_ms,
            "max_batch_size": 256 * 1024,
            **overrides,
        }
        return AIOKafkaProducer(**self.aiokafka_kwargs(suffix), **settings)

    def kafka_python_kwargs(self, suffix: str = "") -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (admin and assign()-mode tools)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": f"{self.client_id}{suffix}",
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism is not None:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs
