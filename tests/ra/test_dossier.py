"""Dossier rules: pieces and their dates, completeness per kind of entity, review, refused uploads,
audited reads, and the archive purge."""

from __future__ import annotations

import io
import secrets
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.config import ISSUING_SLUG
from ra.documents import DocumentRejected, retention_end
from ra.documents.sniff import MAX_DOCUMENT_BYTES
from ra.documents.vault import DocumentVault
from ra.errors import IllegalTransition, NotFound
from ra.instance import Instance
from ra.models import (
    AuditEvent, Authority, Certificate, CertificateState, Document, DocumentKind, EntityKind, Order,
    OrderState, ReviewStatus,
)
from ra.services.dossier import (
    dossier_lines, missing_items, purge_documents, read_dossier_document, review_document,
)
from ra.services.inputs import FieldErrors
from ra.services.orders import cancel_order
from tests.ra.helpers import guichet
from tests.ra.order_setup import (
    ORDER_DAY, Scene, accept_dossier, document_rows, dossier_rows, fill_dossier, jpeg_bytes, make_scene, pdf_bytes,
    order_events, place_order, png_bytes, upload, vault_files,
)

# --- dates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("order_day", "signed", "accepted"), [
    (date(2026, 5, 15), date(2026, 2, 15), True),  # exactly 3 months before the order
    (date(2026, 5, 15), date(2026, 2, 14), False),  # one day over
    (date(2026, 5, 31), date(2026, 2, 28), True),  # 31 May - 3 months = 28 February
    (date(2026, 5, 31), date(2026, 2, 27), False),
    (date(2026, 5, 15), date(2026, 5, 20), True),  # signed after the order, not in the future
])
def test_request_must_be_dated_less_than_3_months_before_the_order(
        pki: Instance, db_session: Session, order_day: date, signed: date, accepted: bool) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune, today=order_day)
    today = order_day + timedelta(days=10)
    if accepted:
        row = upload(db_session, pki.vault, scene.operator, order, DocumentKind.REQUEST, document_date=signed,
                     today=today)
        assert row.document_date == signed
        return
    with pytest.raises(FieldErrors) as caught:
        upload(db_session, pki.vault, scene.operator, order, DocumentKind.REQUEST, document_date=signed, today=today)
    message = caught.value.errors["document_date"]
    assert "moins de 3 mois" in message and signed.strftime("%d/%m/%Y") in message
    assert dossier_rows(db_session, order) == 0


def test_request_without_a_date_is_refused(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    with pytest.raises(FieldErrors) as caught:
        upload(db_session, pki.vault, scene.operator, order, DocumentKind.REQUEST, document_date=None)
    assert "obligatoire" in caught.value.errors["document_date"]


@pytest.mark.parametrize("kind", list(DocumentKind))
def test_a_date_in_the_future_is_refused_for_every_piece(pki: Instance, db_session: Session,
                                                         kind: DocumentKind) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    with pytest.raises(FieldErrors) as caught:
        upload(db_session, pki.vault, scene.operator, order, kind, document_date=ORDER_DAY + timedelta(days=1),
               today=ORDER_DAY)
    assert "futur" in caught.value.errors["document_date"]


def test_a_company_needs_a_kbis_under_3_months(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session, kind=EntityKind.ENTREPRISE)
    order = place_order(db_session, scene.operator, scene.commune)
    with pytest.raises(FieldErrors) as caught:
        upload(db_session, pki.vault, scene.operator, order, DocumentKind.ENTITY_PROOF, document_date=None)
    assert "Kbis" in caught.value.errors["document_date"]
    with pytest.raises(FieldErrors):
        upload(db_session, pki.vault, scene.operator, order, DocumentKind.ENTITY_PROOF,
               document_date=date(2026, 2, 14))
    row = upload(db_session, pki.vault, scene.operator, order, DocumentKind.ENTITY_PROOF,
                 document_date=date(2026, 2, 15))
    assert row.document_date == date(2026, 2, 15)


def test_a_public_body_proves_itself_with_an_undated_or_older_sirene_extract(pki: Instance,
                                                                             db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    upload(db_session, pki.vault, scene.operator, order, DocumentKind.ENTITY_PROOF, document_date=None)
    upload(db_session, pki.vault, scene.operator, order, DocumentKind.ENTITY_PROOF, document_date=date(2025, 1, 6))
    assert not any("SIRENE" in item for item in missing_items(order))


# --- completeness ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(EntityKind))
def test_dossier_is_complete_with_the_five_pieces_for_every_kind_of_entity(
        pki: Instance, db_session: Session, kind: EntityKind) -> None:
    scene = make_scene(db_session, kind=kind)
    order = place_order(db_session, scene.accounts["aed_in"], scene.commune)
    assert len(missing_items(order)) == 5
    kinds = list(DocumentKind)
    for piece in kinds[:-1]:
        upload(db_session, pki.vault, scene.accounts["aed_in"], order, piece)
    assert order.state == OrderState.DRAFT
    assert missing_items(order) == ["Pièce manquante : conditions générales d'utilisation signées."]
    proof = next(line for line in dossier_lines(order) if line.kind == DocumentKind.ENTITY_PROOF)
    assert ("Kbis" in proof.label) == (kind == EntityKind.ENTREPRISE)
    assert proof.needs_date == (kind == EntityKind.ENTREPRISE)
    upload(db_session, pki.vault, scene.accounts["aed_in"], order, kinds[-1])
    assert missing_items(order) == [] and order.state == OrderState.DOSSIER_COMPLETE


def test_a_rejected_piece_reopens_the_dossier_until_it_is_replaced(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.accounts["mc_in"], scene.commune)
    rows = fill_dossier(db_session, pki.vault, scene.accounts["mc_in"], order)
    holder_id = next(r for r in rows if r.kind == DocumentKind.HOLDER_ID)
    review_document(db_session, scene.operator, order.id, holder_id.id, accept=False, note="Copie illisible")
    assert order.state == OrderState.DRAFT
    assert missing_items(order) == [
        "Pièce refusée, à remplacer : pièce d'identité du porteur (motif : Copie illisible)."]
    with pytest.raises(FieldErrors):
        review_document(db_session, scene.operator, order.id, holder_id.id, accept=False, note="  ")
    replacement = upload(db_session, pki.vault, scene.accounts["mc_in"], order, DocumentKind.HOLDER_ID,
                         data=jpeg_bytes(), filename="cni.jpg")
    assert order.state == OrderState.DOSSIER_COMPLETE
    line = next(line for line in dossier_lines(order) if line.kind == DocumentKind.HOLDER_ID)
    assert line.current is replacement and line.history == [holder_id] and line.status == "pending"
    assert holder_id.review_status == ReviewStatus.REJECTED  # the history keeps its review
    with pytest.raises(IllegalTransition):
        review_document(db_session, scene.operator, order.id, holder_id.id, accept=True)
    assert order_events(db_session, order) == ["order.create", "order.complete_dossier", "order.reopen_dossier", "order.complete_dossier"]


def test_missing_items_names_a_date_that_became_wrong(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    fill_dossier(db_session, pki.vault, scene.operator, order)
    scene.commune.kind = EntityKind.ENTREPRISE  # corrected by the CA: the undated SIRENE extract no longer fits
    assert missing_items(order) == ["Extrait Kbis de l'entreprise de moins de 3 mois : la date du document est "
                                    "obligatoire."]


# --- refused uploads change nothing ------------------------------------------------------------------

def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("cni.txt", "bonjour")
    return out.getvalue()


BAD_FILES = {
    "oversize": (lambda: (lambda p: p + b"\n" * (MAX_DOCUMENT_BYTES + 1 - len(p)))(pdf_bytes()), "cni.pdf",
                 "too_large"),
    "html named .pdf": (lambda: b"<!doctype html><html><body>CNI</body></html>", "cni.pdf", "unknown_type"),
    "png named .pdf": (png_bytes, "cni.pdf", "extension_mismatch"),
    "empty": (lambda: b"", "cni.pdf", "empty"),
    "png with a zip appended": (lambda: png_bytes() + _zip(), "cni.png", "polyglot"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_refused_upload_changes_nothing(pki: Instance, db_session: Session, case: str) -> None:
    maker, filename, code = BAD_FILES[case]
    data = maker()
    if case == "oversize":
        assert len(data) == MAX_DOCUMENT_BYTES + 1
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    files, documents = vault_files(pki.vault), document_rows(db_session)
    with pytest.raises(DocumentRejected) as caught:
        upload(db_session, pki.vault, scene.operator, order, DocumentKind.HOLDER_ID, data=data, filename=filename)
    assert caught.value.code == code and caught.value.message
    assert vault_files(pki.vault) == files
    assert document_rows(db_session) == documents and dossier_rows(db_session, order) == 0


def test_an_upload_whose_transaction_is_rolled_back_leaves_no_file(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    db_session.commit()
    kept = upload(db_session, pki.vault, scene.operator, order, DocumentKind.HOLDER_ID).document.vault_id
    db_session.commit()
    dropped = upload(db_session, pki.vault, scene.operator, order, DocumentKind.TERMS_OF_USE).document.vault_id
    assert pki.vault.exists(dropped)
    db_session.rollback()  # e.g. the request failed after the service returned
    assert not pki.vault.exists(dropped) and pki.vault.exists(kept)


# --- reads ---------------------------------------------------------------------------------------------

def test_every_read_is_audited_and_returns_the_stored_bytes(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    content = png_bytes()
    row = upload(db_session, pki.vault, scene.operator, order, DocumentKind.HOLDER_ID, data=content,
                 filename="../../etc/cni.png")
    assert row.document.original_name == "cni.png" and row.document.media_type == "image/png"
    auditor = scene.accounts["auditor"]
    for _ in range(2):
        document, data = read_dossier_document(db_session, auditor, pki.vault, order.id, row.id)
        assert data == content
    reads = list(db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "document.read", AuditEvent.object_id == str(document.id))))
    assert [e.actor for e in reads] == [auditor.email, auditor.email]
    with pytest.raises(NotFound):
        read_dossier_document(db_session, scene.accounts["mc_out"], pki.vault, order.id, row.id)


# --- archive purge -------------------------------------------------------------------------------------

@pytest.fixture
def archive(pki: Instance, tmp_path: Path) -> DocumentVault:
    """A vault of its own, so the purge under test only ever deletes this test's files."""
    return DocumentVault(tmp_path / "archive", pki.settings.secret_key)


def _deliver(session: Session, order: Order, not_after: date) -> Certificate:
    authority = session.scalar(select(Authority).where(Authority.slug == ISSUING_SLUG))
    assert authority is not None
    end = datetime.combine(not_after, datetime.min.time(), timezone.utc)
    cert = Certificate(authority_id=authority.id, serial=secrets.token_hex(16), state=CertificateState.ISSUED,
                       profile=order.profile, subject="CN=test", email=order.holder.email, public_key_der=b"k",
                       not_before=end - timedelta(days=1000), not_after=end, order_id=order.id)
    session.add(cert)
    session.flush()
    order.state, order.certificate_id = OrderState.DELIVERED, cert.id
    session.flush()
    return cert


def _dossier(session: Session, vault: DocumentVault, scene: Scene, order: Order) -> list[Document]:
    return [row.document for row in fill_dossier(session, vault, scene.operator, order)]


def test_purge_deletes_files_only_after_7_years_past_the_last_certificate(
        db_session: Session, archive: DocumentVault) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    documents = _dossier(db_session, archive, scene, order)
    accept_dossier(db_session, scene.operator, order)
    _deliver(db_session, order, date(2029, 5, 20))
    end = retention_end(date(2029, 5, 20))
    assert end == date(2036, 5, 20)

    kept = purge_documents(db_session, archive, end, actor="test")
    assert not {i.document_id for i in kept.purged} & {d.id for d in documents}
    assert all(d.retain_until == end and d.purged_at is None for d in documents)
    assert len(vault_files(archive)) == 5

    dry = purge_documents(db_session, archive, end + timedelta(days=1), dry_run=True, actor="test")
    assert {d.id for d in documents} <= {i.document_id for i in dry.purged}
    assert len(vault_files(archive)) == 5 and all(d.purged_at is None for d in documents)

    report = purge_documents(db_session, archive, end + timedelta(days=1), actor="test")
    assert {d.id for d in documents} <= {i.document_id for i in report.purged}
    assert vault_files(archive) == set() and all(d.purged_at is not None for d in documents)
    purges = db_session.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "document.purge"))
    assert {str(d.id) for d in documents} <= set(purges)
    row = order.documents[0]
    with pytest.raises(NotFound):
        read_dossier_document(db_session, scene.operator, archive, order.id, row.id)


def test_purge_keeps_live_orders_and_files_a_renewal_still_uses(db_session: Session,
                                                                 archive: DocumentVault) -> None:
    scene = make_scene(db_session)
    live = place_order(db_session, scene.operator, scene.commune)
    live_docs = _dossier(db_session, archive, scene, live)
    old = place_order(db_session, scene.operator, scene.commune)
    old_docs = _dossier(db_session, archive, scene, old)
    cert = _deliver(db_session, old, date(2020, 1, 1))
    renewal = place_order(db_session, scene.operator, scene.commune)
    renewal.renewal_of_id = cert.id  # the renewal may reuse the identity file: it is not over yet
    db_session.flush()
    far = date(2100, 1, 1)
    report = purge_documents(db_session, archive, far, actor="test")
    purged = {i.document_id for i in report.purged}
    assert not purged & {d.id for d in live_docs + old_docs}
    assert len(vault_files(archive)) == 10


def test_a_cancelled_order_without_certificate_is_kept_7_years_after_cancellation(
        db_session: Session, archive: DocumentVault) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    documents = _dossier(db_session, archive, scene, order)
    cancel_order(db_session, scene.operator, order.id, "Le porteur a quitté la collectivité.")
    end = retention_end(date.today())
    purge_documents(db_session, archive, end, actor="test")
    assert all(d.retain_until == end and d.purged_at is None for d in documents)
    purge_documents(db_session, archive, end + timedelta(days=1), actor="test")
    assert all(d.purged_at is not None for d in documents) and vault_files(archive) == set()


def test_documents_purge_command(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    documents = _dossier(db_session, pki.vault, scene, order)
    _deliver(db_session, order, date.today() - timedelta(days=8 * 366))
    db_session.commit()
    ids = {d.id for d in documents}

    dry = guichet(pki, "documents", "purge", "--dry-run")
    assert "would be purged" in dry.stdout and all(f"document {i} " in dry.stdout for i in ids)
    assert all(pki.vault.exists(d.vault_id) for d in documents)

    done = guichet(pki, "documents", "purge")
    assert all(f"document {i} " in done.stdout for i in ids), done.stdout + done.stderr
    assert not any(pki.vault.exists(d.vault_id) for d in documents)
    db_session.expire_all()
    assert all(db_session.get(Document, i).purged_at is not None for i in ids)  # type: ignore[union-attr]
    db_session.rollback()
