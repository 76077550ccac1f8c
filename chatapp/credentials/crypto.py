"""Encryption of each person's API keys at rest: `cryptography`'s Fernet (AES-128-CBC with an
HMAC-SHA256, a timestamp in each token) behind a MultiFernet, so keys can be rotated.

The keys come from `CHAT_KEY_ENCRYPTION_KEYS`, newest first: the first encrypts, every one
decrypts, and `manage.py rotate_api_keys` re-encrypts every stored key with the first. Without
the variable, one key is derived from the secret key (HKDF-SHA256), so a first run works; a
server that sets the variable later lists that derived key as the variable's last entry
(`manage.py rotate_api_keys --print-derived-key`) or its people enter their keys again. How to
rotate: docs/SECURITY.md rule 15.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["InvalidToken", "decrypt", "derived_key", "encrypt", "fernet", "rotate"]
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from Django's secret key (used when no key is configured)."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"chatapp person api keys"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


@lru_cache(maxsize=4)
def _fernet(configured: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not configured:
        return MultiFernet([Fernet(derived_key(secret_key))])
    try:
        return MultiFernet([Fernet(key.encode()) for key in configured])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "CHAT_KEY_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64-encoded bytes "
            'each, e.g. from python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"), separated by commas'
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CHAT_KEY_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plain: str) -> bytes:
    return fernet().encrypt(plain.encode())


def decrypt(token: bytes) -> str | None:
    """The key, or None when no configured key opens the token (they were rotated away)."""
    try:
        return fernet().decrypt(bytes(token)).decode()
    except InvalidToken:
        return None


def rotate(token: bytes) -> bytes:
    """The token re-encrypted with the first key (InvalidToken if none opens it)."""
    return fernet().rotate(bytes(token))
