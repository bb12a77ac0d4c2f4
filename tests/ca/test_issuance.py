"""Issuance: the profile's certificate, lint before signing, the signed TBS checked afterwards."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca.errors import LintError, RequestError, SigningError
from ca.issuance import Issuer, check_signed_certificate
from ca.lint import NCP_PLUS_POLICY
from ca.profiles import PROFILES, Profile, Usage, parse_csr
from tests.lint_cli import etsi_errors, etsi_findings
from tests.ca.pki_fixtures import (
    CA_ISSUERS_URL,
    CA_POLICY_OID,
    CRL_URL,
    NOW,
    OCSP_URL,
    WrappedRSAKey,
    ec_chain,
    empty_crl,
    holder_key,
    holder_subject,
    issuance_request,
    issuer_config,
    make_csr,
    make_issuer,
    rsa_chain,
    shared_linter,
    spki_der,
)

MIXED_KEY_USAGE = "etsi.en_319_412_2.nat-4.3.2-1.mixed_key_usage_setting"


def load(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def extension(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


def openssl_verify(chain, der: bytes, tmp_path: Path) -> subprocess.CompletedProcess:
    root, issuing = chain.write(tmp_path)
    holder = tmp_path / "holder.pem"
    holder.write_bytes(load(der).public_bytes(serialization.Encoding.PEM))
    crl = tmp_path / "issuing.crl"
    crl.write_bytes(empty_crl(chain.issuing).public_bytes(serialization.Encoding.PEM))
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(root), "-untrusted", str(issuing),
         "-crl_check", "-CRLfile", str(crl), str(holder)],
        capture_output=True, text=True, check=False,
    )


# --- external checks on every profile ----------------------------------------------------------

@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_passes_lint_etsi_cert_cli(profile, tmp_path):
    issued = make_issuer().issue(issuance_request(profile=profile))
    path = tmp_path / "holder.der"
    path.write_bytes(issued.der)
    findings = etsi_findings(path)
    expected = [("WARNING", MIXED_KEY_USAGE)] if profile == "rgs2-entite-double" else []
    assert findings == expected


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_verifies_with_openssl_chain_and_crl(profile, tmp_path):
    issued = make_issuer().issue(issuance_request(profile=profile))
    result = openssl_verify(rsa_chain(), issued.der, tmp_path)
    assert result.returncode == 0 and "holder.pem: OK" in result.stdout, result.stdout + result.stderr


def test_double_usage_warning_reported():
    issued = make_issuer().issue(issuance_request(profile="rgs2-entite-double"))
    assert issued.warnings == (MIXED_KEY_USAGE,)


# --- the certificate is the profile's ------------------------------------------------------------

def test_double_usage_key_usage_critical():
    cert = load(make_issuer().issue(issuance_request()).der)
    ku = extension(cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value == PROFILES["rgs2-entite-double"].key_usage()


def test_authentication_key_usage_digital_signature_only():
    cert = load(make_issuer().issue(issuance_request(profile="rgs2-entite-authentification")).der)
    ku = extension(cert, x509.KeyUsage).value
    assert (ku.digital_signature, ku.content_commitment) == (True, False)


def test_signature_key_usage_non_repudiation_only():
    cert = load(make_issuer().issue(issuance_request(profile="rgs2-entite-signature")).der)
    ku = extension(cert, x509.KeyUsage).value
    assert (ku.digital_signature, ku.content_commitment) == (False, True)


def test_extended_key_usage_client_auth_email_protection_not_critical():
    eku = extension(load(make_issuer().issue(issuance_request()).der), x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]


def test_policies_ca_oid_and_ncp_plus():
    policies = extension(load(make_issuer().issue(issuance_request()).der), x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [x509.ObjectIdentifier(CA_POLICY_OID), NCP_PLUS_POLICY]


def test_san_is_the_holder_email():
    san = extension(load(make_issuer().issue(issuance_request()).der), x509.SubjectAlternativeName).value
    assert list(san) == [x509.RFC822Name("anne-marie.legoff@plouezec.example.fr")]


def test_key_identifiers_aki_is_ca_ski():
    cert = load(make_issuer().issue(issuance_request()).der)
    ca_ski = extension(rsa_chain().issuing.certificate, x509.SubjectKeyIdentifier).value.digest
    assert extension(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    assert extension(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


def test_crl_distribution_point_and_ca_issuers_urls():
    cert = load(make_issuer().issue(issuance_request()).der)
    crldp = extension(cert, x509.CRLDistributionPoints).value
    assert [n.value for n in crldp[0].full_name] == [CRL_URL]
    aia = extension(cert, x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (AuthorityInformationAccessOID.CA_ISSUERS, CA_ISSUERS_URL)]


def test_ocsp_url_added_when_configured():
    issuer = Issuer(issuer_config(ocsp_url=OCSP_URL), rsa_chain().issuing.key, shared_linter())
    aia = extension(load(issuer.issue(issuance_request()).der), x509.AuthorityInformationAccess).value
    assert [d.access_method for d in aia] == [AuthorityInformationAccessOID.CA_ISSUERS, AuthorityInformationAccessOID.OCSP]
    assert aia[1].access_location.value == OCSP_URL


def test_basic_constraints_ca_false_critical():
    bc = extension(load(make_issuer().issue(issuance_request()).der), x509.BasicConstraints)
    assert bc.critical and not bc.value.ca


def test_serial_validity_and_issuer_as_requested():
    request = issuance_request(serial=2**150 + 7)
    issued = make_issuer().issue(request)
    cert = load(issued.der)
    assert cert.serial_number == issued.serial == 2**150 + 7
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (request.not_before, request.not_after)
    assert cert.issuer == rsa_chain().issuing.certificate.subject
    assert cert.signature_hash_algorithm.name == "sha256"


def test_subject_never_comes_from_csr():
    csr = parse_csr(make_csr(holder_key("p256"), common_name="Evil"))
    request = issuance_request(public_key_der=csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    cert = load(make_issuer().issue(request).der)
    assert cert.subject == holder_subject().to_name()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Anne-Marie LE GOFF"
    assert "Evil" not in cert.subject.rfc4514_string()


@pytest.mark.parametrize("kind", ["p256", "p384"])
def test_ecdsa_holder_keys_accepted(kind, tmp_path):
    issued = make_issuer().issue(issuance_request(key=holder_key(kind)))
    assert load(issued.der).public_key() == holder_key(kind).public_key()
    assert openssl_verify(rsa_chain(), issued.der, tmp_path).returncode == 0


@pytest.mark.parametrize("curve, hash_name", [("p384", "sha384"), ("p256", "sha256")])
def test_ec_ca_key_works(curve, hash_name, tmp_path):
    chain = ec_chain(curve)
    issued = make_issuer(chain).issue(issuance_request())
    assert load(issued.der).signature_hash_algorithm.name == hash_name
    assert openssl_verify(chain, issued.der, tmp_path).returncode == 0
    path = tmp_path / "holder.der"
    path.write_bytes(issued.der)
    assert etsi_errors(path) == []


def test_hsm_like_key_subclass_signs():
    key = WrappedRSAKey(rsa_chain().issuing.key)
    issued = make_issuer(signing_key=key).issue(issuance_request())
    assert key.signatures == 1
    load(issued.der).verify_directly_issued_by(rsa_chain().issuing.certificate)


# --- lint before signing ----------------------------------------------------------------------

def test_lint_error_stops_issuance_before_the_ca_key_signs():
    # A broken profile: keyEncipherment is not an RGS** entité usage. Only lint can know.
    broken = Profile("rgs2-entite-double", Usage.DOUBLE, "cassé", True, True, key_encipherment=True)
    key = WrappedRSAKey(rsa_chain().issuing.key)
    issuer = make_issuer(signing_key=key, profiles={broken.name: broken})
    with pytest.raises(LintError) as excinfo:
        issuer.issue(issuance_request())
    assert any(f.startswith("guichet.rgs.key_usage") and "key_encipherment" in f for f in excinfo.value.findings)
    assert key.signatures == 0


def test_prepare_then_sign_signs_the_linted_tbs():
    issuer = make_issuer()
    prepared = issuer.prepare(issuance_request())
    issued = issuer.sign(prepared)
    assert load(issued.der).tbs_certificate_bytes == prepared.tbs_certificate
    assert issued.tbs_sha256 == prepared.tbs_sha256


# --- checks after signing ---------------------------------------------------------------------

def test_signature_not_verifying_raises_signing_error():
    issuer = make_issuer(signing_key=WrappedRSAKey(rsa_chain().issuing.key, tamper=True))
    with pytest.raises(SigningError, match="does not verify"):
        issuer.issue(issuance_request())


def test_signed_tbs_differing_from_linted_raises_signing_error():
    issuer = make_issuer()
    linted = issuer.prepare(issuance_request(serial=2**64 + 1))
    other = load(issuer.issue(issuance_request(serial=2**64 + 2)).der)
    with pytest.raises(SigningError, match="differs from the linted one"):
        check_signed_certificate(other, linted.tbs_certificate, rsa_chain().issuing.certificate.public_key())


def test_signing_failure_raises_signing_error():
    class BrokenKey(WrappedRSAKey):
        def sign(self, data, padding, algorithm):
            raise RuntimeError("token unplugged")

    issuer = make_issuer(signing_key=BrokenKey(rsa_chain().issuing.key))
    with pytest.raises(SigningError, match="token unplugged"):
        issuer.issue(issuance_request())


def test_signing_key_must_match_ca_certificate():
    with pytest.raises(ValueError, match="does not match the CA certificate"):
        Issuer(issuer_config(), holder_key("rsa3072-other"), shared_linter())


# --- the request -------------------------------------------------------------------------------

def test_rsa_2048_holder_key_refused_after_2030():
    start = dt.datetime(2029, 1, 1, tzinfo=dt.timezone.utc)
    request = issuance_request(not_before=start, not_after=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(RequestError, match="RSA key of 2048 bits refused"):
        make_issuer().issue(request)


def test_unreadable_public_key_refused():
    with pytest.raises(RequestError, match="SubjectPublicKeyInfo"):
        make_issuer().issue(issuance_request(public_key_der=b"\x30\x00"))


@pytest.mark.parametrize("serial", [0, -(2**64), 2**63 - 1, 2**159, True])
def test_serial_out_of_bounds_refused(serial):
    with pytest.raises(RequestError, match="serial"):
        issuance_request(serial=serial)


def test_serial_bounds_accepted():
    issuance_request(serial=2**63)
    issuance_request(serial=2**159 - 1)


def test_naive_datetime_refused():
    with pytest.raises(RequestError, match="timezone-aware"):
        issuance_request(not_before=NOW.replace(tzinfo=None))


def test_validity_over_1096_days_refused():
    with pytest.raises(RequestError, match="exceeds 1096 days"):
        issuance_request(not_after=NOW + dt.timedelta(days=1097))


def test_not_after_before_not_before_refused():
    with pytest.raises(RequestError, match="after not_before"):
        issuance_request(not_after=NOW - dt.timedelta(seconds=1))


def test_not_after_beyond_ca_certificate_refused():
    chain = rsa_chain()
    end = chain.issuing.certificate.not_valid_after_utc + dt.timedelta(days=1)
    request = issuance_request(not_before=end - dt.timedelta(days=365), not_after=end)
    with pytest.raises(RequestError, match="within the CA certificate's validity"):
        make_issuer(chain).issue(request)


def test_unknown_profile_refused():
    with pytest.raises(RequestError, match="unknown certificate profile"):
        issuance_request(profile="rgs2-entite-chiffrement")


def test_request_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        issuance_request().serial = 1  # type: ignore[misc]


# --- the configuration -------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["crl_url", "ca_issuers_url", "ocsp_url"])
@pytest.mark.parametrize("url", ["https://pki.example.fr/ac.crl", "ldap://pki.example.fr/", "http:///ac.crl",
                                 "http://pki.example.fr/a c.crl", "pki.example.fr/ac.crl"])
def test_config_non_http_url_refused(field, url):
    with pytest.raises(ValueError, match=field):
        issuer_config(**{field: url})


def test_config_non_ca_certificate_refused():
    holder = make_issuer().issue(issuance_request()).der
    with pytest.raises(ValueError, match="not a CA certificate"):
        issuer_config(ca_certificate=holder)


def test_config_garbage_certificate_refused():
    with pytest.raises(ValueError, match="DER CA certificate"):
        issuer_config(ca_certificate=b"garbage")


def test_config_ncp_plus_as_own_policy_refused():
    with pytest.raises(ValueError, match="CA's own policy"):
        issuer_config(policy_oid="0.4.0.2042.1.2")


def test_config_bad_policy_oid_refused():
    with pytest.raises(ValueError, match="dotted OID"):
        issuer_config(policy_oid="politique-rgs")


def test_config_exposes_the_parsed_ca_certificate():
    assert issuer_config().certificate == rsa_chain().issuing.certificate


def test_issued_certificate_verifies_under_ca_public_key():
    issued = make_issuer().issue(issuance_request())
    cert = load(issued.der)
    cert.verify_directly_issued_by(rsa_chain().issuing.certificate)
    assert issued.sha256 == cert.fingerprint(hashes.SHA256())


def test_certificate_carries_the_requested_public_key():
    key = holder_key("p384")
    issued = make_issuer().issue(issuance_request(public_key_der=spki_der(key)))
    assert load(issued.der).public_key() == key.public_key()
