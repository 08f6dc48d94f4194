"""Encryption of stored SIP passwords (Fernet: AES-128-CBC + HMAC-SHA256) with SIP_SECRET_KEY."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class SecretsUnavailable(RuntimeError):
    """SIP_SECRET_KEY is unset or wrong: passwords can be neither stored nor read."""


class SecretBox:
    def __init__(self, key: str):
        try:
            self._fernet = Fernet(key.encode()) if key else None
        except ValueError:
            raise SecretsUnavailable("SIP_SECRET_KEY is not a valid Fernet key "
                                     "(generate one: python -c 'from cryptography.fernet import Fernet; "
                                     "print(Fernet.generate_key().decode())')") from None

    @property
    def available(self) -> bool:
        return self._fernet is not None

    def encrypt(self, plaintext: str | None) -> str | None:
        if plaintext is None:
            return None
        if self._fernet is None:
            raise SecretsUnavailable("SIP_SECRET_KEY is not set: SIP passwords cannot be stored")
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        if token is None:
            return None
        if self._fernet is None:
            raise SecretsUnavailable("SIP_SECRET_KEY is not set: stored SIP passwords cannot be read")
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretsUnavailable("SIP_SECRET_KEY does not decrypt the stored passwords (was it rotated?)") from None
