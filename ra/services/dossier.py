"""The dossier of an order: upload, review, audited reads, and the archive purge.

Replacing a piece: a new upload of a kind never edits the older rows; the latest row of a kind
is the current piece (``dossier_rules.current_documents``), the older ones stay, with their
review, as the dossier's history, and their files stay in the archive until the purge.

Archive purge: the files of a dossier are kept 7 years (``ra.documents.retention_end``) after
the last certificate of the file expires. The file of an order is its own certificates and
those of the renewals made from them (a renewal may reuse the identity file). A document is
purged when every order it belongs to, and every renewal of those, has ended (delivered or
cancelled) and that date has passed. An order cancelled before any certificate was issued is
kept 7 years after its cancellation (the date of its ``order.cancel`` audit event).
Conventions and designation letters are not dossier pieces and are never purged here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from ra import audit
from ra.db import utcnow
from ra.documents import retention_end
from ra.documents.vault import DocumentVault
from ra.errors import IllegalTransition, NotFound
from ra.labels import STATE_LABELS, label
from ra.models import (
    AuditEvent, Certificate, CertificateState, Document, DocumentKind, DossierDocument, Order,
    OrderState, ReviewStatus, StaffAccount,
)
from ra.permissions import Action
from ra.services.dossier_rules import (
    REQUIRED_KINDS, current_documents, date_problem, kind_label, missing_items, needs_date,
)
from ra.services.files import read_document, stored_upload
from ra.services.inputs import FieldErrors, optional_text, required_reason
from ra.services.orders import DOSSIER_OPEN, ENDED, order_for, refresh_dossier_state

__all__ = [
    "DossierLine", "PurgeItem", "PurgeReport", "dossier_lines", "missing_items", "purge_documents",
    "read_dossier_document", "retention_date", "review_document", "upload_document",
]


@dataclass(frozen=True)
class DossierLine:
    """One required piece as the order page shows it."""

    kind: DocumentKind
    label: str
    needs_date: bool
    current: DossierDocument | None
    history: list[DossierDocument]  # replaced rows, newest first

    @property
    def status(self) -> str:
        """missing / pending / accepted / rejected."""
        return "missing" if self.current is None else str(self.current.review_status)


def dossier_lines(order: Order) -> list[DossierLine]:
    current = current_documents(order)
    lines = []
    for kind in REQUIRED_KINDS:
        older = [row for row in order.documents if row.kind == kind and row is not current.get(kind)]
        lines.append(DossierLine(kind, kind_label(kind, order.entity), needs_date(kind, order.entity),
                                 current.get(kind), list(reversed(older))))
    return lines


def _open_dossier(order: Order, what: str) -> None:
    if order.state not in DOSSIER_OPEN:
        raise IllegalTransition(f"Une commande à l'état « {label(STATE_LABELS, order.state)} » ne permet "
                                f"pas l'action « {what} » : son dossier est clos.")


def upload_document(
    session: Session, actor: StaffAccount, order_id: int, *, vault: DocumentVault, kind: str,
    data: bytes, filename: str | None, document_date: date | None = None, today: date | None = None,
) -> DossierDocument:
    """Add a piece to the dossier (it becomes the current one of its kind), then re-check completeness."""
    order = order_for(session, actor, order_id, Action.EDIT_ORDERS)
    _open_dossier(order, "déposer une pièce")
    if kind not in set(DocumentKind):
        raise FieldErrors({"kind": "Type de pièce inconnu."})
    doc_kind = DocumentKind(kind)
    problem = date_problem(doc_kind, document_date, order, today=today or date.today())
    if problem:
        raise FieldErrors({"document_date": problem})
    replaced = current_documents(order).get(doc_kind)
    with stored_upload(session, vault, actor, data, filename) as document:
        row = DossierDocument(order_id=order.id, kind=doc_kind, document_id=document.id,
                              document_date=document_date, review_status=ReviewStatus.PENDING)
        order.documents.append(row)
        session.flush()
        audit.record(session, actor=actor.email, action="document.upload", object_type="dossier_document",
                     object_id=row.id, details={
                         "order": order.reference, "kind": str(doc_kind), "document_id": document.id,
                         "sha256": document.sha256, "size": document.size, "media_type": document.media_type,
                         "document_date": document_date, "replaces": replaced.id if replaced else None})
        refresh_dossier_state(session, order, actor=actor.email)
    return row


def _dossier_row(session: Session, order: Order, row_id: int) -> DossierDocument:
    row = session.get(DossierDocument, row_id)
    if row is None or row.order_id != order.id:
        raise NotFound("Pièce introuvable.")
    return row


def review_document(
    session: Session, actor: StaffAccount, order_id: int, row_id: int, *, accept: bool, note: str | None = None,
) -> DossierDocument:
    """A CA operator accepts or rejects the current piece of a kind (a rejection says why)."""
    order = order_for(session, actor, order_id, Action.APPROVE_DESIGNATIONS)
    row = _dossier_row(session, order, row_id)
    _open_dossier(order, "examiner une pièce")
    if current_documents(order).get(DocumentKind(row.kind)) is not row:
        raise IllegalTransition("Cette pièce a été remplacée : examinez la plus récente.")
    note = optional_text(note) if accept else required_reason(note, field="note", what="Le motif du refus")
    if note and len(note) > 500:
        raise FieldErrors({"note": "La note compte plus de 500 caractères."})
    row.review_status = ReviewStatus.ACCEPTED if accept else ReviewStatus.REJECTED
    row.review_note, row.reviewed_by_id, row.reviewed_at = note, actor.id, utcnow()
    session.flush()
    audit.record(session, actor=actor.email, action="document.accept" if accept else "document.reject",
                 object_type="dossier_document", object_id=row.id,
                 details={"order": order.reference, "kind": str(row.kind), "note": note})
    refresh_dossier_state(session, order, actor=actor.email)
    return row


def read_dossier_document(
    session: Session, actor: StaffAccount, vault: DocumentVault, order_id: int, row_id: int,
) -> tuple[Document, bytes]:
    """The file of a piece, for someone who may see the order; the read is audited."""
    order = order_for(session, actor, order_id, Action.VIEW_ORDERS)
    row = _dossier_row(session, order, row_id)
    data = read_document(session, vault, actor, row.document, details={
        "order": order.reference, "kind": str(row.kind), "dossier_document_id": row.id})
    return row.document, data


# --- archive purge ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PurgeItem:
    document_id: int
    retain_until: date
    orders: tuple[str, ...]


@dataclass
class PurgeReport:
    dry_run: bool
    purged: list[PurgeItem] = field(default_factory=list)
    kept: int = 0  # documents of ended orders still within their retention period


def _order_certificates_end(session: Session, order: Order) -> date | None:
    last = session.scalar(select(func.max(Certificate.not_after)).where(
        Certificate.state == CertificateState.ISSUED,
        or_(Certificate.order_id == order.id, Certificate.id == order.certificate_id)))
    return last.date() if last else None


def retention_date(session: Session, order: Order) -> date | None:
    """The day after which the order's dossier may be purged; None while its file is still live."""
    ends: list[date] = []
    pending, seen = [order], set()
    while pending:
        current = pending.pop()
        if current.id in seen:
            continue
        seen.add(current.id)
        if current.state not in ENDED:
            return None
        expiry = _order_certificates_end(session, current)
        if expiry is not None:
            ends.append(retention_end(expiry))
            cert_ids = select(Certificate.id).where(or_(Certificate.order_id == current.id,
                                                        Certificate.id == current.certificate_id))
            pending.extend(session.scalars(select(Order).where(Order.renewal_of_id.in_(cert_ids))))
        elif current.state == OrderState.CANCELLED:
            cancelled = session.scalar(select(func.max(AuditEvent.at)).where(
                AuditEvent.object_type == "order",  # rows written before 2026-11 name the order by id
                AuditEvent.object_id.in_([current.reference, str(current.id)]),
                AuditEvent.action == "order.cancel"))
            ends.append(retention_end((cancelled or current.created_at).date()))
        else:
            return None  # delivered without a known certificate: keep it
    return max(ends) if ends else None


def purge_documents(session: Session, vault: DocumentVault, today: date, *, dry_run: bool = False,
                    actor: str = "system") -> PurgeReport:
    """Delete the files of dossier pieces past their retention period; mark and audit each one."""
    live_order = exists(select(DossierDocument.id).join(Order, DossierDocument.order_id == Order.id).where(
        DossierDocument.document_id == Document.id, Order.state.not_in(list(ENDED))))
    candidates = session.scalars(
        select(Document).where(Document.purged_at.is_(None))
        .where(Document.id.in_(select(DossierDocument.document_id)), ~live_order).order_by(Document.id))
    report, cache = PurgeReport(dry_run), dict[int, date | None]()
    for document in candidates.all():
        orders = list(session.scalars(select(Order).join(DossierDocument, DossierDocument.order_id == Order.id)
                                      .where(DossierDocument.document_id == document.id).distinct()))
        for o in orders:
            if o.id not in cache:
                cache[o.id] = retention_date(session, o)
        dates = [cache[o.id] for o in orders]
        if any(d is None for d in dates):
            continue
        until = max(d for d in dates if d is not None)
        if not dry_run:
            document.retain_until = until
        if until >= today:
            report.kept += 1
            continue
        report.purged.append(PurgeItem(document.id, until, tuple(sorted(o.reference for o in orders))))
        if not dry_run:
            document.purged_at = utcnow()
            audit.record(session, actor=actor, action="document.purge", object_type="document",
                         object_id=document.id, details={"retain_until": until, "orders": list(
                             report.purged[-1].orders), "sha256": document.sha256})
    session.flush()
    if not dry_run:  # the rows and their audit are written: now the files go
        for item in report.purged:
            vault.delete(session.get(Document, item.document_id).vault_id)  # type: ignore[union-attr]
    return report
