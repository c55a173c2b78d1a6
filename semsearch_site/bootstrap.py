"""Preparing the data folder when a process starts (never when settings are imported).

Every entry point (``manage.py``, the WSGI/ASGI applications, the Celery app, the test session) calls
``data_dir_prepare`` before Django reads its settings: it creates the data, media, index and embedded-broker
folders and, unless ``SECRET_KEY`` is set, the generated secret key that settings then read. Idempotent.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"
BROKER_FOLDERS = ("queue", "processed", "control")


def data_dir() -> Path:
    """``SEMSEARCH_DATA_DIR`` (default ``./data`` in the project root), resolved."""
    return Path(os.environ.get("SEMSEARCH_DATA_DIR") or BASE_DIR / "data").resolve()


def storage_root() -> Path:
    """``SEMSEARCH_STORAGE_ROOT`` (default: the data folder), resolved."""
    return Path(os.environ.get("SEMSEARCH_STORAGE_ROOT") or data_dir()).resolve()


def data_dir_prepare() -> None:
    """Create the folders the embedded default writes to and, when no ``SECRET_KEY`` is set, a secret key file
    (created once, mode 0600, atomically, so concurrent starts agree on one key)."""
    _env_file_read()
    root = data_dir()
    storage = storage_root()
    for folder in (root, storage / "media", storage / "index", *(root / "broker" / name for name in BROKER_FOLDERS)):
        folder.mkdir(parents=True, exist_ok=True)
    key_file = root / SECRET_KEY_FILE
    if os.environ.get("SECRET_KEY") or key_file.exists():
        return
    tmp = root / f".{SECRET_KEY_FILE}.{os.getpid()}"
    tmp.write_text(secrets.token_urlsafe(50))
    tmp.chmod(0o600)
    try:
        os.link(tmp, key_file)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _env_file_read() -> None:
    """Read ``.env`` the way settings do, so both see the same ``SEMSEARCH_DATA_DIR`` and ``SECRET_KEY``."""
    import environ

    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
