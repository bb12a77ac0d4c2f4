"""Rules of ca.lint: pkilint ETSI findings and the project's own RGS** rules, one test per rule."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca.errors import LintError
from ca.lint import NCP_PLUS_POLICY, LintReport
from ca.profiles import PROFILES, get_profile
from tests.ca.pki_fixtures import (
    CA_ISSUERS_URL,
    CA_POLICY_OID,
    CRL_URL,
    NOW,
    empty_crl,
    holder_key,
    holder_subject,
    rsa_chain,
    shared_linter,
)

MIXED_KEY_USAGE = "etsi.en_319_412_2.nat-4.3.2-1.mixed_key_usage_setting"


def _default_extensions(public_key) -> dict[type, tuple[x509.ExtensionType, bool]]:
    ca = rsa_chain().issuing.certificate
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return {
        x509.BasicConstraints: (x509.BasicConstraints(ca=False, path_length=None), True),
        x509.KeyUsage: (get_profile("rgs2-entite-double").key_usage(), True),
        x509.ExtendedKeyUsage: (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]), False),
        x509.CertificatePolicies: (x509.CertificatePolicies([
            x509.PolicyInformation(x509.ObjectIdentifier(CA_POLICY_OID), None),
            x509.PolicyInformation(NCP_PLUS_POLICY, None),
        ]), False),
        x509.SubjectAlternativeName: (x509.SubjectAlternativeName([x509.RFC822Name("anne@example.fr")]), False),
        x509.SubjectKeyIdentifier: (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        x509.AuthorityKeyIdentifier: (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False),
        x509.CRLDistributionPoints: (x509.CRLDistributionPoints([
            x509.DistributionPoint([x509.UniformResourceIdentifier(CRL_URL)], None, None, None)]), False),
        x509.AuthorityInformationAccess: (x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(CA_ISSUERS_URL))]), False),
    }


def holder_certificate(
    *, subject: x509.Name | None = None, serial: int = 2**64 + 1, key=None,
    not_before: dt.datetime = NOW, not_after: dt.datetime | None = None,
    hash_algorithm: hashes.HashAlgorithm = hashes.SHA256(), **extensions,
) -> bytes:
    """A holder certificate signed by the issuing CA; ``extensions`` replace or drop defaults.

    Pass ``KeyUsage=(value, critical)`` to replace an extension, ``KeyUsage=None`` to drop it.
    """
    public_key = (key or holder_key("rsa2048")).public_key()
    chosen = _default_extensions(public_key)
    for name, value in extensions.items():
        cls = getattr(x509, name)
        if value is None:
            chosen.pop(cls)
        else:
            chosen[cls] = value
    builder = (
        x509.CertificateBuilder()
        .serial_number(serial)
        .issuer_name(rsa_chain().issuing.certificate.subject)
        .subject_name(subject or holder_subject().to_name())
        .not_valid_before(not_before)
        .not_valid_after(not_after or not_before + dt.timedelta(days=1095))
        .public_key(public_key)
    )
    for value, critical in chosen.values():
        builder = builder.add_extension(value, critical=critical)
    certificate = builder.sign(rsa_chain().issuing.key, hash_algorithm)
    return certificate.public_bytes(serialization.Encoding.DER)


def lint(der: bytes, **kwargs) -> LintReport:
    return shared_linter().lint_certificate(der, **kwargs)


def rule_errors(report: LintReport, rule: str) -> list[str]:
    return [e for e in report.errors if e.startswith(f"guichet.rgs.{rule}")]


def subject_with(replacements: dict | None = None, *, drop=(), extra=()) -> x509.Name:
    """The default holder subject with attributes replaced ({oid: NameAttribute}), dropped or added."""
    attributes = []
    for attribute in holder_subject().to_name():
        if attribute.oid in drop:
            continue
        attributes.append((replacements or {}).get(attribute.oid, attribute))
    return x509.Name(attributes + list(extra))


# --- the good certificate ---------------------------------------------------------------------

@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_certificate_has_no_error(profile):
    ku = (PROFILES[profile].key_usage(), True)
    report = lint(holder_certificate(KeyUsage=ku), profile=PROFILES[profile])
    assert report.errors == ()
    assert report.ok


def test_double_usage_mixed_key_usage_warning():
    report = lint(holder_certificate(), profile=get_profile("rgs2-entite-double"))
    assert report.warnings == (MIXED_KEY_USAGE,)


def test_single_usage_has_no_warning():
    ku = (get_profile("rgs2-entite-signature").key_usage(), True)
    assert lint(holder_certificate(KeyUsage=ku)).warnings == ()


def test_info_and_notice_findings_dropped():
    # pkilint reports SKI method 1 as INFO; it must not appear anywhere.
    report = lint(holder_certificate())
    assert not any("subject_key_identifier_method_1" in f for f in report.errors + report.warnings)


def test_undecodable_certificate_is_an_error():
    report = lint(b"\x30\x03\x02\x01\x00")
    assert report.errors and report.errors[0].startswith("pkilint.")


def test_raise_for_errors_carries_findings():
    report = LintReport(errors=("guichet.rgs.x: y",), warnings=("w",))
    with pytest.raises(LintError, match="certificate 1 failed lint: guichet.rgs.x: y") as excinfo:
        report.raise_for_errors("certificate 1")
    assert excinfo.value.findings == ["guichet.rgs.x: y"]
    LintReport(warnings=("w",)).raise_for_errors("clean")  # warnings alone never raise


# --- pkilint findings are errors too ----------------------------------------------------------

def test_pkilint_error_reported():
    # EKU critical: ETSI EN 319 412-2 forbids it (pkilint ERROR), and our own rule too.
    report = lint(holder_certificate(ExtendedKeyUsage=(_default_extensions(holder_key("rsa2048").public_key())[x509.ExtendedKeyUsage][0], True)))
    assert any(e.startswith("etsi.") for e in report.errors)
    assert rule_errors(report, "extended_key_usage")


# --- own rules: subject ------------------------------------------------------------------------

def test_country_not_printable_string_refused():
    subject = subject_with({NameOID.COUNTRY_NAME: x509.NameAttribute(NameOID.COUNTRY_NAME, "FR", _type=_ASN1Type.UTF8String)})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.string_type")


def test_country_not_fr_refused():
    subject = subject_with({NameOID.COUNTRY_NAME: x509.NameAttribute(NameOID.COUNTRY_NAME, "BE")})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.countryName")


def test_attribute_not_utf8_string_refused():
    subject = subject_with({NameOID.SURNAME: x509.NameAttribute(NameOID.SURNAME, "Le Goff", _type=_ASN1Type.PrintableString)})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.string_type")


def test_organization_missing_refused():
    subject = subject_with(drop={NameOID.ORGANIZATION_NAME})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.organizationName")


def test_ou_not_0002_identifier_refused():
    subject = subject_with({NameOID.ORGANIZATIONAL_UNIT_NAME: x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mairie")})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.organizationalUnitName")


def test_ou_siret_luhn_refused():
    subject = subject_with({NameOID.ORGANIZATIONAL_UNIT_NAME: x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "0002 21220194100012")})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.organizationalUnitName")


def test_organization_identifier_not_matching_ou_refused():
    subject = subject_with({NameOID.ORGANIZATION_IDENTIFIER: x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "NTRFR-212900195")})
    errors = rule_errors(lint(holder_certificate(subject=subject)), "subject.organizationIdentifier")
    assert errors and "does not match the SIREN 212201941" in errors[0]


def test_organization_identifier_not_ntrfr_refused():
    subject = subject_with({NameOID.ORGANIZATION_IDENTIFIER: x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "VATFR-212201941")})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.organizationIdentifier")


def test_given_name_missing_refused():
    subject = subject_with(drop={NameOID.GIVEN_NAME})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.givenName")


def test_surname_missing_refused():
    subject = subject_with(drop={NameOID.SURNAME})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.surname")


def test_common_name_not_given_names_and_surname_refused():
    subject = subject_with({NameOID.COMMON_NAME: x509.NameAttribute(NameOID.COMMON_NAME, "Anne-Marie Le Goff")})
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.commonName")


def test_unexpected_subject_attribute_refused():
    subject = subject_with(extra=[x509.NameAttribute(NameOID.LOCALITY_NAME, "Plouézec")])
    assert rule_errors(lint(holder_certificate(subject=subject)), "subject.unexpected_attribute")


# --- own rules: extensions ----------------------------------------------------------------------

def test_key_usage_not_critical_refused():
    ku = (get_profile("rgs2-entite-double").key_usage(), False)
    assert rule_errors(lint(holder_certificate(KeyUsage=ku)), "key_usage")


def test_key_usage_missing_refused():
    assert rule_errors(lint(holder_certificate(KeyUsage=None)), "key_usage")


def test_key_usage_key_encipherment_refused():
    ku = x509.KeyUsage(True, True, True, False, False, False, False, False, False)
    errors = rule_errors(lint(holder_certificate(KeyUsage=(ku, True))), "key_usage")
    assert errors and "key_encipherment" in errors[0]


def test_key_usage_differs_from_profile_refused():
    ku = (get_profile("rgs2-entite-double").key_usage(), True)
    report = lint(holder_certificate(KeyUsage=ku), profile=get_profile("rgs2-entite-signature"))
    assert any("differs from profile rgs2-entite-signature" in e for e in rule_errors(report, "key_usage"))


def test_eku_not_exactly_client_auth_and_email_protection_refused():
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    assert rule_errors(lint(holder_certificate(ExtendedKeyUsage=(eku, False))), "extended_key_usage")


def test_eku_missing_refused():
    assert rule_errors(lint(holder_certificate(ExtendedKeyUsage=None)), "extended_key_usage")


def test_policies_without_ncp_plus_refused():
    policies = x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(CA_POLICY_OID), None)])
    assert rule_errors(lint(holder_certificate(CertificatePolicies=(policies, False))), "certificate_policies")


def test_san_without_rfc822_name_refused():
    san = x509.SubjectAlternativeName([x509.DNSName("plouezec.fr")])
    assert rule_errors(lint(holder_certificate(SubjectAlternativeName=(san, False))), "subject_alt_name")


def test_san_with_two_emails_refused():
    san = x509.SubjectAlternativeName([x509.RFC822Name("a@example.fr"), x509.RFC822Name("b@example.fr")])
    assert rule_errors(lint(holder_certificate(SubjectAlternativeName=(san, False))), "subject_alt_name")


def test_basic_constraints_ca_true_refused():
    bc = x509.BasicConstraints(ca=True, path_length=None)
    assert rule_errors(lint(holder_certificate(BasicConstraints=(bc, True))), "basic_constraints")


def test_basic_constraints_missing_refused():
    assert rule_errors(lint(holder_certificate(BasicConstraints=None)), "basic_constraints")


def test_subject_key_identifier_missing_refused():
    assert rule_errors(lint(holder_certificate(SubjectKeyIdentifier=None)), "key_identifiers")


def test_crl_distribution_point_https_refused():
    crldp = x509.CRLDistributionPoints([x509.DistributionPoint(
        [x509.UniformResourceIdentifier("https://pki.example.fr/ac.crl")], None, None, None)])
    assert rule_errors(lint(holder_certificate(CRLDistributionPoints=(crldp, False))), "crl_distribution_points")


def test_crl_distribution_point_missing_refused():
    assert rule_errors(lint(holder_certificate(CRLDistributionPoints=None)), "crl_distribution_points")


def test_aia_ca_issuers_https_refused():
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier("https://pki.example.fr/ac.crt"))])
    assert rule_errors(lint(holder_certificate(AuthorityInformationAccess=(aia, False))), "authority_info_access")


def test_aia_without_ca_issuers_refused():
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://ocsp.example.fr/"))])
    assert rule_errors(lint(holder_certificate(AuthorityInformationAccess=(aia, False))), "authority_info_access")


# --- own rules: validity, key, serial, signature -------------------------------------------------

def test_validity_over_three_years_refused():
    der = holder_certificate(not_after=NOW + dt.timedelta(days=1097))
    assert rule_errors(lint(der), "validity")


def test_validity_of_1096_days_accepted():
    assert not rule_errors(lint(holder_certificate(not_after=NOW + dt.timedelta(days=1096))), "validity")


def test_rsa_2048_after_2030_refused():
    start = dt.datetime(2029, 1, 1, tzinfo=dt.timezone.utc)
    der = holder_certificate(not_before=start, not_after=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc))
    errors = rule_errors(lint(der), "public_key")
    assert errors and "2048 bits" in errors[0]


def test_rsa_3072_after_2030_accepted():
    start = dt.datetime(2029, 1, 1, tzinfo=dt.timezone.utc)
    der = holder_certificate(key=holder_key("rsa3072"), not_before=start,
                             not_after=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc))
    assert lint(der).errors == ()


def test_ecdsa_p521_key_refused():
    assert rule_errors(lint(holder_certificate(key=holder_key("p521"))), "public_key")


def test_serial_below_64_bits_refused():
    assert rule_errors(lint(holder_certificate(serial=2**63 - 1)), "serial_number")


def test_serial_of_64_bits_accepted():
    assert lint(holder_certificate(serial=2**63)).errors == ()


def test_signature_hash_below_sha256_refused():
    # cryptography no longer signs with SHA-1; SHA-224 is the weaker hash it still offers.
    der = holder_certificate(hash_algorithm=hashes.SHA224())
    assert rule_errors(lint(der), "signature_algorithm")


def test_signature_hash_sha384_accepted():
    assert lint(holder_certificate(hash_algorithm=hashes.SHA384())).errors == ()


# --- CRL ---------------------------------------------------------------------------------------

def test_lint_crl_clean():
    crl = empty_crl(rsa_chain().issuing).public_bytes(serialization.Encoding.DER)
    report = shared_linter().lint_crl(crl)
    assert report.errors == ()


def test_lint_crl_without_crl_number_refused():
    crl = empty_crl(rsa_chain().issuing, crl_number=None).public_bytes(serialization.Encoding.DER)
    assert any("crl_number" in e for e in shared_linter().lint_crl(crl).errors)


def test_lint_crl_undecodable_is_an_error():
    assert shared_linter().lint_crl(b"garbage").errors
