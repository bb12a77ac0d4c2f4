"""Encryption of small personal or secret fields (ID numbers, TOTP seeds, escrowed SO PINs).

AES-256-GCM with a key derived from the instance secret (HKDF-SHA256); the key is never
stored. The ``purpose`` is bound as associated data, so a value cannot be moved to a field
of another kind.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


class FieldDecryptionError(Exception):
    """A stored field does not decrypt with this instance's secret."""


class FieldCipher:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("The instance secret must be at least 32 bytes.")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"guichet fields v1").derive(secret)
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, purpose: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())

    def decrypt(self, blob: bytes, *, purpose: str) -> str:
        if not blob or blob[:1] != _VERSION or len(blob) < 1 + 12 + 16:
            raise FieldDecryptionError("unknown field format")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], purpose.encode()).decode()
        except InvalidTag:
            raise FieldDecryptionError("field does not decrypt with this instance's secret") from None

    def __repr__(self) -> str:
        return "FieldCipher(<key hidden>)"
