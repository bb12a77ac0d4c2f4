"""Holder certificate issuance: build, lint a throwaway-signed copy, sign, check (Boulder's order).

The RA reserves the serial and records its intent before calling :meth:`Issuer.issue`; a
caller that wants to record the linted TBS hash before the HSM signs uses
:meth:`Issuer.prepare` then :meth:`Issuer.sign`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ca import der
from ca.errors import CAError, RequestError, SigningError
from ca.lint import NCP_PLUS_POLICY, Linter, LintReport
from ca.profiles import PROFILES, HolderSubject, Profile, check_public_key, get_profile
from ca.signer import KeySigner, SigningKey

MIN_SERIAL = 2**63  # at least 64 significant bits
MAX_SERIAL_BITS = 159  # a positive INTEGER of at most 20 octets


def _check_http_url(label: str, url: object) -> None:
    if not isinstance(url, str) or not url.isascii() or any(c.isspace() or ord(c) < 0x20 for c in url):
        raise ValueError(f"{label} must be an ASCII URL without spaces, not {url!r}")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.username or parts.fragment:
        raise ValueError(f"{label} must be a plain http:// URL with a host, not {url!r}")


def _check_aware(label: str, value: object) -> None:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise RequestError(f"{label} must be a timezone-aware datetime")


@dataclass(frozen=True, kw_only=True)
class IssuerConfig:
    """The issuing CA's certificate and the URLs and policy written in every holder certificate."""

    ca_certificate: bytes  # DER
    crl_url: str
    ca_issuers_url: str
    policy_oid: str  # the CA's own certificate policy; ETSI NCP+ is always added
    ocsp_url: str | None = None
    certificate: x509.Certificate = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            certificate = x509.load_der_x509_certificate(self.ca_certificate)
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
            certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ca_certificate must be a DER CA certificate ({exc})") from None
        except x509.ExtensionNotFound as exc:
            raise ValueError(f"ca_certificate lacks an extension the profile needs ({exc})") from None
        if not constraints.ca:
            raise ValueError("ca_certificate is not a CA certificate (basicConstraints CA:FALSE)")
        object.__setattr__(self, "certificate", certificate)
        _check_http_url("crl_url", self.crl_url)
        _check_http_url("ca_issuers_url", self.ca_issuers_url)
        if self.ocsp_url is not None:
            _check_http_url("ocsp_url", self.ocsp_url)
        try:
            policy = x509.ObjectIdentifier(self.policy_oid)
        except (TypeError, ValueError):
            raise ValueError(f"policy_oid must be a dotted OID, not {self.policy_oid!r}") from None
        if policy == NCP_PLUS_POLICY:
            raise ValueError("policy_oid must be the CA's own policy, NCP+ is added anyway")


@dataclass(frozen=True, kw_only=True)
class IssuanceRequest:
    """What the RA asks the CA to sign: reserved serial, validated subject, the CSR's key."""

    serial: int
    subject: HolderSubject
    public_key_der: bytes  # SubjectPublicKeyInfo DER, taken from the CSR
    profile: str
    not_before: dt.datetime
    not_after: dt.datetime

    def __post_init__(self) -> None:
        if type(self.serial) is not int or not (
            MIN_SERIAL <= self.serial and self.serial.bit_length() <= MAX_SERIAL_BITS
        ):
            raise RequestError("the serial must be an int with at least 64 bits that fits in 20 octets")
        if not isinstance(self.subject, HolderSubject):
            raise RequestError("the subject must be a HolderSubject")
        if not isinstance(self.public_key_der, bytes):
            raise RequestError("the public key must be SubjectPublicKeyInfo DER bytes")
        get_profile(self.profile)
        _check_aware("not_before", self.not_before)
        _check_aware("not_after", self.not_after)
        if not self.not_before < self.not_after:
            raise RequestError("not_after must come after not_before")
        if self.not_after - self.not_before > get_profile(self.profile).max_validity:
            raise RequestError(f"the validity exceeds {get_profile(self.profile).max_validity.days} days")


@dataclass(frozen=True)
class PreparedCertificate:
    """A certificate built and linted, not yet signed by the CA key."""

    request: IssuanceRequest
    tbs_certificate: bytes  # the linted TBSCertificate DER
    lint: LintReport
    signature_algorithm: bytes = field(repr=False)  # DER AlgorithmIdentifier, as inside the TBS

    @property
    def tbs_sha256(self) -> bytes:
        return hashlib.sha256(self.tbs_certificate).digest()


@dataclass(frozen=True)
class IssuedCertificate:
    der: bytes
    serial: int
    tbs_sha256: bytes  # SHA-256 of the TBSCertificate that was linted and signed
    warnings: tuple[str, ...]  # lint warnings (the double-usage key usage gives one)

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.der).digest()


def _throwaway_key_like(key: SigningKey) -> SigningKey:
    """A software key of the CA key's family: its signature only serves to lint the TBS.

    RSA size is not part of the TBS, so a small key keeps the lint signature cheap.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return ec.generate_private_key(key.curve)


class Issuer:
    """Signs holder certificates with one CA key, each one linted first."""

    def __init__(
        self,
        config: IssuerConfig,
        signing_key: SigningKey,
        linter: Linter | None = None,
        *,
        profiles: Mapping[str, Profile] = PROFILES,
    ) -> None:
        self.config = config
        self._signer = KeySigner(signing_key)
        self._hash = self._signer.algorithm.hash_algorithm()
        ca = config.certificate
        self._ca_public_key = ca.public_key()
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if signing_key.public_key().public_bytes(*spki) != self._ca_public_key.public_bytes(*spki):
            raise ValueError("the signing key does not match the CA certificate's public key")
        self._throwaway_key = _throwaway_key_like(signing_key)
        self._linter = linter if linter is not None else Linter()
        self._profiles = profiles
        self._issuer_name = ca.subject
        self._ca_not_before, self._ca_not_after = ca.not_valid_before_utc, ca.not_valid_after_utc
        self._common_extensions = self._build_common_extensions(config, ca)

    @staticmethod
    def _build_common_extensions(config: IssuerConfig, ca: x509.Certificate) -> list[tuple[x509.ExtensionType, bool]]:
        """The extensions every holder certificate of this CA shares, built once."""
        ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        access = [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                         x509.UniformResourceIdentifier(config.ca_issuers_url))]
        if config.ocsp_url is not None:
            access.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                                 x509.UniformResourceIdentifier(config.ocsp_url)))
        return [
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]), False),
            (x509.CertificatePolicies([
                x509.PolicyInformation(x509.ObjectIdentifier(config.policy_oid), None),
                x509.PolicyInformation(NCP_PLUS_POLICY, None),
            ]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False),
            (x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(config.crl_url)], None, None, None)]), False),
            (x509.AuthorityInformationAccess(access), False),
        ]

    def issue(self, request: IssuanceRequest) -> IssuedCertificate:
        """Build, lint, sign and check one holder certificate."""
        return self.sign(self.prepare(request))

    def prepare(self, request: IssuanceRequest) -> PreparedCertificate:
        """Steps 1-3: build the TBS, sign it with the throwaway key, lint it (LintError on ERROR)."""
        try:
            profile = self._profiles[request.profile]
        except KeyError:
            raise RequestError(f"profile {request.profile!r} is not offered by this issuer") from None
        throwaway = self._builder(request, profile).sign(self._throwaway_key, self._hash)
        encoded = throwaway.public_bytes(serialization.Encoding.DER)
        report = self._linter.lint_certificate(encoded, profile=profile)
        report.raise_for_errors(f"certificate {request.serial:#x}")
        tbs = throwaway.tbs_certificate_bytes
        return PreparedCertificate(request, tbs, report, _signature_algorithm(encoded, tbs))

    def sign(self, prepared: PreparedCertificate) -> IssuedCertificate:
        """Steps 4-5: sign the linted TBS with the CA key, then check the result parses and verifies.

        The certificate is the linted TBS, its signature algorithm and the CA's signature: the
        builder does not encode it a second time.
        """
        try:
            signature = self._signer.sign(prepared.tbs_certificate)
        except CAError:
            raise
        except Exception as exc:
            raise SigningError(f"the CA key failed to sign certificate {prepared.request.serial:#x}: {exc}") from exc
        encoded = der.tlv(0x30, prepared.tbs_certificate + prepared.signature_algorithm
                          + der.tlv(0x03, b"\x00" + signature))
        try:
            certificate = x509.load_der_x509_certificate(encoded)
        except ValueError as exc:
            raise SigningError(f"certificate {prepared.request.serial:#x} does not parse once signed ({exc})") from None
        check_signed_certificate(certificate, prepared.tbs_certificate, self._ca_public_key)
        return IssuedCertificate(
            der=encoded,
            serial=prepared.request.serial,
            tbs_sha256=prepared.tbs_sha256,
            warnings=prepared.lint.warnings,
        )

    def _builder(self, request: IssuanceRequest, profile: Profile) -> x509.CertificateBuilder:
        """Step 1: the certificate of DESIGN.md's profile table; the subject never comes from a CSR."""
        not_before = request.not_before.astimezone(dt.timezone.utc).replace(microsecond=0)
        not_after = request.not_after.astimezone(dt.timezone.utc).replace(microsecond=0)
        if not_before < self._ca_not_before or not_after > self._ca_not_after:
            raise RequestError("the validity must lie within the CA certificate's validity")
        if not_after - not_before > profile.max_validity:
            raise RequestError(f"the validity exceeds {profile.max_validity.days} days for profile {profile.name}")
        try:
            public_key = serialization.load_der_public_key(request.public_key_der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise RequestError(f"the public key is not a readable SubjectPublicKeyInfo ({exc})") from None
        check_public_key(public_key, not_after=not_after)
        builder = (
            x509.CertificateBuilder()
            .serial_number(request.serial)
            .issuer_name(self._issuer_name)
            .subject_name(request.subject.to_name())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .public_key(public_key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(profile.key_usage(), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(request.subject.email)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        for extension, critical in self._common_extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder


def _signature_algorithm(certificate: bytes, tbs: bytes) -> bytes:
    """The signatureAlgorithm of a certificate (DER) whose TBS is ``tbs``, as DER."""
    _, start, end = der.read_tlv(certificate, 0, len(certificate))
    if certificate[start:start + len(tbs)] != tbs:
        raise SigningError("the throwaway certificate does not start with its TBS")
    _, _, algorithm_end = der.read_tlv(certificate, start + len(tbs), end)
    return certificate[start + len(tbs):algorithm_end]


def check_signed_certificate(
    certificate: x509.Certificate, linted_tbs: bytes, ca_public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
) -> None:
    """Step 5: the signed TBS must be byte-identical to the linted one and verify under the CA key."""
    tbs = certificate.tbs_certificate_bytes
    if tbs != linted_tbs:
        raise SigningError(f"the signed TBS of certificate {certificate.serial_number:#x} differs from the linted one")
    hash_algorithm = certificate.signature_hash_algorithm
    try:
        if isinstance(ca_public_key, rsa.RSAPublicKey):
            ca_public_key.verify(certificate.signature, tbs, padding.PKCS1v15(), hash_algorithm)
        else:
            ca_public_key.verify(certificate.signature, tbs, ec.ECDSA(hash_algorithm))
    except InvalidSignature:
        raise SigningError(
            f"the CA signature on certificate {certificate.serial_number:#x} does not verify"
        ) from None
