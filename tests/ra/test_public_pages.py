"""Public pages without login: /verifier (certificate check) and /revoquer (holder's code)."""

from __future__ import annotations

import io
import re
import secrets
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ca.crl import Reason
from ra.config import ISSUING_SLUG
from ra.db import transaction
from ra.instance import Instance
from ra.models import AuditEvent, Certificate, RevocationRequest, RevocationRequestStatus
from ra.services.enrolment import hash_revocation_code, new_revocation_code
from ra.services.revocation import revoke_certificate
from tests.ra.certificate_setup import issue, parsed, reread
from tests.ra.web import csrf_token

ALERT = re.compile(r'role="alert">([^<]*)</p>')
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


def text(response) -> str:  # type: ignore[no-untyped-def]
    """The page as a reader sees it (HTML entities decoded)."""
    return unescape(response.get_data(as_text=True))


def counts(pki: Instance) -> tuple[int, int, int]:
    with pki.factory() as session:
        return tuple(session.scalar(select(func.count()).select_from(model)) or 0  # type: ignore[return-value]
                     for model in (AuditEvent, Certificate, RevocationRequest))


class Visitor:
    """An anonymous browser with its own address (the rate limit counts per address)."""

    def __init__(self, app: Flask) -> None:
        self.client: FlaskClient = app.test_client()
        self.ip = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"

    def post(self, path: str, data: dict[str, object], *, with_csrf: bool = True):  # type: ignore[no-untyped-def]
        page = self.client.get(path, environ_base={"REMOTE_ADDR": self.ip})
        if with_csrf:
            data = {"csrf_token": csrf_token(page.get_data(as_text=True)), **data}
        return self.client.post(path, data=data, environ_base={"REMOTE_ADDR": self.ip})

    def check(self, pem: bytes | str):  # type: ignore[no-untyped-def]
        return self.post("/verifier", {"pem": pem if isinstance(pem, str) else pem.decode("latin-1")})

    def upload(self, content: bytes, name: str = "certificat.der"):  # type: ignore[no-untyped-def]
        return self.post("/verifier", {"upload": (io.BytesIO(content), name)})

    def revoke(self, serial: str, code: str, reason: str = "keyCompromise"):  # type: ignore[no-untyped-def]
        return self.post("/revoquer", {"serial": serial, "code": code, "reason": reason})


@pytest.fixture
def visitor(app: Flask) -> Visitor:
    return Visitor(app)


def foreign_ca(subject: x509.Name) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def leaf_signed_by(key: ec.EllipticCurvePrivateKey, issuer: x509.Name, serial: int | None = None) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Jean MARTIN")])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
            .serial_number(serial or x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))


def issuing_ca(pki: Instance) -> x509.Certificate:
    return x509.load_der_x509_certificate((pki.settings.publication_dir / f"{ISSUING_SLUG}.crt").read_bytes())


# --- /verifier ---------------------------------------------------------------------------------

def test_issued_certificate_is_ours_and_valid(pki: Instance, visitor: Visitor) -> None:
    cert = issue(pki)
    before = counts(pki)
    for response in (visitor.check(parsed(cert).public_bytes(PEM)), visitor.upload(cert.der or b"", "moi.crt")):
        html = text(response)
        assert response.status_code == 200
        assert "et valide" in html and cert.serial in html and "AC RGS" in html
    assert counts(pki) == before  # nothing stored, not even an audit row


def test_revoked_certificate_shows_date_and_reason(pki: Instance, visitor: Visitor) -> None:
    cert = issue(pki)
    with transaction(pki.factory) as session:
        row = session.get(Certificate, cert.id)
        assert row is not None
        revoke_certificate(session, row, reason=Reason.affiliation_changed, actor="test")
    revoked_at = reread(pki, cert).revoked_at
    assert revoked_at is not None
    html = text(visitor.check(parsed(cert).public_bytes(PEM)))
    assert "RÉVOQUÉ" in html and revoked_at.strftime("%d/%m/%Y %H:%M") in html
    assert "Changement d'affiliation" in html


def test_certificate_of_another_ca_is_not_ours_even_with_the_same_issuer_name(pki: Instance, visitor: Visitor) -> None:
    ours = issuing_ca(pki)
    impostor_key, _ = foreign_ca(ours.subject)  # same name as our issuing CA, another key
    forged = leaf_signed_by(impostor_key, ours.subject)
    other_key, other_ca = foreign_ca(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Autre AC")]))
    for cert in (forged, leaf_signed_by(other_key, other_ca.subject), other_ca):
        response = visitor.check(cert.public_bytes(PEM))
        assert response.status_code == 200
        assert "n'a pas été émis par cette autorité" in text(response)


def test_signed_by_our_key_but_unknown_to_the_database(pki: Instance, visitor: Visitor) -> None:
    with pki.factory() as session:
        ref = pki.ca.authority(session, ISSUING_SLUG)
    stray = leaf_signed_by(pki.ca.signing_key(ref), issuing_ca(pki).subject)  # type: ignore[arg-type]
    html = text(visitor.check(stray.public_bytes(PEM)))
    assert "inconnu de notre base" in html


def test_ca_certificate_is_recognised(pki: Instance, visitor: Visitor) -> None:
    html = text(visitor.upload(issuing_ca(pki).public_bytes(DER), "ac.der"))
    assert "Certificat d'autorité de notre hiérarchie" in html


@pytest.mark.parametrize("content", [
    pytest.param("bonjour", id="text"),
    pytest.param("-----BEGIN CERTIFICATE-----\nAAAA!!\n-----END CERTIFICATE-----\n", id="bad-pem"),
    pytest.param("", id="empty"),
    pytest.param("A" * (64 * 1024 + 10), id="oversize"),
])
def test_malformed_input_is_a_clear_400_and_stores_nothing(pki: Instance, visitor: Visitor, content: str) -> None:
    before = counts(pki)
    response = visitor.check(content)
    assert response.status_code == 400
    html = text(response)
    assert any(text in html for text in ("n'est pas un certificat", "64 Ko", "Collez un certificat"))
    assert counts(pki) == before


def test_malformed_upload_is_a_400(pki: Instance, visitor: Visitor) -> None:
    assert visitor.upload(b"\x30\x82\x01\x00garbage").status_code == 400
    assert visitor.upload(b"\x00" * (64 * 1024 + 1)).status_code == 400


def test_verifier_form_needs_its_csrf_token(pki: Instance, visitor: Visitor) -> None:
    cert = issue(pki)
    response = visitor.post("/verifier", {"pem": parsed(cert).public_bytes(PEM).decode()}, with_csrf=False)
    assert response.status_code == 400


# --- /revoquer ---------------------------------------------------------------------------------

def delivered(pki: Instance) -> tuple[Certificate, str]:
    """An issued certificate with a revocation code, as delivery leaves it."""
    cert = issue(pki)
    code = new_revocation_code()
    with transaction(pki.factory) as session:
        row = session.get(Certificate, cert.id)
        assert row is not None
        row.revocation_code_hash = hash_revocation_code(code)
    return cert, code


def failures(pki: Instance, serial: str) -> list[AuditEvent]:
    with pki.factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "certificate.holder_revoke_failed")
                                    .where(AuditEvent.object_id == serial)))


def test_right_code_revokes_at_once(pki: Instance, visitor: Visitor) -> None:
    cert, code = delivered(pki)
    typed_serial = ":".join(cert.serial.upper()[i:i + 2] for i in range(0, len(cert.serial), 2))
    response = visitor.revoke(typed_serial, code.lower().replace("-", " "), "superseded")
    assert response.status_code == 200 and "est révoqué depuis" in text(response)
    row = reread(pki, cert)
    assert row.revoked_at is not None and row.revocation_reason == int(Reason.superseded)
    with pki.factory() as session:
        revoke_row = session.scalar(select(AuditEvent).where(AuditEvent.action == "certificate.revoke")
                                    .where(AuditEvent.object_id == cert.serial))
        request = session.scalar(select(RevocationRequest).where(RevocationRequest.certificate_id == cert.id))
    assert revoke_row is not None and revoke_row.actor == "porteur"
    assert request is not None and request.requested_by_holder and request.status == "processed"
    normalised = code.replace("-", "")
    with pki.factory() as session:
        leaks = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.details.contains(normalised) | AuditEvent.details.contains(code)))
    assert leaks == 0  # the code is never written anywhere
    again = visitor.revoke(cert.serial, code)
    assert again.status_code == 409 and "déjà révoqué" in text(again)


def test_wrong_code_and_unknown_serial_get_the_same_answer(pki: Instance, visitor: Visitor) -> None:
    cert, code = delivered(pki)
    undelivered = issue(pki)  # issued, no code yet
    unknown = "7" + secrets.token_hex(15)  # as stored: no leading zero (one draw in 16 had one)
    answers = [visitor.revoke(cert.serial, "AAAA-BBBB-CCCC-DDDD"), visitor.revoke(unknown, code),
               visitor.revoke(undelivered.serial, code)]
    messages = {ALERT.search(text(r)).group(1) for r in answers}  # type: ignore[union-attr]
    assert {r.status_code for r in answers} == {400}
    assert messages == {"Le numéro de série ou le code de révocation est incorrect."}
    assert reread(pki, cert).revoked_at is None
    [failure] = failures(pki, cert.serial)
    assert failure.actor == "porteur" and visitor.ip in failure.details and "AAAA" not in failure.details
    assert len(failures(pki, unknown)) == 1


def test_throttle_per_serial_then_even_the_right_code_waits(app: Flask, pki: Instance) -> None:
    cert, code = delivered(pki)
    for attempt in range(5):
        response = Visitor(app).revoke(cert.serial, f"WRONG-CODE-{attempt}")  # from 5 addresses
        assert response.status_code == 400
    blocked = Visitor(app).revoke(cert.serial, code)
    assert blocked.status_code == 429 and "Trop de tentatives" in text(blocked)
    assert reread(pki, cert).revoked_at is None
    assert len(failures(pki, cert.serial)) == 5  # a refused attempt is not counted again


def test_throttle_per_address(pki: Instance, visitor: Visitor) -> None:
    cert, code = delivered(pki)
    for _ in range(5):
        assert visitor.revoke(secrets.token_hex(16), code).status_code == 400
    assert visitor.revoke(cert.serial, code).status_code == 429
    assert reread(pki, cert).revoked_at is None


@pytest.mark.parametrize("data", [
    pytest.param({"serial": "pas-hexa", "code": "X", "reason": "keyCompromise"}, id="bad-serial"),
    pytest.param({"serial": "abc", "code": "X", "reason": "privilegeWithdrawn"}, id="reason-not-offered"),
    pytest.param({"serial": "abc", "code": "", "reason": "keyCompromise"}, id="no-code"),
])
def test_bad_input_is_a_400_without_any_write(pki: Instance, visitor: Visitor, data: dict[str, str]) -> None:
    before = counts(pki)
    assert visitor.post("/revoquer", data).status_code == 400
    assert counts(pki) == before


def test_revoke_form_needs_its_csrf_token(pki: Instance, visitor: Visitor) -> None:
    cert, code = delivered(pki)
    response = visitor.post("/revoquer", {"serial": cert.serial, "code": code, "reason": "keyCompromise"},
                            with_csrf=False)
    assert response.status_code == 400 and reread(pki, cert).revoked_at is None


def test_holder_revocation_closes_a_waiting_staff_request(pki: Instance, visitor: Visitor) -> None:
    cert, code = delivered(pki)
    with transaction(pki.factory) as session:
        session.add(RevocationRequest(certificate_id=cert.id, reason=int(Reason.superseded),
                                      status=RevocationRequestStatus.PENDING))
    assert visitor.revoke(cert.serial, code).status_code == 200
    with pki.factory() as session:
        statuses = session.scalars(select(RevocationRequest.status)
                                   .where(RevocationRequest.certificate_id == cert.id)).all()
    assert sorted(statuses) == ["processed", "processed"]
