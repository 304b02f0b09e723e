"""Settings read the environment, hide secrets, and document themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.kafka import KafkaConnection
from streams.schemas import stale_schemas
from streams.settings import StreamsSettings
from streams.settings_docs import update_readme

ROOT = Path(__file__).resolve().parents[2]


def test_nested_environment_variables_configure_sections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("STREAMSCORE_TOPICS__PARTITIONS", "12")
    monkeypatch.setenv("STREAMSCORE_TOPICS__LABELS__NAME", "labels-v2")
    s = StreamsSettings()
    assert s.kafka.bootstrap_servers == "kafka:9092"
    assert s.topics.partitions_of(s.topics.transactions) == 12
    assert s.topics.labels.name == "labels-v2"
    assert s.topics.partitions_of(s.topics.model_updates) == 1


def test_both_sides_read_the_shared_scoring_section(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.settings import ModelsSettings

    monkeypatch.setenv("STREAMSCORE_SCORING__MODEL_WAIT_S", "0")
    monkeypatch.setenv("STREAMSCORE_SCORING__BLEND_W_DEEP", "0.7")
    monkeypatch.setenv("STREAMSCORE_SCORING__PROVIDER", "cpu")
    streams, models = StreamsSettings(), ModelsSettings()
    assert streams.scoring.model_wait_s == 0 and streams.scoring.blend_w_deep == 0.7
    assert models.scoring.provider == "cpu"


def test_sasl_password_never_shows_in_repr_or_dump(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STREAMSCORE_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("STREAMSCORE_KAFKA__SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("STREAMSCORE_KAFKA__SASL_PASSWORD", "hunter2-secret")
    s = StreamsSettings()
    conn = KafkaConnection.from_settings(s.kafka, "x:1")
    assert conn.sasl_password == "hunter2-secret"
    for text in (repr(s), s.model_dump_json(), repr(conn), str(conn)):
        assert "hunter2-secret" not in text


def test_password_file_wins_over_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    monkeypatch.setenv("STREAMSCORE_KAFKA__SASL_PASSWORD_FILE", str(secret))
    assert StreamsSettings().kafka.password() == "from-file"


def test_sasl_protocol_requires_a_mechanism(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSCORE_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValueError, match="sasl_mechanism"):
        StreamsSettings()


def test_readme_lists_every_setting_from_the_docstrings() -> None:
    assert not update_readme(ROOT / "README.md", check=True), (
        "README settings table is stale: run `streamscore settings docs`"
    )


def test_exported_json_schemas_are_current() -> None:
    assert stale_schemas(ROOT / "docs" / "schemas") == [], "run `streamscore schemas export`"
