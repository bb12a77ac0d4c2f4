"""The RA's issuance cycle on a real CA instance (SoftHSM) and real databases."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from ca.errors import CAError, RequestError
from ca.profiles import PROFILES
from ra.config import ISSUING_SLUG, ROOT_SLUG
from ra.db import utcnow
from ra.instance import Instance
from ra.models import AuditEvent, Certificate, CertificateState
from ra.services.issuance import IssueCommand, issue_certificate
from tests.lint_cli import etsi_errors
from tests.ra.helpers import csr_for, holder, rsa_key, write_pem


def counts(instance: Instance) -> tuple[int, int]:
    with instance.factory() as session:
        return (session.scalar(select(func.count()).select_from(Certificate)) or 0,
                session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def issue(instance: Instance, csr: bytes | None = None, *, profile: str = "rgs2-entite-double",
          **kwargs: object) -> Certificate:
    command = IssueCommand(subject=holder(), csr=csr if csr is not None else csr_for(), profile=profile,
                           actor="test")
    return issue_certificate(instance.factory, instance.ca, command, **kwargs)  # type: ignore[arg-type]


def chain_files(instance: Instance, tmp_path: Path) -> tuple[Path, Path]:
    pki = instance.settings.publication_dir
    root = write_pem(tmp_path / "root.pem", (pki / f"{ROOT_SLUG}.crt").read_bytes())
    issuing = write_pem(tmp_path / "issuing.pem", (pki / f"{ISSUING_SLUG}.crt").read_bytes())
    return root, issuing


def test_issued_certificate_is_recorded_with_audit_rows(pki: Instance) -> None:
    before_certs, before_events = counts(pki)
    cert = issue(pki)
    assert cert.state == CertificateState.ISSUED and cert.der
    parsed = x509.load_der_x509_certificate(cert.der)
    assert format(parsed.serial_number, "x") == cert.serial
    assert parsed.serial_number.bit_length() >= 64 and len(cert.serial) <= 40
    assert counts(pki) == (before_certs + 1, before_events + 2)  # reserve + issue
    with pki.factory() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.object_id == cert.serial).order_by(AuditEvent.seq)
        ).all()
    assert actions == ["certificate.reserve", "certificate.issue"]


def test_subject_comes_from_the_ra_not_the_csr(pki: Instance) -> None:
    cert = issue(pki)
    parsed = x509.load_der_x509_certificate(cert.der)  # type: ignore[arg-type]
    common_names = [a.value for a in parsed.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    assert common_names == ["Marie DUBOIS"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_issued_certificate_verifies_with_chain_and_crl(pki: Instance, tmp_path: Path, profile: str) -> None:
    from ra.services.crl import publish_crl

    cert = issue(pki, profile=profile)
    publish_crl(pki.factory, pki.ca, ISSUING_SLUG, actor="test",
                publication_dir=pki.settings.publication_dir, next_update_hours=24)
    root, issuing = chain_files(pki, tmp_path)
    leaf = write_pem(tmp_path / "leaf.pem", cert.der)  # type: ignore[arg-type]
    crl = write_pem(tmp_path / "crl.pem",
                    (pki.settings.publication_dir / f"{ISSUING_SLUG}.crl").read_bytes(), "X509 CRL")
    arl = write_pem(tmp_path / "arl.pem",
                    (pki.settings.publication_dir / f"{ROOT_SLUG}.crl").read_bytes(), "X509 CRL")
    result = subprocess.run(
        ["openssl", "verify", "-crl_check_all", "-CAfile", str(root), "-untrusted", str(issuing),
         "-CRLfile", str(crl), "-CRLfile", str(arl), str(leaf)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_issued_certificate_passes_etsi_lint(pki: Instance, tmp_path: Path, profile: str) -> None:
    cert = issue(pki, profile=profile, csr=csr_for(rsa_key(3072)))
    leaf = write_pem(tmp_path / "leaf.pem", cert.der)  # type: ignore[arg-type]
    assert etsi_errors(leaf) == []


@pytest.mark.parametrize("bad_csr", [
    pytest.param(b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n",
                 id="garbage-pem"),
    pytest.param(b"", id="empty"),
    pytest.param(csr_for(rsa_key(1024)), id="rsa-1024"),
    pytest.param(csr_for(extensions=True), id="extension-request"),
])
def test_bad_csr_reserves_nothing(pki: Instance, bad_csr: bytes) -> None:
    before = counts(pki)
    with pytest.raises(RequestError):
        issue(pki, bad_csr)
    assert counts(pki) == before


def test_csr_with_bad_signature_reserves_nothing(pki: Instance) -> None:
    csr = x509.load_pem_x509_csr(csr_for())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    before = counts(pki)
    with pytest.raises(RequestError):
        issue(pki, bytes(der))
    assert counts(pki) == before


def test_failure_after_reservation_marks_serial_failed(pki: Instance) -> None:
    issuing = (pki.settings.publication_dir / f"{ISSUING_SLUG}.crt").read_bytes()
    not_after = x509.load_der_x509_certificate(issuing).not_valid_after_utc
    before_certs, _ = counts(pki)
    with pytest.raises(CAError):
        issue(pki, now=not_after - timedelta(days=30))  # the holder cert would outlive its CA
    with pki.factory() as session:
        row = session.scalars(select(Certificate).order_by(Certificate.id.desc())).first()
    assert counts(pki)[0] == before_certs + 1
    assert row is not None and row.state == CertificateState.FAILED and row.der is None
    assert row.failure


def test_serials_are_unique_and_random(pki: Instance) -> None:
    serials = {issue(pki).serial for _ in range(3)}
    assert len(serials) == 3
    assert all(int(s, 16) >= 1 << 126 for s in serials)


def test_status_is_told_by_dates(pki: Instance) -> None:
    cert = issue(pki)
    assert cert.status(utcnow()) == "valid"
    assert cert.status(cert.not_after + timedelta(seconds=1)) == "expired"


def test_an_issuing_process_freezes_its_long_lived_objects_once_and_collects_young_ones_less_often() -> None:
    script = (
        "import gc\n"
        "from ra.authority import YOUNG_COLLECTION_THRESHOLD, _freeze_long_lived\n"
        "assert gc.get_freeze_count() == 0 and gc.get_threshold()[0] == 700\n"
        "_freeze_long_lived()\n"
        "frozen = gc.get_freeze_count()\n"
        "[object() for _ in range(10)]; keep = [[] for _ in range(100)]\n"
        "_freeze_long_lived()\n"
        "assert gc.get_freeze_count() == frozen > 1000, (frozen, gc.get_freeze_count())\n"
        "assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, 10) and YOUNG_COLLECTION_THRESHOLD > 700\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parents[2])
