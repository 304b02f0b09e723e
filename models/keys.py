"""The signing key of model artifacts, online snapshots and learner checkpoints.

From ``STREAMSCORE_REGISTRY__SIGNING_KEY_FILE`` (preferred) or
``STREAMSCORE_REGISTRY__SIGNING_KEY``. With neither set, a development key is created
once under ``var/keys/`` (mode 0600) and a warning says so: every process started
from the same directory shares it, which is what the demo and the tests need.
Production deployments set the file from a secret store.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from models.settings import RegistrySettings

logger = logging.getLogger(__name__)

DEV_KEY_FILE = Path("var/keys/signing.key")
MIN_KEY_BYTES = 16


def signing_key(settings: RegistrySettings, dev_key_file: Path = DEV_KEY_FILE) -> bytes:
    """The configured signing key (bytes), or the development key."""
    if settings.signing_key_file is not None:
        key = settings.signing_key_file.read_bytes().strip()
    elif settings.signing_key is not None:
        key = settings.signing_key.get_secret_value().encode()
    else:
        key = _dev_key(dev_key_file)
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the signing key must be at least {MIN_KEY_BYTES} bytes")
    return key


def _dev_key(path: Path) -> bytes:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic: exactly one process creates the key
            logger.warning(
                "no signing key configured: created a development key",
                extra={"path": str(path)},
            )
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()
