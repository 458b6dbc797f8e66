"""Envelope encryption of a request's private text (`cryptography`, AES-256).

Each request gets its own random data key: the text is encrypted with AES-GCM
under that key (the request id as associated data, so a ciphertext cannot be
moved to another request), and the data key is stored wrapped (RFC 3394 AES
key wrap) by the platform key from settings (`DELEGO_SEALING_KEY`).

The wrapped key and the ciphertext are stored apart (`request_keys` and the
request document): deleting the request's key makes every copy of the
ciphertext, backups included, unreadable (crypto-shredding).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

NONCE_BYTES = 12
KEY_BYTES = 32


class SealingKeyInvalid(ValueError):
    """The platform key is not 32 bytes of URL-safe base64."""


class Unreadable(Exception):
    """The text cannot be opened: wrong platform key, or altered data."""


def platform_key(encoded: str) -> bytes:
    """Decode `DELEGO_SEALING_KEY` (URL-safe base64 of 32 random bytes)."""
    try:
        key = base64.urlsafe_b64decode(encoded.encode() + b"=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise SealingKeyInvalid("the sealing key is not URL-safe base64") from None
    if len(key) != KEY_BYTES:
        raise SealingKeyInvalid(f"the sealing key must decode to {KEY_BYTES} bytes")
    return key


def new_platform_key() -> str:
    """A fresh platform key, encoded for `DELEGO_SEALING_KEY`."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


@dataclass(frozen=True)
class SealedText:
    """One request's text encrypted under its data key (stored in the request document)."""

    nonce: bytes
    ciphertext: bytes


class Sealer:
    """Seals and opens private texts under one platform key.

    `new_key()` makes a request's data key, returned wrapped (only the wrapped
    form is ever stored); `seal`/`open` take that wrapped key.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SealingKeyInvalid(f"the sealing key must be {KEY_BYTES} bytes")
        self._kek = key

    def new_key(self) -> bytes:
        return aes_key_wrap(self._kek, AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    def seal(self, request_id: str, wrapped_key: bytes, text: str) -> SealedText:
        nonce = os.urandom(NONCE_BYTES)
        aead = AESGCM(self._unwrap(request_id, wrapped_key))
        return SealedText(nonce, aead.encrypt(nonce, text.encode(), request_id.encode()))

    def open(self, request_id: str, wrapped_key: bytes, sealed: SealedText) -> str:
        aead = AESGCM(self._unwrap(request_id, wrapped_key))
        try:
            plain = aead.decrypt(sealed.nonce, sealed.ciphertext, request_id.encode())
        except (InvalidTag, ValueError):
            raise Unreadable(request_id) from None
        return plain.decode()

    def _unwrap(self, request_id: str, wrapped_key: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._kek, wrapped_key)
        except (InvalidUnwrap, ValueError):
            raise Unreadable(request_id) from None
