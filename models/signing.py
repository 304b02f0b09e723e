"""Sign and verify model manifests: HMAC-SHA256 (shared key) or Ed25519 (key pair).

What gets signed is the manifest's canonical JSON (:func:`models.atomic.canonical_json`):
the manifest lists the SHA-256 and size of every file of the artifact, so one
signature covers the model bytes too.

Schemes
-------
``hmac-sha256`` (default)
    One secret key (at least 32 bytes; ``streamscore models keygen`` writes 32 random
    bytes as 64 hex characters) signs and verifies. Every worker holds it, so any
    worker could also sign.
``ed25519``
    The trainer holds the private key (PEM, PKCS#8) and signs; workers hold only
    the public key (PEM) and can verify but never sign.

Signatures are lowercase hex. Each manifest names its ``key_id`` (the first 16 hex
digits of a SHA-256 over the verifying key), so a verifier can tell "signed with
another key" from "tampered with".
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from models.atomic import write_atomic
from models.settings import RegistrySettings

logger = logging.getLogger(__name__)

__all__ = [
    "DEV_KEY_FILE",
    "MIN_KEY_BYTES",
    "Scheme",
    "SignatureError",
    "Signer",
    "SigningKeyError",
    "Verifier",
    "ed25519_keys",
    "generate_key_files",
    "hmac_keys",
    "load_keys",
]

Scheme = Literal["hmac-sha256", "ed25519"]
MIN_KEY_BYTES = 32
DEV_KEY_FILE = "dev-signing.key"
"""Name of the development key file created in the registry directory on request."""


class SignatureError(ValueError):
    """A signature does not match its payload under the verifier's key."""


class SigningKeyError(RuntimeError):
    """No usable key is configured (the message says how to configure one)."""


def _key_id(material: bytes) -> str:
    return hashlib.sha256(b"streamscore-key-id\x00" + material).hexdigest()[:16]


@dataclass(frozen=True)
class Verifier:
    """Checks signatures of one scheme under one key."""

    scheme: Scheme
    key_id: str
    _hmac_key: bytes | None = field(default=None, repr=False)
    _public: Ed25519PublicKey | None = field(default=None, repr=False)

    def verify(self, payload: bytes, signature: str) -> None:
        """Return if ``signature`` (hex) signs ``payload``; raise :class:`SignatureError` if not."""
        try:
            sig = bytes.fromhex(signature)
        except ValueError:
            raise SignatureError("signature is not hex") from None
        if self._hmac_key is not None:
            expected = hmac.new(self._hmac_key, payload, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, sig):
                raise SignatureError("HMAC-SHA256 signature does not match")
            return
        assert self._public is not None
        try:
            self._public.verify(sig, payload)
        except InvalidSignature:
            raise SignatureError("Ed25519 signature does not match") from None


@dataclass(frozen=True)
class Signer:
    """Signs payloads with one scheme and key."""

    scheme: Scheme
    key_id: str
    _hmac_key: bytes | None = field(default=None, repr=False)
    _private: Ed25519PrivateKey | None = field(default=None, repr=False)

    def sign(self, payload: bytes) -> str:
        """Return the hex signature of ``payload``."""
        if self._hmac_key is not None:
            return hmac.new(self._hmac_key, payload, hashlib.sha256).hexdigest()
        assert self._private is not None
        return self._private.sign(payload).hex()


def hmac_keys(key: bytes) -> tuple[Signer, Verifier]:
    """Signer and verifier of a shared HMAC-SHA256 key.

    Examples
    --------
    >>> signer, verifier = hmac_keys(b"k" * 32)
    >>> verifier.verify(b"payload", signer.sign(b"payload"))
    >>> verifier.verify(b"payload!", signer.sign(b"payload"))
    Traceback (most recent call last):
    ...
    models.signing.SignatureError: HMAC-SHA256 signature does not match
    """
    if len(key) < MIN_KEY_BYTES:
        raise SigningKeyError(
            f"signing key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed "
            "(`streamscore models keygen` writes a good one)"
        )
    kid = _key_id(key)
    return Signer("hmac-sha256", kid, _hmac_key=key), Verifier("hmac-sha256", kid, _hmac_key=key)


def ed25519_keys(
    private_pem: bytes | None, public_pem: bytes | None
) -> tuple[Signer | None, Verifier]:
    """Signer (when the private key is given) and verifier of an Ed25519 key pair."""
    private: Ed25519PrivateKey | None = None
    if private_pem is not None:
        loaded = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise SigningKeyError("the private key file does not hold an Ed25519 key")
        private = loaded
    if public_pem is not None:
        public = serialization.load_pem_public_key(public_pem)
        if not isinstance(public, Ed25519PublicKey):
            raise SigningKeyError("the public key file does not hold an Ed25519 key")
    elif private is not None:
        public = private.public_key()
    else:
        raise SigningKeyError(
            "ed25519 needs verify_key_file (workers) or signing_key_file (trainer)"
        )
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = _key_id(raw)
    signer = None if private is None else Signer("ed25519", kid, _private=private)
    return signer, Verifier("ed25519", kid, _public=public)


def _read_secret(path: Path) -> bytes:
    return path.read_bytes().rstrip(b"\r\n")


def _dev_key(root: Path) -> bytes:
    path = root / DEV_KEY_FILE
    if not path.exists():
        write_atomic(path, secrets.token_hex(32).encode("ascii") + b"\n", mode=0o600)
    logger.warning(
        "USING THE DEVELOPMENT SIGNING KEY %s: anyone who can write the registry can read "
        "it and sign models. Set STREAMSCORE_REGISTRY__SIGNING_KEY_FILE for real use.",
        path,
    )
    return _read_secret(path)


def load_keys(settings: RegistrySettings, root: Path) -> tuple[Signer | None, Verifier]:
    """Build the signer (``None`` if this process cannot sign) and the verifier from settings.

    ``root`` is the registry directory (where a development key lives).

    Raises
    ------
    SigningKeyError
        No key is configured and ``dev_key`` is off, or a key is unusable.
    """
    if settings.signature_scheme == "ed25519":
        private = None if settings.signing_key_file is None else settings.signing_key_file
        public = settings.verify_key_file
        return ed25519_keys(
            None if private is None else private.read_bytes(),
            None if public is None else public.read_bytes(),
        )
    if settings.signing_key_file is not None:
        key = _read_secret(settings.signing_key_file)
    elif settings.signing_key is not None:
        key = settings.signing_key.get_secret_value().encode("utf-8")
    elif settings.dev_key:
        key = _dev_key(root)
    else:
        raise SigningKeyError(
            "no model signing key configured: run `streamscore models keygen KEYFILE` and set "
            "STREAMSCORE_REGISTRY__SIGNING_KEY_FILE=KEYFILE (or, for a local demo only, "
            "STREAMSCORE_REGISTRY__DEV_KEY=true)"
        )
    signer, verifier = hmac_keys(key)
    return signer, verifier


def generate_key_files(path: Path, scheme: Scheme) -> list[Path]:
    """Write a new key (mode 0600) and return the files written; never overwrites.

    ``hmac-sha256``: 32 random bytes as hex in ``path``. ``ed25519``: the private key
    (PEM) in ``path`` and the public key in ``path`` + ``.pub``.
    """
    targets = [path] if scheme == "hmac-sha256" else [path, path.with_name(path.name + ".pub")]
    for target in targets:
        if target.exists():
            raise FileExistsError(f"{target} exists; refusing to overwrite a key")
    if scheme == "hmac-sha256":
        write_atomic(path, secrets.token_hex(32).encode("ascii") + b"\n", mode=0o600)
        return targets
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(path, pem, mode=0o600)
    write_atomic(targets[1], pub, mode=0o644)
    return targets
