"""The key ceremony: the offline root "AC Racine" and the issuing CA "AC RGS** Entités".

Keys are generated on their own tokens and never leave them; the root signs its own
certificate and the issuing CA's (pathLen 0). The plan comes from a TOML ceremony file whose
defaults make a working instance.
"""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ca.signer import SigningKey
from ca.token import KeySpec, TokenSession

DEFAULT_PLAN = Path(__file__).with_name("ceremony.toml")
NCP_PLUS = "0.4.0.2042.1.2"


@dataclass(frozen=True)
class CASpec:
    common_name: str
    key: KeySpec
    validity_days: int
    key_label: str

    def __post_init__(self) -> None:
        if not 0 < len(self.common_name) <= 64:
            raise ValueError("A CA common name must have 1 to 64 characters.")
        if self.key.kind == "rsa" and self.key.size < 3072:
            raise ValueError(f"{self.common_name}: a CA key must be RSA-3072 or more, or ECDSA.")
        if not 365 <= self.validity_days <= 30 * 366:
            raise ValueError(f"{self.common_name}: validity must be between 1 and 30 years.")


@dataclass(frozen=True)
class CeremonyPlan:
    organization: str
    organization_identifier: str | None
    root: CASpec
    issuing: CASpec
    policy_oid: str

    def __post_init__(self) -> None:
        if self.issuing.validity_days >= self.root.validity_days:
            raise ValueError("The issuing CA must expire before the root.")
        x509.ObjectIdentifier(self.policy_oid)  # ValueError if malformed

    def name(self, common_name: str) -> x509.Name:
        attributes = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
        ]
        if self.organization_identifier:
            attributes.append(
                x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, self.organization_identifier)
            )
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        return x509.Name(attributes)


def load_plan(path: Path | None = None, *, policy_oid: str) -> CeremonyPlan:
    """Read a ceremony file; every error names the key that is wrong."""
    with open(path or DEFAULT_PLAN, "rb") as f:
        data = tomllib.load(f)
    try:
        org = data["organisation"]
        return CeremonyPlan(
            organization=str(org["name"]),
            organization_identifier=org.get("organization_identifier") or None,
            root=_ca_spec(data["root"], "root"),
            issuing=_ca_spec(data["issuing"], "issuing"),
            policy_oid=policy_oid,
        )
    except KeyError as exc:
        raise ValueError(f"The ceremony file lacks the key {exc.args[0]!r}.") from None


def _ca_spec(section: dict[str, Any], default_label: str) -> CASpec:
    return CASpec(
        common_name=str(section["common_name"]),
        key=KeySpec.parse(str(section["key"])),
        validity_days=int(section["validity_years"]) * 365,
        key_label=str(section.get("key_label", default_label)),
    )


@dataclass(frozen=True)
class GeneratedCA:
    certificate_der: bytes
    key_id: bytes
    key_label: str

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.certificate_der)


def _generate_key(session: TokenSession, spec: CASpec) -> tuple[SigningKey, bytes]:
    if session.objects():
        raise ValueError("The token already holds objects: a ceremony never overwrites a CA.")
    key_id = secrets.token_bytes(16)
    return session.generate_key_pair(spec.key, label=spec.key_label, key_id=key_id), key_id


def _ca_extensions(builder: x509.CertificateBuilder, public_key: Any) -> x509.CertificateBuilder:
    return builder.add_extension(
        x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False,
        ),
        critical=True,
    ).add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)


def create_root(session: TokenSession, plan: CeremonyPlan, now: datetime) -> GeneratedCA:
    key, key_id = _generate_key(session, plan.root)
    name = plan.name(plan.root.common_name)
    builder = _ca_extensions(
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=plan.root.validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True),
        key.public_key(),
    )
    cert = builder.sign(key, hashes.SHA256())
    return GeneratedCA(cert.public_bytes(serialization.Encoding.DER), key_id, plan.root.key_label)


def create_issuing(
    session: TokenSession, plan: CeremonyPlan, now: datetime, *, root_key: SigningKey,
    root_certificate: x509.Certificate, root_crl_url: str, root_certificate_url: str,
) -> GeneratedCA:
    key, key_id = _generate_key(session, plan.issuing)
    root_ski = root_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = _ca_extensions(
        x509.CertificateBuilder()
        .subject_name(plan.name(plan.issuing.common_name))
        .issuer_name(root_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=plan.issuing.validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True),
        key.public_key(),
    )
    builder = (
        builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
        .add_extension(
            x509.CertificatePolicies([
                x509.PolicyInformation(x509.ObjectIdentifier(plan.policy_oid), None),
                x509.PolicyInformation(x509.ObjectIdentifier(NCP_PLUS), None),
            ]),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints([
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(root_crl_url)], None, None, None
                )
            ]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess([
                x509.AccessDescription(
                    AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(root_certificate_url),
                )
            ]),
            critical=False,
        )
    )
    cert = builder.sign(root_key, hashes.SHA256())
    return GeneratedCA(cert.public_bytes(serialization.Encoding.DER), key_id, plan.issuing.key_label)
