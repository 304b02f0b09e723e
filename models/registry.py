"""The model registry: a content-addressed store of signed artifacts, with pointers.

Layout of a registry directory::

    <root>/artifacts/<sha256>/model.onnx       the ONNX model, named by its SHA-256
    <root>/artifacts/<sha256>/manifest.json    its signed manifest
    <root>/manifests/<version>.json            the same signed manifest, found by version
    <root>/pointers/<model_name>.json          champion, previous and the champion history
    <root>/.lock                               serializes writers (flock)

Every file is written with temp file + fsync + atomic rename
(:func:`models.atomic.write_atomic`); an artifact directory is assembled in a
staging directory and renamed into place whole. Readers take no lock: they see the
state before a write or after it. Writers (trainer, operators) take an exclusive
``flock`` on ``.lock`` for read-modify-write of the pointers.

URI forms: a plain path or ``file:///abs/path``. Object stores (``s3://``,
``gs://``) are not implemented; mount the bucket (s3fs, gcsfuse) and give its path —
the write protocol needs only atomic rename within a directory.

Reading never trusts the files: :meth:`Registry.get` checks the manifest's
signature, and :func:`models.verify.verify` checks hashes and the model before use.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from models.atomic import canonical_json, fsync_dir, write_atomic
from models.manifest import (
    FileEntry,
    Manifest,
    SignedManifest,
    sign_manifest,
    utc_now,
    verify_payload,
)
from models.signing import SignatureError, Signer, Verifier

logger = logging.getLogger(__name__)

__all__ = ["Pointers", "Registry", "RegistryError", "registry_root"]


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (unknown version, bad state, no signer...)."""


def registry_root(uri: str) -> Path:
    """The directory of a registry URI (a path or ``file://``).

    Examples
    --------
    >>> registry_root("file:///srv/registry").as_posix()
    '/srv/registry'
    >>> registry_root("s3://bucket/models")
    Traceback (most recent call last):
    ...
    models.registry.RegistryError: registry URI scheme 's3' is not implemented: ...
    """
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "":
        return Path(uri)
    raise RegistryError(
        f"registry URI scheme {parsed.scheme!r} is not implemented: mount the object store "
        "as a directory (s3fs, gcsfuse) and give its path"
    )


@dataclass(frozen=True)
class Pointers:
    """Which version serves (``champion``), which served before (``previous``).

    ``history`` lists past champions, oldest first (the current one last): each
    rollback steps one back.
    """

    champion: str | None = None
    previous: str | None = None
    history: tuple[str, ...] = ()
    updated_time: datetime | None = field(default=None, compare=False)
    """When the pointers were last written (``None`` before the first write)."""

    def promoted(self, version: str) -> Pointers:
        """The pointers after ``version`` becomes champion."""
        history = (*self.history, version)[-100:]
        return Pointers(champion=version, previous=self.champion, history=history)

    def rolled_back(self) -> Pointers:
        """The pointers after the champion is withdrawn in favour of the one before."""
        if len(self.history) < 2:
            raise RegistryError("no earlier champion to roll back to")
        history = self.history[:-1]
        return Pointers(
            champion=history[-1],
            previous=history[-2] if len(history) > 1 else None,
            history=history,
        )


class Registry:
    """A registry directory, with the keys to sign (optional) and verify manifests.

    Parameters
    ----------
    root
        The registry directory (created on first write).
    verifier
        Checks manifest signatures on every read.
    signer
        Signs manifests on publish; ``None`` for read-only users (workers).
    model_name
        The model family whose pointers this instance moves.

    Examples
    --------
    >>> import tempfile
    >>> from models.signing import hmac_keys
    >>> signer, verifier = hmac_keys(b"x" * 32)
    >>> reg = Registry(Path(tempfile.mkdtemp()), verifier, signer)
    >>> reg.list(), reg.pointers().champion
    ([], None)
    """

    def __init__(
        self, root: Path, verifier: Verifier, signer: Signer | None = None, model_name: str = "deep"
    ) -> None:
        self.root = Path(root)
        self.verifier = verifier
        self.signer = signer
        self.model_name = model_name

    # ----------------------------------------------------------------- paths

    def artifact_dir(self, sha256: str) -> Path:
        """Directory of the artifact whose model file has this SHA-256."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise RegistryError(f"not a sha256: {sha256!r}")
        return self.root / "artifacts" / sha256

    def model_path(self, manifest: Manifest) -> Path:
        """Path of the model file of ``manifest``."""
        return self.artifact_dir(manifest.sha256) / manifest.model_file

    def _manifest_path(self, version: str) -> Path:
        if "/" in version or version.startswith("."):
            raise RegistryError(f"bad version {version!r}")
        return self.root / "manifests" / f"{version}.json"

    def _pointer_path(self) -> Path:
        return self.root / "pointers" / f"{self.model_name}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ----------------------------------------------------------------- writes

    def publish(
        self,
        model: bytes,
        fields: Mapping[str, Any],
        *,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> Manifest:
        """Store ``model`` and its signed manifest; return the manifest.

        ``fields`` are the manifest fields other than ``files``, ``created_time``,
        ``signature_scheme`` and ``key_id``, which are filled in here. Publishing does
        not make the model champion (see :meth:`promote`).

        Raises
        ------
        RegistryError
            No signer, or the version exists already.
        pydantic.ValidationError
            The fields do not make a valid manifest.
        """
        if self.signer is None:
            raise RegistryError("this registry has no signing key: it cannot publish")
        blobs = {str(fields.get("model_file", "model.onnx")): model, **(extra_files or {})}
        files = {
            name: FileEntry(sha256=_sha256(data), size=len(data)) for name, data in blobs.items()
        }
        manifest = Manifest.model_validate(
            {
                **fields,
                "files": files,
                "created_time": utc_now(),
                "signature_scheme": self.signer.scheme,
                "key_id": self.signer.key_id,
            }
        )
        signed = sign_manifest(manifest, self.signer)
        with self._locked():
            if self._manifest_path(manifest.version).exists():
                raise RegistryError(f"version {manifest.version} exists already")
            self._store_artifact(manifest.sha256, blobs, signed)
            write_atomic(self._manifest_path(manifest.version), signed.to_json())
        logger.info(
            "published %s (sha256 %s, %d bytes)",
            manifest.version,
            manifest.sha256[:12],
            manifest.model_size,
        )
        return manifest

    def _store_artifact(self, sha: str, blobs: Mapping[str, bytes], signed: SignedManifest) -> None:
        final = self.artifact_dir(sha)
        if final.exists():
            return  # same bytes already stored: content addressing makes this a no-op
        staging = self.root / "artifacts" / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            for name, data in blobs.items():
                write_atomic(staging / name, data)
            write_atomic(staging / "manifest.json", signed.to_json())
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(final.parent)

    def promote(self, version: str) -> Pointers:
        """Make ``version`` the champion (the old one becomes ``previous``)."""
        self.get(version)  # exists and is signed
        with self._locked():
            pointers = self.pointers().promoted(version)
            self._write_pointers(pointers)
        logger.info("promoted %s", version)
        return pointers

    def rollback(self) -> Pointers:
        """Withdraw the champion; the champion before it serves again."""
        with self._locked():
            pointers = self.pointers().rolled_back()
            self._write_pointers(pointers)
        logger.info("rolled back to %s", pointers.champion)
        return pointers

    def _write_pointers(self, pointers: Pointers) -> None:
        data = {
            "model_name": self.model_name,
            "champion": pointers.champion,
            "previous": pointers.previous,
            "history": list(pointers.history),
            "updated_time": utc_now().isoformat(),
        }
        write_atomic(self._pointer_path(), canonical_json(data))

    # ----------------------------------------------------------------- reads

    def get(self, version: str) -> SignedManifest:
        """The signed manifest of ``version``, its signature checked.

        Raises
        ------
        RegistryError
            Unknown version, unreadable file, or a bad signature.
        """
        raw = self.read_raw(version)
        try:
            return self.load_signed(raw)
        except (SignatureError, ValidationError, TypeError, KeyError) as exc:
            raise RegistryError(f"manifest of {version} fails verification: {exc}") from None

    def read_raw(self, version: str) -> dict[str, Any]:
        """The stored ``{"manifest": ..., "signature": ...}`` object of ``version``, unchecked.

        Raises
        ------
        RegistryError
            Unknown version, or the file is not a JSON object.
        """
        path = self._manifest_path(version)
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise RegistryError(f"unknown version {version!r}") from None
        except (OSError, ValueError) as exc:
            raise RegistryError(f"unreadable manifest {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise RegistryError(f"manifest file {path} is not a JSON object")
        return raw

    def load_signed(self, raw: Mapping[str, Any]) -> SignedManifest:
        """Verify and parse a ``{"manifest": ..., "signature": ...}`` object."""
        payload, signature = raw["manifest"], raw["signature"]
        if not isinstance(payload, Mapping) or not isinstance(signature, str):
            raise TypeError("manifest must be an object and signature a string")
        verify_payload(payload, signature, self.verifier)
        return SignedManifest(manifest=Manifest.model_validate(payload), signature=signature)

    def list(self) -> list[Manifest]:
        """Every published manifest whose signature checks, oldest first.

        Manifests that fail verification are logged and left out.
        """
        folder = self.root / "manifests"
        found: list[Manifest] = []
        for path in sorted(folder.glob("*.json")) if folder.exists() else []:
            try:
                found.append(self.get(path.stem).manifest)
            except RegistryError as exc:
                logger.warning("skipping %s: %s", path.name, exc)
        return sorted(found, key=lambda m: (m.created_time, m.version))

    def pointers(self) -> Pointers:
        """The current champion / previous pointers (empty if none was ever set)."""
        try:
            raw = json.loads(self._pointer_path().read_bytes())
        except FileNotFoundError:
            return Pointers()
        updated = raw.get("updated_time")
        return Pointers(
            champion=raw.get("champion"),
            previous=raw.get("previous"),
            history=tuple(raw.get("history", ())),
            updated_time=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
        )

    def champion(self) -> SignedManifest | None:
        """The champion's signed manifest, or ``None`` before the first promotion."""
        version = self.pointers().champion
        return None if version is None else self.get(version)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
