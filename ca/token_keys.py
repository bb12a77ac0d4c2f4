"""PKCS#11 private keys as ``cryptography`` private keys.

:mod:`ca.token` finds and creates keys; this module makes a found key usable by the ordinary
``cryptography`` builders (certificates, CSRs, CRLs) and by :class:`ca.signer.KeySigner`.
The key never leaves the token: a digest goes in, a signature comes out.
"""

from __future__ import annotations

import threading
from typing import Any, NoReturn

import pkcs11
from asn1crypto.core import OctetString
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism

from ca import errors
from ca.token_cryptoki import pkcs11_errors

# --- mechanism choice -----------------------------------------------------------------------

# DER DigestInfo header (RFC 8017 §9.2 note 1) for each hash a certificate of ours may use.
_DIGEST_INFO_PREFIX: dict[str, bytes] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}

_CURVES_BY_PARAMS: dict[bytes, ec.EllipticCurve] = {
    bytes.fromhex("06082a8648ce3d030107"): ec.SECP256R1(),
    bytes.fromhex("06052b81040022"): ec.SECP384R1(),
    bytes.fromhex("06052b81040023"): ec.SECP521R1(),
}


def signing_input(key_type: KeyType, digest: bytes, hash_name: str) -> tuple[Mechanism, bytes]:
    """The one place that chooses the PKCS#11 mechanism; the hash is always computed in Python.

    RSA: CKM_RSA_PKCS over a DigestInfo, so one mechanism serves every hash. EC: CKM_ECDSA over
    the digest (SoftHSM 2.6 has no CKM_ECDSA_SHA256).
    """
    if key_type == KeyType.RSA:
        prefix = _DIGEST_INFO_PREFIX.get(hash_name)
        if prefix is None:
            raise errors.MechanismUnsupported(
                f"RSA signatures use SHA-256, SHA-384 or SHA-512, not {hash_name}"
            )
        return Mechanism.RSA_PKCS, prefix + digest
    if key_type == KeyType.EC:
        return Mechanism.ECDSA, digest
    raise errors.MechanismUnsupported(f"cannot sign with a {key_type.name} key")


def _digest(data: bytes, algorithm: Prehashed | hashes.HashAlgorithm) -> tuple[bytes, str]:
    """The digest to sign and its hash name; a ``Prehashed`` input is checked, not rehashed."""
    if isinstance(algorithm, Prehashed):
        hash_algorithm: hashes.HashAlgorithm = algorithm._algorithm  # no public accessor
        if len(data) != algorithm.digest_size:
            raise ValueError(
                f"The prehashed data must be {algorithm.digest_size} bytes for {hash_algorithm.name}."
            )
        return bytes(data), hash_algorithm.name
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize(), algorithm.name


# --- public keys ----------------------------------------------------------------------------

def curve_from_params(ec_params: bytes) -> ec.EllipticCurve:
    """The curve named by a DER CKA_EC_PARAMS value."""
    curve = _CURVES_BY_PARAMS.get(bytes(ec_params))
    if curve is None:
        raise errors.MechanismUnsupported(f"unsupported EC parameters {bytes(ec_params).hex()}")
    return curve


def read_public_key(obj: Any) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """A ``cryptography`` public key from an RSA key object (public or private) or an EC public key.

    Makes C calls: the caller holds the session lock inside :func:`pkcs11_errors`.
    """
    key_type = obj[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        modulus = int.from_bytes(obj[Attribute.MODULUS], "big")
        exponent = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if key_type == KeyType.EC:
        curve = curve_from_params(obj[Attribute.EC_PARAMS])
        point = bytes(obj[Attribute.EC_POINT])
        if len(point) != 1 + 2 * ((curve.key_size + 7) // 8):
            point = bytes(OctetString.load(point))  # DER OCTET STRING, as PKCS#11 says
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    raise errors.MechanismUnsupported(f"unsupported key type {key_type.name}")


# --- the wrappers ---------------------------------------------------------------------------

class _TokenKey:
    """What both wrappers share: the PKCS#11 key, its session lock, its public key.

    The lock (one per session, shared by every key of that session) makes one wrapper safe to
    use from several threads, but it serialises them: for throughput, give each thread its own
    session and its own wrapper.
    """

    def __init__(self, key: pkcs11.PrivateKey, public_key: Any, lock: threading.RLock, name: str) -> None:
        self._key = key
        self._public = public_key
        self._key_type = KeyType.RSA if isinstance(public_key, rsa.RSAPublicKey) else KeyType.EC
        self._lock = lock
        self.name = name

    def _sign_digest(self, digest: bytes, hash_name: str) -> bytes:
        mechanism, payload = signing_input(self._key_type, digest, hash_name)
        with self._lock, pkcs11_errors(f"signing with {self.name}"):
            return bytes(self._key.sign(payload, mechanism=mechanism))

    def _refuse(self, what: str) -> NoReturn:
        raise errors.TokenError(f"{what} is not available: the private key {self.name} never leaves the token")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class PKCS11RSAPrivateKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA key on a token, signing with PKCS#1 v1.5."""

    @property
    def key_size(self) -> int:
        return int(self._public.key_size)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public  # type: ignore[no-any-return]

    def sign(
        self,
        data: bytes,
        padding: asym_padding.AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm,
    ) -> bytes:
        if not isinstance(padding, asym_padding.PKCS1v15):
            raise errors.MechanismUnsupported(
                f"{self.name} signs with PKCS#1 v1.5 padding only, not {padding.name}"
            )
        return self._sign_digest(*_digest(data, algorithm))

    def decrypt(self, ciphertext: bytes, padding: asym_padding.AsymmetricPadding) -> bytes:
        self._refuse("decrypt")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        self._refuse("private_numbers")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        self._refuse("private_bytes")


class PKCS11ECPrivateKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An EC key on a token, signing with ECDSA (DER-encoded signatures, as X.509 wants)."""

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve  # type: ignore[no-any-return]

    @property
    def key_size(self) -> int:
        return int(self._public.curve.key_size)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public  # type: ignore[no-any-return]

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise errors.MechanismUnsupported(f"{self.name} signs with ECDSA only")
        if getattr(signature_algorithm, "deterministic_signing", False):
            raise errors.MechanismUnsupported(f"{self.name} cannot sign with deterministic ECDSA")
        raw = self._sign_digest(*_digest(data, signature_algorithm.algorithm))
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        self._refuse("exchange")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        self._refuse("private_numbers")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        self._refuse("private_bytes")


TokenPrivateKey = PKCS11RSAPrivateKey | PKCS11ECPrivateKey


def wrap_private_key(
    key: pkcs11.PrivateKey,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    lock: threading.RLock,
    name: str,
) -> TokenPrivateKey:
    """The ``cryptography`` wrapper for a token private key whose public half is ``public_key``."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return PKCS11RSAPrivateKey(key, public_key, lock, name)
    return PKCS11ECPrivateKey(key, public_key, lock, name)
