"""Signature algorithm choice and raw signing, for any ``cryptography`` private key.

The same code signs with a software key (the throwaway lint key, tests) and with a PKCS#11
key wrapped by :mod:`ca.token` as a ``cryptography`` private key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed


@dataclass(frozen=True)
class SignatureAlgorithm:
    """A signature algorithm with its DER AlgorithmIdentifier."""

    name: str
    algorithm_identifier: bytes  # DER AlgorithmIdentifier, as in a certificate or CRL
    hash_name: str  # hashlib name: "sha256", "sha384", "sha512"

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[
            self.hash_name
        ]


SHA256_WITH_RSA = SignatureAlgorithm(
    "sha256WithRSAEncryption", bytes.fromhex("300d06092a864886f70d01010b0500"), "sha256"
)
SHA384_WITH_RSA = SignatureAlgorithm(
    "sha384WithRSAEncryption", bytes.fromhex("300d06092a864886f70d01010c0500"), "sha384"
)
ECDSA_WITH_SHA256 = SignatureAlgorithm(
    "ecdsa-with-SHA256", bytes.fromhex("300a06082a8648ce3d040302"), "sha256"
)
ECDSA_WITH_SHA384 = SignatureAlgorithm(
    "ecdsa-with-SHA384", bytes.fromhex("300a06082a8648ce3d040303"), "sha384"
)

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def signature_algorithm_for(key: SigningKey) -> SignatureAlgorithm:
    """The one place that chooses the signature algorithm for a CA key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return SHA256_WITH_RSA
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return ECDSA_WITH_SHA256
        if isinstance(key.curve, ec.SECP384R1):
            return ECDSA_WITH_SHA384
        raise ValueError(f"unsupported curve {key.curve.name}")
    raise TypeError("key must be an RSA or elliptic-curve private key")


class KeySigner:
    """Signs bytes (or a digest computed incrementally) with one private key."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.algorithm = signature_algorithm_for(key)

    def hasher(self) -> "hashlib._Hash":
        """A fresh hash object, for callers that hash a large document as they write it."""
        return hashlib.new(self.algorithm.hash_name)

    def sign(self, data: bytes) -> bytes:
        h = self.hasher()
        h.update(data)
        return self.sign_digest(h.digest())

    def sign_digest(self, digest: bytes) -> bytes:
        prehashed = Prehashed(self.algorithm.hash_algorithm())
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(digest, padding.PKCS1v15(), prehashed)
        return self.key.sign(digest, ec.ECDSA(prehashed))
