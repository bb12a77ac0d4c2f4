"""Certificates and revocation requests on the screens: scope, roles, approve/reject, CRL."""

from __future__ import annotations

import pytest
from cryptography import x509
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.crl import Reason
from ra.config import ISSUING_SLUG
from ra.errors import Forbidden, IllegalTransition, NotFound
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import AuditEvent, Certificate, RevocationRequest, RevocationRequestStatus, Role
from ra.services import revocation_requests as service
from tests.ra.certificate_setup import Cast, issue, issued_for, logged_in, make_cast
from tests.ra.web import make_account

# (persona, expected answer): in scope → allowed, out of scope → 404, wrong role → 403.
SEE = [("mc", 200), ("mc_out", 404), ("aed", 200), ("aed_out", 404), ("operator", 200), ("auditor", 200)]
REQUEST = [("mc", 302), ("mc_out", 404), ("aed", 302), ("aed_out", 404), ("operator", 302), ("auditor", 403)]
PROCESS = [("mc", 403), ("mc_out", 403), ("aed", 403), ("aed_out", 403), ("operator", 302), ("auditor", 403)]


@pytest.fixture
def cast(db_session: Session, cipher: FieldCipher) -> Cast:
    return make_cast(db_session, cipher)


def fresh(session: Session, cert: Certificate) -> Certificate:
    """The row now, read without leaving a transaction open (SQLite: the write lock)."""
    session.commit()
    row = session.get(Certificate, cert.id, populate_existing=True)
    assert row is not None
    session.commit()
    return row


def requests_of(session: Session, cert: Certificate) -> list[RevocationRequest]:
    session.commit()
    found = list(session.scalars(select(RevocationRequest).where(RevocationRequest.certificate_id == cert.id)
                                 .execution_options(populate_existing=True)))
    session.commit()
    return found


def crl_entry(pki: Instance, cert: Certificate) -> x509.RevokedCertificate | None:
    crl = x509.load_der_x509_crl((pki.settings.publication_dir / f"{ISSUING_SLUG}.crl").read_bytes())
    return crl.get_revoked_certificate_by_serial_number(int(cert.serial, 16))


@pytest.mark.parametrize("persona,expected", SEE)
def test_certificate_page_follows_the_scope(app: Flask, pki: Instance, db_session: Session, cast: Cast,
                                            persona: str, expected: int) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    browser = logged_in(app, cast.people()[persona])
    page = browser.get(f"/certificats/{cert.serial}")
    assert page.status_code == expected
    assert browser.get(f"/certificats/{cert.serial}.pem").status_code == expected
    listing = browser.get("/certificats/").get_data(as_text=True)
    assert (cert.serial in listing) == (expected == 200)


@pytest.mark.parametrize("persona,expected", REQUEST)
def test_who_may_request_a_revocation(app: Flask, pki: Instance, db_session: Session, cast: Cast,
                                      persona: str, expected: int) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    browser = logged_in(app, cast.people()[persona])
    # The out-of-scope and auditor cases never see the form: take the CSRF token from the list.
    response = browser.submit("/certificats/", {"reason": "affiliationChanged", "comment": "a quitté la mairie"},
                              action=f"/certificats/{cert.serial}/revocation")
    assert response.status_code == expected
    made = requests_of(db_session, cert)
    if expected == 302:
        assert [(r.status, r.reason, r.requested_by_id) for r in made] == [
            (RevocationRequestStatus.PENDING, int(Reason.affiliation_changed), cast.people()[persona].account.id)]
        assert fresh(db_session, cert).revoked_at is None  # a request is not a revocation
    else:
        assert made == []


def test_certificate_without_order_is_for_operators_and_auditors_only(
        app: Flask, pki: Instance, db_session: Session, cast: Cast) -> None:
    cert = issue(pki)
    for persona, expected in [("mc", 404), ("aed", 404), ("operator", 200), ("auditor", 200)]:
        assert logged_in(app, cast.people()[persona]).get(f"/certificats/{cert.serial}").status_code == expected


def test_unqualified_mc_may_see_but_not_request(app: Flask, pki: Instance, db_session: Session, cast: Cast,
                                                cipher: FieldCipher) -> None:
    novice = make_account(db_session, cipher, Role.MC, entity=cast.home, qualified=False)
    db_session.commit()
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    browser = logged_in(app, novice)
    page = f"/certificats/{cert.serial}"
    assert browser.get(page).status_code == 200
    response = browser.submit(page, {"reason": "superseded"}, action=f"{page}/revocation")
    assert response.status_code == 403 and requests_of(db_session, cert) == []


@pytest.mark.parametrize("persona,expected", PROCESS)
def test_only_ca_operators_approve(app: Flask, pki: Instance, db_session: Session, cast: Cast,
                                   persona: str, expected: int) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    pending = service.request_revocation(db_session, cast.mc.account, cert.serial, reason_key="keyCompromise")
    db_session.commit()
    browser = logged_in(app, cast.people()[persona])
    response = browser.submit("/certificats/", {}, action=f"/revocations/{pending.id}/approuver")
    assert response.status_code == expected
    assert (fresh(db_session, cert).revoked_at is not None) == (expected == 302)
    rejected = browser.submit("/certificats/", {"note": "x"}, action=f"/revocations/{pending.id}/refuser")
    assert rejected.status_code == expected  # the operator's request is already processed: a message, 302


def test_request_approve_then_publish_lists_the_certificate_in_the_crl(
        app: Flask, pki: Instance, db_session: Session, cast: Cast) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    page = f"/certificats/{cert.serial}"
    mc = logged_in(app, cast.mc)
    assert "Demander la révocation" in mc.get(page).get_data(as_text=True)
    assert mc.submit(page, {"reason": "tokenLost", "comment": "support perdu en mairie"},
                     action=f"{page}/revocation").status_code == 302
    [request] = requests_of(db_session, cert)
    assert request.reason == int(Reason.key_compromise)  # a lost token is a key compromise

    operator = logged_in(app, cast.operator)
    listing = operator.get("/revocations/?status=pending").get_data(as_text=True)
    assert cert.serial in listing and "support perdu en mairie" in listing
    assert operator.submit("/revocations/", {}, action=f"/revocations/{request.id}/approuver").status_code == 302
    row = fresh(db_session, cert)
    assert row.revoked_at is not None and row.revocation_reason == int(Reason.key_compromise)
    assert requests_of(db_session, cert)[0].status == RevocationRequestStatus.PROCESSED

    published = operator.submit("/revocations/", {}, action="/revocations/lcr", follow_redirects=True)
    assert published.status_code == 200 and "LCR n°" in published.get_data(as_text=True)
    entry = crl_entry(pki, cert)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert "Demander la révocation" not in mc.get(page).get_data(as_text=True)  # no form on a revoked cert


def test_rejection_needs_a_note_and_leaves_the_certificate_valid(
        app: Flask, pki: Instance, db_session: Session, cast: Cast) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    pending = service.request_revocation(db_session, cast.aed.account, cert.serial, reason_key="superseded")
    db_session.commit()
    operator = logged_in(app, cast.operator)
    action = f"/revocations/{pending.id}/refuser"
    without = operator.submit("/revocations/", {"note": "  "}, action=action, follow_redirects=True)
    assert "Indiquez pourquoi" in without.get_data(as_text=True)
    assert requests_of(db_session, cert)[0].status == RevocationRequestStatus.PENDING
    operator.submit("/revocations/", {"note": "Demande en double, voir la n° 12"}, action=action)
    assert requests_of(db_session, cert)[0].status == RevocationRequestStatus.REJECTED
    assert fresh(db_session, cert).revoked_at is None
    listing = operator.get("/revocations/?status=rejected").get_data(as_text=True)
    assert "Demande en double, voir la n° 12" in listing  # the note, read back from the audit row
    crl = operator.submit("/revocations/", {}, action="/revocations/lcr")
    assert crl.status_code == 302 and crl_entry(pki, cert) is None


def test_operator_revokes_at_once_and_never_twice(app: Flask, pki: Instance, db_session: Session, cast: Cast) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    page = f"/certificats/{cert.serial}"
    operator = logged_in(app, cast.operator)
    assert "Révoquer immédiatement" in operator.get(page).get_data(as_text=True)
    done = operator.submit(page, {"reason": "cessationOfOperation", "revoke_now": "y"}, action=f"{page}/revocation")
    assert done.status_code == 302
    row = fresh(db_session, cert)
    assert row.revoked_at is not None and row.revocation_reason == int(Reason.cessation_of_operation)
    first_revocation = row.revoked_at
    again = operator.submit(page, {"reason": "superseded", "revoke_now": "y"}, action=f"{page}/revocation")
    assert again.status_code == 409 and "déjà révoqué" in again.get_data(as_text=True)
    with pytest.raises(IllegalTransition):
        service.request_revocation(db_session, cast.operator.account, cert.serial, reason_key="superseded")
    db_session.rollback()
    assert fresh(db_session, cert).revoked_at == first_revocation
    revokes = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "certificate.revoke")
                                 .where(AuditEvent.object_id == cert.serial)).all()
    assert len(revokes) == 1 and revokes[0].actor == cast.operator.email


def test_mc_cannot_revoke_at_once(app: Flask, pki: Instance, db_session: Session, cast: Cast) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    page = f"/certificats/{cert.serial}"
    mc = logged_in(app, cast.mc)
    assert "Révoquer immédiatement" not in mc.get(page).get_data(as_text=True)
    response = mc.submit(page, {"reason": "keyCompromise", "revoke_now": "y"}, action=f"{page}/revocation")
    assert response.status_code == 403
    assert requests_of(db_session, cert) == [] and fresh(db_session, cert).revoked_at is None


def test_one_pending_request_per_certificate_and_approval_of_a_revoked_one_is_refused(
        pki: Instance, db_session: Session, cast: Cast) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    first = service.request_revocation(db_session, cast.mc.account, cert.serial, reason_key="superseded")
    db_session.commit()
    with pytest.raises(IllegalTransition):
        service.request_revocation(db_session, cast.aed.account, cert.serial, reason_key="keyCompromise")
    db_session.rollback()
    service.approve_request(db_session, cast.operator.account, first.id)
    db_session.commit()
    with pytest.raises(IllegalTransition):
        service.approve_request(db_session, cast.operator.account, first.id)
    db_session.rollback()
    with pytest.raises(IllegalTransition):
        service.reject_request(db_session, cast.operator.account, first.id, "trop tard")
    db_session.rollback()


def test_service_scope_and_roles(pki: Instance, db_session: Session, cast: Cast) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    with pytest.raises(NotFound):
        service.request_revocation(db_session, cast.mc_out.account, cert.serial, reason_key="superseded")
    with pytest.raises(Forbidden):
        service.request_revocation(db_session, cast.auditor.account, cert.serial, reason_key="superseded")
    with pytest.raises(Forbidden):
        service.approve_request(db_session, cast.aed.account, 1)
    db_session.rollback()


def test_unknown_reason_and_long_comment_are_refused(app: Flask, pki: Instance, db_session: Session,
                                                     cast: Cast) -> None:
    cert = issued_for(pki, db_session, cast.home, cast.mc.account)
    page = f"/certificats/{cert.serial}"
    mc = logged_in(app, cast.mc)
    for data in ({"reason": "certificateHold"}, {"reason": "removeFromCRL"},
                 {"reason": "superseded", "comment": "x" * 501}):
        response = mc.submit(page, data, action=f"{page}/revocation")
        assert response.status_code == 400 and "erreur" in response.get_data(as_text=True)
    assert requests_of(db_session, cert) == []


def test_certificate_filters(app: Flask, pki: Instance, db_session: Session, cast: Cast) -> None:
    valid = issued_for(pki, db_session, cast.home, cast.mc.account)
    revoked = issued_for(pki, db_session, cast.home, cast.mc.account)
    other = issued_for(pki, db_session, cast.elsewhere, cast.mc_out.account)
    service.request_revocation(db_session, cast.operator.account, revoked.serial, reason_key="superseded",
                               revoke_now=True)
    db_session.commit()
    operator = logged_in(app, cast.operator)

    def listed(query: str) -> set[str]:
        html = operator.get(f"/certificats/?{query}").get_data(as_text=True)
        return {c.serial for c in (valid, revoked, other) if c.serial in html}

    assert listed(f"entity={cast.home.id}&status=valid") == {valid.serial}
    assert listed(f"entity={cast.home.id}&status=revoked") == {revoked.serial}
    assert listed(f"entity={cast.elsewhere.id}") == {other.serial}
    assert listed(f"entity={cast.home.id}&status=expired") == set()
    assert listed(f"q={valid.serial[:12]}") == {valid.serial}
    assert operator.get("/certificats/?status=bogus").status_code == 400
    assert operator.get("/certificats/?entity=abc").status_code == 400
