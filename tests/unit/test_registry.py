"""The registry: signed round trips, content addressing, pointers, atomic writes, keys."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from models.atomic import write_atomic
from models.registry import Pointers, Registry, RegistryError, registry_root
from models.settings import RegistrySettings
from models.signing import (
    DEV_KEY_FILE,
    SigningKeyError,
    ed25519_keys,
    generate_key_files,
    hmac_keys,
    load_keys,
)
from models.verify import verify
from tests.unit.artifacts import (
    CONTRACT,
    KEY,
    fields,
    golden_of,
    good_model,
    make_registry,
    update_of,
)
from tests.unit.artifacts import publish_good as publish


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return make_registry(tmp_path / "registry")


def test_publish_then_get_returns_the_same_signed_manifest(registry: Registry) -> None:
    model = good_model("v1")
    manifest = registry.publish(model, fields("v1", golden_of(model), metrics={"ap": 0.5}))
    signed = registry.get("v1")
    assert signed.manifest == manifest
    assert manifest.files["model.onnx"].size == len(model)
    assert registry.model_path(manifest).read_bytes() == model
    assert manifest.key_id == registry.verifier.key_id
    assert manifest.created_time.tzinfo is not None
    stored = json.loads((registry.artifact_dir(manifest.sha256) / "manifest.json").read_bytes())
    assert stored["signature"] == signed.signature


def test_artifacts_are_addressed_by_their_sha256(registry: Registry) -> None:
    import hashlib

    manifest = publish(registry, "v1")
    data = registry.model_path(manifest).read_bytes()
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert registry.model_path(manifest).parent.name == manifest.sha256


def test_publishing_a_version_twice_is_refused(registry: Registry) -> None:
    publish(registry, "v1")
    with pytest.raises(RegistryError, match="exists already"):
        publish(registry, "v1")


def test_a_reader_without_a_signer_cannot_publish(registry: Registry) -> None:
    reader = Registry(registry.root, registry.verifier)
    with pytest.raises(RegistryError, match="signing key"):
        publish(reader, "v1")


def test_list_is_oldest_first_and_skips_tampered_manifests(registry: Registry) -> None:
    for v in ("a1", "b2", "c3"):
        publish(registry, v)
    path = registry.root / "manifests" / "b2.json"
    raw = json.loads(path.read_bytes())
    raw["manifest"]["metrics"] = {"ap": 1.0}
    path.write_text(json.dumps(raw))
    assert [m.version for m in registry.list()] == ["a1", "c3"]
    with pytest.raises(RegistryError, match="fails verification"):
        registry.get("b2")


def test_a_registry_with_another_key_trusts_nothing(registry: Registry) -> None:
    publish(registry, "v1")
    stranger = make_registry(registry.root, key=b"y" * 32)
    assert stranger.list() == []
    with pytest.raises(RegistryError):
        stranger.get("v1")


def test_promote_and_rollback_walk_the_champion_history(registry: Registry) -> None:
    for v in ("v1", "v2", "v3"):
        publish(registry, v)
    assert registry.champion() is None
    registry.promote("v1")
    registry.promote("v2")
    pointers = registry.promote("v3")
    assert (pointers.champion, pointers.previous) == ("v3", "v2")
    assert registry.rollback() == Pointers("v2", "v1", ("v1", "v2"))
    assert registry.rollback() == Pointers("v1", None, ("v1",))
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback()
    champion = registry.champion()
    assert champion is not None and champion.manifest.version == "v1"


def test_promoting_an_unknown_version_is_refused(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="unknown version"):
        registry.promote("nope")


def test_writes_leave_no_temporary_or_staging_files(registry: Registry) -> None:
    for v in ("v1", "v2"):
        publish(registry, v)
        registry.promote(v)
    leftovers = [
        p for p in registry.root.rglob("*") if p.name.startswith(".") and p.name != ".lock"
    ]
    assert leftovers == []


def test_readers_never_see_a_partial_file_while_writers_work(registry: Registry) -> None:
    publish(registry, "v0")
    registry.promote("v0")
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_forever() -> None:
        while not stop.is_set():
            try:
                pointers = registry.pointers()
                assert pointers.champion is not None
                registry.get(pointers.champion)
                for m in registry.list():
                    assert registry.model_path(m).stat().st_size == m.model_size
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
                errors.append(exc)
                return

    readers = [threading.Thread(target=read_forever) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(1, 30):
            publish(registry, f"v{i}")
            registry.promote(f"v{i}")
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []


def test_a_failed_atomic_write_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    (target / "inside").mkdir(parents=True)  # the rename onto a non-empty directory fails
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]
    assert [p.name for p in target.iterdir()] == ["inside"]


def test_registry_uris_are_paths_or_file_urls_only() -> None:
    assert registry_root("var/registry") == Path("var/registry")
    assert registry_root("file:///srv/models") == Path("/srv/models")
    with pytest.raises(RegistryError, match="not implemented"):
        registry_root("s3://bucket/models")


def test_no_key_configured_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="models keygen"):
        load_keys(RegistrySettings(), tmp_path)


def test_dev_key_is_created_private_once_and_reused(tmp_path: Path) -> None:
    settings = RegistrySettings(dev_key=True)
    _, first = load_keys(settings, tmp_path)
    _, second = load_keys(settings, tmp_path)
    assert first.key_id == second.key_id
    assert os.stat(tmp_path / DEV_KEY_FILE).st_mode & 0o777 == 0o600


def test_key_file_wins_and_keygen_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "model.key"
    generate_key_files(path, "hmac-sha256")
    assert os.stat(path).st_mode & 0o777 == 0o600
    settings = RegistrySettings(signing_key_file=path, signing_key=KEY.decode())  # type: ignore[arg-type]
    _, verifier = load_keys(settings, tmp_path)
    assert verifier.key_id == hmac_keys(path.read_bytes().strip())[1].key_id
    with pytest.raises(FileExistsError):
        generate_key_files(path, "hmac-sha256")


def test_ed25519_workers_verify_with_the_public_key_alone(tmp_path: Path) -> None:
    key = tmp_path / "trainer.pem"
    _, pub = generate_key_files(key, "ed25519")
    signer, _ = ed25519_keys(key.read_bytes(), None)
    assert signer is not None
    no_signer, verifier = ed25519_keys(None, pub.read_bytes())
    assert no_signer is None
    trainer = Registry(tmp_path / "reg", verifier, signer)
    publish(trainer, "v1")
    worker = Registry(tmp_path / "reg", verifier)
    assert verify(update_of(worker, "v1"), worker, CONTRACT).version == "v1"
    hmac_worker = Registry(tmp_path / "reg", hmac_keys(KEY)[1])
    assert hmac_worker.list() == []
    settings = RegistrySettings(signature_scheme="ed25519", verify_key_file=pub)
    assert load_keys(settings, tmp_path)[1].key_id == verifier.key_id
