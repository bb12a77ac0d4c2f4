"""A software PKI for the ``ca`` tests: root + issuing CA (pathLen 0), holder keys, CSRs.

Plain functions cached per process (key generation is slow), so every test module of the
session shares one chain of each kind. Nothing here touches PKCS#11: the CA key given to
:class:`ca.issuance.Issuer` is an ordinary ``cryptography`` key, or :class:`WrappedRSAKey`,
a private-key subclass that stands for the HSM wrapper (its ``sign()`` is the only way in).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca.issuance import IssuanceRequest, Issuer, IssuerConfig
from ca.lint import Linter
from ca.profiles import HolderSubject

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
CA_POLICY_OID = "1.2.250.1.999.1.1.1"  # a made-up arc under the French OID root
CRL_URL = "http://pki.example.fr/ac-rgs-entites.crl"
CA_ISSUERS_URL = "http://pki.example.fr/ac-rgs-entites.crt"
OCSP_URL = "http://ocsp.example.fr/"


@dataclass(frozen=True)
class SoftwareCA:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Chain:
    root: SoftwareCA
    issuing: SoftwareCA

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write root.pem and issuing.pem, for ``openssl verify``."""
        root, issuing = directory / "root.pem", directory / "issuing.pem"
        root.write_bytes(self.root.pem)
        issuing.write_bytes(self.issuing.pem)
        return root, issuing


def _ca_name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Guichet Test"),
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "NTRFR-732829320"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _ca_certificate(
    subject: x509.Name, key, issuer: SoftwareCA | None, *, path_length: int | None, years: int
) -> x509.Certificate:
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        issuer_ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
    hash_algorithm = hashes.SHA384() if isinstance(signer_key, ec.EllipticCurvePrivateKey) else hashes.SHA256()
    return builder.sign(signer_key, hash_algorithm)


def make_chain(root_key, issuing_key) -> Chain:
    root = SoftwareCA(root_key, _ca_certificate(_ca_name("AC Racine Guichet Test"), root_key, None,
                                                path_length=None, years=20))
    issuing = SoftwareCA(issuing_key, _ca_certificate(_ca_name("AC RGS** Entités Test"), issuing_key, root,
                                                      path_length=0, years=12))
    return Chain(root, issuing)


@functools.cache
def rsa_chain() -> Chain:
    """RSA-3072 root and issuing CA (RSA-4096 is the production root, too slow to generate here)."""
    return make_chain(holder_key("rsa3072-root"), holder_key("rsa3072-issuing"))


@functools.cache
def ec_chain(curve: str = "p384") -> Chain:
    return make_chain(holder_key("p384-root"), holder_key(f"{curve}-issuing"))


@functools.cache
def holder_key(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A software key by kind: "rsa2048", "rsa3072-anything", "rsa1024", "rsa2048-e3", "p256", "p384"..."""
    family = kind.split("-")[0]
    if family.startswith("rsa"):
        exponent = 3 if kind.endswith("-e3") else 65537
        return rsa.generate_private_key(public_exponent=exponent, key_size=int(family[3:]))
    curves = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
    return ec.generate_private_key(curves[family])


@functools.cache
def shared_linter() -> Linter:
    return Linter()


def issuer_config(chain: Chain | None = None, **overrides) -> IssuerConfig:
    values = dict(
        ca_certificate=(chain or rsa_chain()).issuing.der,
        crl_url=CRL_URL,
        ca_issuers_url=CA_ISSUERS_URL,
        policy_oid=CA_POLICY_OID,
    )
    values.update(overrides)
    return IssuerConfig(**values)


def make_issuer(chain: Chain | None = None, *, signing_key=None, **kwargs) -> Issuer:
    chain = chain or rsa_chain()
    return Issuer(issuer_config(chain), signing_key or chain.issuing.key, shared_linter(), **kwargs)


def holder_subject(**overrides) -> HolderSubject:
    values = dict(
        organization="Commune de Plouézec",
        siren="212201941",
        siret="21220194100011",
        given_names="Anne-Marie",
        surname="Le Goff",
        email="anne-marie.legoff@plouezec.example.fr",
        title="Secrétaire de mairie",
    )
    values.update(overrides)
    return HolderSubject(**values)


def spki_der(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def issuance_request(*, key=None, serial: int = 2**64 + 12345, **overrides) -> IssuanceRequest:
    values = dict(
        serial=serial,
        subject=holder_subject(),
        public_key_der=spki_der(key or holder_key("rsa2048")),
        profile="rgs2-entite-double",
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=1095),
    )
    values.update(overrides)
    return IssuanceRequest(**values)


def make_csr(key, *, common_name: str = "Evil", extensions=(), attributes=(), encoding=serialization.Encoding.PEM) -> bytes:
    """A PKCS#10 request; ``extensions`` are (extension, critical) pairs, ``attributes`` (oid, bytes)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    for oid, value in attributes:
        builder = builder.add_attribute(oid, value)
    return builder.sign(key, hashes.SHA256()).public_bytes(encoding)


def empty_crl(ca: SoftwareCA, *, crl_number: int | None = 1) -> x509.CertificateRevocationList:
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(NOW - dt.timedelta(minutes=1))
        .next_update(NOW + dt.timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    if crl_number is not None:
        builder = builder.add_extension(x509.CRLNumber(crl_number), critical=False)
    hash_algorithm = hashes.SHA384() if isinstance(ca.key, ec.EllipticCurvePrivateKey) else hashes.SHA256()
    return builder.sign(ca.key, hash_algorithm)


class WrappedRSAKey(rsa.RSAPrivateKey):
    """An RSA private key reachable only through ``sign()``, like the PKCS#11 wrapper.

    It counts its signatures; with ``tamper=True`` it signs other bytes than it was given
    (a faulty HSM path), so the certificate it produces cannot verify.
    """

    def __init__(self, key: rsa.RSAPrivateKey, *, tamper: bool = False) -> None:
        self._key = key
        self._tamper = tamper
        self.signatures = 0

    def sign(self, data, padding, algorithm):
        self.signatures += 1
        if self._tamper:  # one bit flipped: a digest keeps its length
            data = data[:-1] + bytes([data[-1] ^ 1])
        return self._key.sign(data, padding, algorithm)

    @property
    def key_size(self) -> int:
        return self._key.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def decrypt(self, ciphertext, padding):
        raise NotImplementedError("a token key does not decrypt here")

    def private_numbers(self):
        raise NotImplementedError("a token key never reveals its private numbers")

    def private_bytes(self, encoding, format, encryption_algorithm):
        raise NotImplementedError("a token key is not extractable")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self
