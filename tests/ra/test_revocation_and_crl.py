"""Revocation rows and the CRLs published from them."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import select

from ca.crl import Reason
from ca.errors import CAError
from ra.config import ISSUING_SLUG, ROOT_SLUG
from ra.db import transaction, utcnow
from ra.errors import IllegalTransition, InvalidInput
from ra.instance import Instance
from ra.models import CRL, Certificate, CertificateState
from ra.services.crl import publish_crl
from ra.services.revocation import find_certificate, parse_reason, revoke_certificate
from tests.lint_cli import crl_errors
from tests.ra.helpers import write_pem
from tests.ra.test_issuance_pipeline import issue


def publish(instance: Instance, slug: str = ISSUING_SLUG) -> CRL:
    return publish_crl(instance.factory, instance.ca, slug, actor="test",
                       publication_dir=instance.settings.publication_dir, next_update_hours=168)


def revoke(instance: Instance, serial: str, reason: Reason) -> None:
    with transaction(instance.factory) as session:
        revoke_certificate(session, find_certificate(session, serial), reason=reason, actor="test")


def crl_file(instance: Instance, slug: str = ISSUING_SLUG) -> Path:
    return instance.settings.publication_dir / f"{slug}.crl"


def test_revoked_certificate_is_listed_with_its_reason(pki: Instance) -> None:
    cert = issue(pki)
    revoke(pki, cert.serial, Reason.key_compromise)
    publish(pki)
    crl = x509.load_der_x509_crl(crl_file(pki).read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(cert.serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise


def test_crl_number_only_grows(pki: Instance) -> None:
    first, second = publish(pki), publish(pki)
    assert second.number == first.number + 1
    crl = x509.load_der_x509_crl(crl_file(pki).read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == second.number
    assert (second.sha256, second.size) == (hashlib.sha256(crl_file(pki).read_bytes()).hexdigest(),
                                            crl_file(pki).stat().st_size)


def test_crl_verifies_and_reasons_read_back_by_openssl(pki: Instance, tmp_path: Path) -> None:
    cert = issue(pki)
    revoke(pki, cert.serial, Reason.affiliation_changed)
    publish(pki)
    issuing = write_pem(tmp_path / "issuing.pem", (pki.settings.publication_dir / f"{ISSUING_SLUG}.crt").read_bytes())
    crl = write_pem(tmp_path / "crl.pem", crl_file(pki).read_bytes(), "X509 CRL")
    verify = subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", str(issuing), "-noout"],
                            capture_output=True, text=True)
    assert "verify OK" in verify.stdout + verify.stderr
    text = subprocess.run(["openssl", "crl", "-in", str(crl), "-text", "-noout"],
                          capture_output=True, text=True, check=True).stdout
    assert cert.serial.upper() in text.replace(":", "").upper()
    assert "Affiliation Changed" in text


@pytest.mark.parametrize("slug,kind", [(ISSUING_SLUG, "CRL"), (ROOT_SLUG, "ARL")])
def test_published_crls_pass_pkilint(pki: Instance, tmp_path: Path, slug: str, kind: str) -> None:
    der = crl_file(pki, slug).read_bytes()
    path = tmp_path / "crl.der"
    path.write_bytes(der)
    assert crl_errors(path, kind) == []


def test_revocation_is_final(pki: Instance) -> None:
    cert = issue(pki)
    revoke(pki, cert.serial, Reason.superseded)
    with pytest.raises(IllegalTransition):
        revoke(pki, cert.serial, Reason.key_compromise)


def test_certificate_hold_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_reason("certificateHold")


def test_unknown_reason_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_reason("tired")


def test_reason_names_in_both_spellings() -> None:
    assert parse_reason("keyCompromise") is parse_reason("key_compromise") is Reason.key_compromise


def test_failed_reservation_cannot_be_revoked(pki: Instance) -> None:
    issuing = (pki.settings.publication_dir / f"{ISSUING_SLUG}.crt").read_bytes()
    not_after = x509.load_der_x509_certificate(issuing).not_valid_after_utc
    with pytest.raises(CAError):
        issue(pki, now=not_after - timedelta(days=1))
    with pki.factory() as session:
        failed = session.scalars(select(Certificate).order_by(Certificate.id.desc())).first()
    assert failed is not None and failed.state == CertificateState.FAILED
    with pytest.raises(IllegalTransition):
        revoke(pki, failed.serial, Reason.superseded)


def test_expired_revoked_entries_leave_the_crl(pki: Instance) -> None:
    cert = issue(pki)
    revoke(pki, cert.serial, Reason.cessation_of_operation)
    with transaction(pki.factory) as session:
        row = find_certificate(session, cert.serial)
        row.not_after = utcnow() - timedelta(seconds=1)
    publish(pki)
    crl = x509.load_der_x509_crl(crl_file(pki).read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(cert.serial, 16)) is None


def _refuse_audit_rows(instance: Instance, refuse: bool) -> None:
    postgres = instance.engine.dialect.name == "postgresql"
    with instance.engine.begin() as conn:
        if refuse and postgres:
            conn.exec_driver_sql(
                "CREATE FUNCTION audit_refuse() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql("CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_events "
                                 "FOR EACH ROW EXECUTE FUNCTION audit_refuse()")
        elif refuse:
            conn.exec_driver_sql("CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_events "
                                 "BEGIN SELECT RAISE(ABORT, 'audit refused'); END")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_refuse" + (" ON audit_events" if postgres else ""))
            if postgres:
                conn.exec_driver_sql("DROP FUNCTION audit_refuse()")


def test_revocation_fails_when_its_audit_row_cannot_be_written(pki: Instance) -> None:
    cert = issue(pki)
    _refuse_audit_rows(pki, True)
    try:
        with pytest.raises(Exception, match="audit refused"):
            revoke(pki, cert.serial, Reason.key_compromise)
    finally:
        _refuse_audit_rows(pki, False)
    with pki.factory() as session:
        assert find_certificate(session, cert.serial).revoked_at is None


def test_crl_due_after_a_revocation_and_when_old(pki: Instance) -> None:
    import time

    from ra.services.crl import crl_due

    time.sleep(1.1)  # earlier tests' revocations fall in a past second (thisUpdate has seconds)
    publish(pki)
    with pki.factory() as session:
        assert crl_due(session, ISSUING_SLUG, utcnow(), max_age=timedelta(hours=20)) is None
        assert "older" in (crl_due(session, ISSUING_SLUG, utcnow() + timedelta(hours=21),
                                   max_age=timedelta(hours=20)) or "")
    cert = issue(pki)
    revoke(pki, cert.serial, Reason.superseded)
    with pki.factory() as session:
        assert "revoked since" in (crl_due(session, ISSUING_SLUG, utcnow(), max_age=timedelta(hours=20)) or "")
