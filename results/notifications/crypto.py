"""Channel secrets (webhook signing keys, Alertmanager credentials) are stored encrypted
with Fernet (the ``cryptography`` library): AES-128-CBC plus HMAC-SHA256, authenticated,
so a tampered or foreign value fails to decrypt instead of yielding garbage."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretError(ValueError):
    """A stored secret that the configured keys cannot decrypt."""


@cache
def _fernet() -> MultiFernet:
    keys = list(settings.FLEETWATCH_NOTIFY_SECRET_KEYS)
    if not keys:  # derived, so a default install works; operators set their own to rotate
        digest = hashlib.sha256(b"fleetwatch-notify:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretError("a channel secret does not decrypt with the configured keys") from None
