"""Lint before signing: pkilint's ETSI/PKIX validators plus the project's own RGS** rules.

pkilint's validator containers cost ~0.16 s to build: a :class:`Linter` builds them once and
is reused for every certificate and CRL. A new holder's certificate costs ~2.5 ms to lint (half
of an RSA-4096 signature on SoftHSM): its tree is assembled from remembered pieces
(:mod:`ca.lint_document`), the validators run through :mod:`ca.lint_dispatch`, and the tree is
dismantled after use.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from pkilint import etsi, finding_filter, loader, pkix, validation
from pkilint.document import Document
from pkilint.etsi import etsi_constants
from pkilint.pkix import certificate as pkix_certificate
from pkilint.pkix import crl as pkix_crl
from pkilint.pkix import extension as pkix_extension
from pkilint.pkix import name as pkix_name

from ca.errors import LintError, RequestError
from ca.lint_dispatch import DispatchingRunner
from ca.lint_document import CertificateLoader
from ca.profiles import (
    MAX_VALIDITY,
    Profile,
    check_public_key,
    check_siren,
    check_siret,
)

NCP_PLUS_POLICY = x509.ObjectIdentifier("0.4.0.2042.1.2")
CERTIFICATE_TYPE = etsi_constants.CertificateType.from_option_str("NCP-NATURAL-PERSON-CERTIFICATE")

_ERROR_SEVERITIES = {validation.ValidationFindingSeverity.FATAL, validation.ValidationFindingSeverity.ERROR}
_PRINTABLE_STRING_TAG = 0x13
_UTF8_STRING_TAG = 0x0C


@dataclass(frozen=True)
class LintReport:
    """Findings as ``"code: message"`` strings; INFO and NOTICE findings are dropped."""

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self, what: str) -> None:
        if self.errors:
            raise LintError(f"{what} failed lint", list(self.errors))


def _describe(code: str, message: str | None) -> str:
    return f"{code}: {message}" if message else code


class Linter:
    """pkilint (ETSI NCP natural person, PKIX CRL) plus the RGS** rules, validators built once."""

    def __init__(self) -> None:
        self._certificate_validator = DispatchingRunner(pkix_certificate.create_pkix_certificate_validator_container(
            etsi.create_decoding_validators(CERTIFICATE_TYPE), etsi.create_validators(CERTIFICATE_TYPE)
        ))
        self._certificate_filters = etsi.create_etsi_finding_filters(CERTIFICATE_TYPE)
        self._loader = CertificateLoader()
        self._crl_validator: validation.ValidatorContainer | None = None
        self._lock = threading.Lock()  # pkilint does not promise its validators are thread-safe

    def lint_certificate(self, der: bytes, *, profile: Profile | None = None) -> LintReport:
        """Lint a holder certificate; with ``profile``, its key usage must be exactly the profile's."""
        try:
            document = self._loader.load(der)
        except ValueError as exc:
            return LintReport(errors=(f"pkilint.certificate_not_decodable: {exc}",))
        try:
            with self._lock:
                results = self._certificate_validator.validate(document.root)
                results, _ = finding_filter.filter_results(self._certificate_filters, results)
            errors, warnings = _split(results)
            errors.extend(rgs_findings(der, _subject_value_tags(document), profile=profile))
        finally:
            _dismantle(document)
        return LintReport(tuple(errors), tuple(warnings))

    def lint_crl(self, der: bytes) -> LintReport:
        """Lint a CRL the way ``lint_crl lint -t CRL -p PKIX`` does."""
        try:
            document = loader.load_der_crl(der, "crl")
        except ValueError as exc:
            return LintReport(errors=(f"pkilint.crl_not_decodable: {exc}",))
        with self._lock:
            if self._crl_validator is None:
                self._crl_validator = _create_crl_validator()
            results = self._crl_validator.validate(document.root)
        errors, warnings = _split(results)
        return LintReport(tuple(errors), tuple(warnings))


def _dismantle(document: Document) -> None:
    """Break the document's node cycles (parent, children, document) so that it is freed at once.

    Left to the garbage collector, each certificate's ~150 cyclic nodes cost more to collect
    than to lint; once the findings are strings nothing refers to the tree any more.
    """
    stack = [document.root] if document.root is not None else []
    while stack:
        node = stack.pop()
        stack.extend(node.children.values())
        node.children, node.parent, node.document = {}, None, None
    document.__dict__.clear()


def _create_crl_validator() -> validation.ValidatorContainer:
    """The validator pkilint's ``lint_crl -t CRL -p PKIX`` builds (pkilint/bin/lint_crl.py)."""
    return pkix_crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(pkix_name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(pkix_extension.EXTENSION_MAPPINGS),
        ],
        [
            pkix_crl.create_issuer_validator_container([]),
            pkix_crl.create_validity_validator_container([]),
            pkix_crl.create_extensions_validator_container([]),
        ],
    )


def _split(results: Iterable[validation.ValidationResult]) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    for result in results:
        for description in result.finding_descriptions:
            text = _describe(description.finding.code, description.message)
            if description.finding.severity in _ERROR_SEVERITIES:
                errors.append(text)
            elif description.finding.severity == validation.ValidationFindingSeverity.WARNING:
                warnings.append(text)
    return errors, warnings


# --- the project's own RGS** rules ----------------------------------------------------------

_RGS_KEY_USAGES = {frozenset(_bits) for _bits in (
    ("digital_signature",), ("content_commitment",), ("digital_signature", "content_commitment"),
)}
_KEY_USAGE_NAMES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign",
)
_OU_RE = re.compile(r"0002 (\d{9}|\d{14})")
_ORGANIZATION_IDENTIFIER_RE = re.compile(r"NTRFR-(\d{9})")
_ALLOWED_SUBJECT_ATTRIBUTES = {
    NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.ORGANIZATION_IDENTIFIER, NameOID.GIVEN_NAME, NameOID.SURNAME, NameOID.COMMON_NAME,
    NameOID.TITLE,
}
_STRONG_HASHES = {"sha256", "sha384", "sha512"}


class _Findings(list):
    def add(self, rule: str, message: str) -> None:
        self.append(f"guichet.rgs.{rule}: {message}")


def rgs_findings(der: bytes, subject_tags: list[tuple[str, int]], *, profile: Profile | None = None) -> list[str]:
    """The RGS** entité rules of DESIGN.md that pkilint does not check, as error strings.

    ``subject_tags`` gives the ASN.1 tag of each subject attribute's value (cryptography does not).
    """
    findings = _Findings()
    try:
        cert = x509.load_der_x509_certificate(der)
        extensions = cert.extensions
    except ValueError as exc:
        findings.add("not_parsable", f"the certificate cannot be parsed ({exc})")
        return findings
    _check_subject(cert.subject, subject_tags, findings)
    _check_key_usage(extensions, profile, findings)
    _check_extended_key_usage(extensions, findings)
    _check_policies(extensions, findings)
    _check_san(extensions, findings)
    _check_basic_constraints(extensions, findings)
    _check_key_identifiers(extensions, findings)
    _check_distribution_urls(extensions, findings)
    _check_validity_key_serial_signature(cert, findings)
    return findings


def _subject_value_tags(document: Document) -> list[tuple[str, int]]:
    """(attribute OID, ASN.1 tag of its value) for each subject attribute, from pkilint's tree."""
    rdns = document.root.navigate("tbsCertificate.subject.rdnSequence")
    return [(str(atv.children["type"].pdu), atv.children["value"].pdu.asOctets()[0])
            for rdn in rdns.children.values() for atv in rdn.children.values()]


def _single(name: x509.Name, oid: x509.ObjectIdentifier, label: str, findings: _Findings) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        findings.add(f"subject.{label}", f"the subject has {len(values)} {label} attributes, one required")
        return None
    return str(values[0].value)


def _check_subject(name: x509.Name, tags: list[tuple[str, int]], findings: _Findings) -> None:
    for oid, tag in tags:
        if oid == NameOID.COUNTRY_NAME.dotted_string:
            if tag != _PRINTABLE_STRING_TAG:
                findings.add("subject.string_type", "countryName must be a PrintableString")
        elif tag != _UTF8_STRING_TAG:
            findings.add("subject.string_type", f"subject attribute {oid} must be a UTF8String")
    for attribute in name:
        if attribute.oid not in _ALLOWED_SUBJECT_ATTRIBUTES:
            findings.add("subject.unexpected_attribute",
                         f"subject attribute {attribute.oid.dotted_string} is not in the profile")
    if len(name.get_attributes_for_oid(NameOID.TITLE)) > 1:
        findings.add("subject.title", "the subject has more than one title")
    if _single(name, NameOID.COUNTRY_NAME, "countryName", findings) not in (None, "FR"):
        findings.add("subject.countryName", "countryName must be FR")
    _check_subject_entity(name, findings)
    _check_subject_person(name, findings)


def _check_subject_entity(name: x509.Name, findings: _Findings) -> None:
    """O present; OU ``0002 <SIREN or SIRET>``; organizationIdentifier ``NTRFR-<the same SIREN>``."""
    _single(name, NameOID.ORGANIZATION_NAME, "organizationName", findings)
    ou = _single(name, NameOID.ORGANIZATIONAL_UNIT_NAME, "organizationalUnitName", findings)
    siren = _check_organizational_unit(ou, findings)
    org_id = _single(name, NameOID.ORGANIZATION_IDENTIFIER, "organizationIdentifier", findings)
    if org_id is None:
        return
    match = _ORGANIZATION_IDENTIFIER_RE.fullmatch(org_id)
    if match is None:
        findings.add("subject.organizationIdentifier", f"{org_id!r} is not NTRFR-<SIREN>")
    elif siren is not None and match[1] != siren:
        findings.add("subject.organizationIdentifier", f"{org_id!r} does not match the SIREN {siren} of the OU")


def _check_subject_person(name: x509.Name, findings: _Findings) -> None:
    """givenName, surname and CN = ``<givenName> <SURNAME>``."""
    given = _single(name, NameOID.GIVEN_NAME, "givenName", findings)
    surname = _single(name, NameOID.SURNAME, "surname", findings)
    common_name = _single(name, NameOID.COMMON_NAME, "commonName", findings)
    if None not in (given, surname, common_name) and common_name != f"{given} {surname.upper()}":
        findings.add("subject.commonName", f"CN {common_name!r} is not '<givenName> <SURNAME>'")


def _check_organizational_unit(ou: str | None, findings: _Findings) -> str | None:
    """Check OU = ``0002 <SIREN or SIRET>`` and return the SIREN it names."""
    if ou is None:
        return None
    match = _OU_RE.fullmatch(ou)
    if match is None:
        findings.add("subject.organizationalUnitName", f"OU {ou!r} is not '0002 <SIREN or SIRET>'")
        return None
    try:
        (check_siren if len(match[1]) == 9 else check_siret)(match[1])
    except RequestError as exc:
        findings.add("subject.organizationalUnitName", str(exc))
    return match[1][:9]


def _extension(extensions: x509.Extensions, cls: type, rule: str, findings: _Findings) -> x509.Extension | None:
    try:
        return extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        findings.add(rule, f"the {cls.__name__} extension is missing")
        return None


def _check_key_usage(extensions: x509.Extensions, profile: Profile | None, findings: _Findings) -> None:
    ext = _extension(extensions, x509.KeyUsage, "key_usage", findings)
    if ext is None:
        return
    if not ext.critical:
        findings.add("key_usage", "keyUsage must be critical")
    bits = frozenset(n for n in _KEY_USAGE_NAMES if getattr(ext.value, n))
    if bits not in _RGS_KEY_USAGES:
        findings.add("key_usage", f"keyUsage {sorted(bits)} is not digitalSignature and/or nonRepudiation")
    if profile is not None and ext.value != profile.key_usage():
        findings.add("key_usage", f"keyUsage {sorted(bits)} differs from profile {profile.name}")


def _check_extended_key_usage(extensions: x509.Extensions, findings: _Findings) -> None:
    ext = _extension(extensions, x509.ExtendedKeyUsage, "extended_key_usage", findings)
    if ext is None:
        return
    if ext.critical:
        findings.add("extended_key_usage", "extendedKeyUsage must not be critical")
    if list(ext.value) != [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]:
        purposes = ", ".join(o.dotted_string for o in ext.value)
        findings.add("extended_key_usage", f"extendedKeyUsage ({purposes}) is not exactly clientAuth, emailProtection")


def _check_policies(extensions: x509.Extensions, findings: _Findings) -> None:
    ext = _extension(extensions, x509.CertificatePolicies, "certificate_policies", findings)
    if ext is not None and NCP_PLUS_POLICY not in [p.policy_identifier for p in ext.value]:
        findings.add("certificate_policies", "certificatePolicies lacks ETSI NCP+ 0.4.0.2042.1.2")


def _check_san(extensions: x509.Extensions, findings: _Findings) -> None:
    ext = _extension(extensions, x509.SubjectAlternativeName, "subject_alt_name", findings)
    if ext is not None and (len(ext.value) != 1 or not isinstance(ext.value[0], x509.RFC822Name)):
        findings.add("subject_alt_name", "subjectAltName must hold exactly one rfc822Name")


def _check_basic_constraints(extensions: x509.Extensions, findings: _Findings) -> None:
    ext = _extension(extensions, x509.BasicConstraints, "basic_constraints", findings)
    if ext is not None and (ext.value.ca or not ext.critical):
        findings.add("basic_constraints", "basicConstraints must be critical with CA:FALSE")


def _check_key_identifiers(extensions: x509.Extensions, findings: _Findings) -> None:
    _extension(extensions, x509.SubjectKeyIdentifier, "key_identifiers", findings)
    aki = _extension(extensions, x509.AuthorityKeyIdentifier, "key_identifiers", findings)
    if aki is not None and aki.value.key_identifier is None:
        findings.add("key_identifiers", "authorityKeyIdentifier lacks a keyIdentifier")


def _http_uris(names: Iterable[x509.GeneralName] | None) -> list[str]:
    return [n.value for n in names or () if isinstance(n, x509.UniformResourceIdentifier)]


def _check_distribution_urls(extensions: x509.Extensions, findings: _Findings) -> None:
    crldp = _extension(extensions, x509.CRLDistributionPoints, "crl_distribution_points", findings)
    if crldp is not None:
        uris = [u for dp in crldp.value for u in _http_uris(dp.full_name)]
        if not uris or not all(u.startswith("http://") for u in uris):
            findings.add("crl_distribution_points", f"CRL distribution points {uris} are not all http URLs")
    aia = _extension(extensions, x509.AuthorityInformationAccess, "authority_info_access", findings)
    if aia is None:
        return
    for method, label, required in ((AuthorityInformationAccessOID.CA_ISSUERS, "caIssuers", True),
                                    (AuthorityInformationAccessOID.OCSP, "OCSP", False)):
        locations = [d.access_location for d in aia.value if d.access_method == method]
        uris = [u for u in _http_uris(locations) if u.startswith("http://")]
        if len(uris) != len(locations) or (required and not uris):
            findings.add("authority_info_access", f"{label} must be given as http URLs")


def _check_validity_key_serial_signature(cert: x509.Certificate, findings: _Findings) -> None:
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not dt.timedelta(0) < not_after - not_before <= MAX_VALIDITY:
        findings.add("validity", f"validity {not_after - not_before} exceeds {MAX_VALIDITY.days} days or is empty")
    try:
        check_public_key(cert.public_key(), not_after=not_after)
    except RequestError as exc:
        findings.add("public_key", str(exc))
    except (ValueError, UnsupportedAlgorithm) as exc:
        findings.add("public_key", f"the subject public key cannot be read ({exc})")
    serial = cert.serial_number
    if not (2**63 <= serial and serial.bit_length() <= 159):
        findings.add("serial_number", f"serial {serial:#x} must be positive, >= 2**63 and fit in 20 octets")
    try:
        hash_name = getattr(cert.signature_hash_algorithm, "name", None)
    except UnsupportedAlgorithm:
        hash_name = None
    if hash_name not in _STRONG_HASHES:
        findings.add("signature_algorithm", f"signature hash {hash_name} is not SHA-256 or stronger")
