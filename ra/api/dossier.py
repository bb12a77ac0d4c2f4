"""The dossier of an order over the API: upload, list, review and audited reads of its pieces."""

from __future__ import annotations

from typing import Any

from flask import Response

from ra.api import operation
from ra.api.params import BINARY, form_choice, form_date, form_file, iso
from ra.blueprints.common import attachment
from ra.instance import current_instance
from ra.models import DocumentKind, DossierDocument, Order, ReviewStatus, StaffAccount
from ra.services import dossier as service
from ra.services.dossier_rules import current_documents, kind_label
from ra.services.orders import order_for
from ra.web import db

KIND = {"type": "string", "enum": [str(k) for k in DocumentKind]}
REVIEW = {"type": "string", "enum": [str(s) for s in ReviewStatus]}
DOCUMENT = {"type": "object", "required": ["id", "order_id", "kind", "review_status"], "properties": {
    "id": {"type": "integer", "description": "the piece's id (document_id in the paths)"},
    "order_id": {"type": "integer"}, "kind": KIND, "label": {"type": "string"},
    "document_date": {"type": ["string", "null"], "format": "date", "description": "date on the paper"},
    "current": {"type": "boolean", "description": "false once replaced by a newer piece of its kind"},
    "review_status": REVIEW, "review_note": {"type": ["string", "null"]},
    "reviewed_at": {"type": ["string", "null"], "format": "date-time"},
    "uploaded_at": {"type": "string", "format": "date-time"},
    "media_type": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"},
    "original_name": {"type": "string"}, "purged": {"type": "boolean"}}}
DOSSIER_LINE = {"type": "object", "required": ["kind", "label", "status"], "properties": {
    "kind": KIND, "label": {"type": "string"}, "needs_date": {"type": "boolean"},
    "status": {"type": "string", "enum": ["missing", *REVIEW["enum"]]},
    "current": {"oneOf": [DOCUMENT, {"type": "null"}]},
    "history": {"type": "array", "items": DOCUMENT, "description": "replaced pieces, newest first"}}}
UPLOAD_FORM = {"type": "object", "required": ["kind", "file"], "properties": {
    "kind": KIND, "file": {"type": "string", "format": "binary", "description": "PDF, JPEG or PNG, 10 MB at most"},
    "document_date": {"type": "string", "format": "date",
                      "description": "required for the signed request (and a company's Kbis)"}}}
REVIEW_BODY = {"type": "object", "required": ["status"], "additionalProperties": False, "properties": {
    "status": {"type": "string", "enum": [str(ReviewStatus.ACCEPTED), str(ReviewStatus.REJECTED)]},
    "note": {"type": "string", "maxLength": 500, "description": "required for a rejection"}}}


def document_json(row: DossierDocument, *, current: bool) -> dict[str, Any]:
    stored = row.document
    return {"id": row.id, "order_id": row.order_id, "kind": str(row.kind), "document_date": iso(row.document_date),
            "current": current, "review_status": str(row.review_status), "review_note": row.review_note,
            "reviewed_at": iso(row.reviewed_at), "uploaded_at": iso(row.created_at),
            "media_type": stored.media_type, "size": stored.size, "sha256": stored.sha256,
            "original_name": stored.original_name, "purged": stored.purged_at is not None}


def dossier_json(lines: list[service.DossierLine]) -> list[dict[str, Any]]:
    return [{"kind": str(line.kind), "label": line.label, "needs_date": line.needs_date, "status": line.status,
             "current": document_json(line.current, current=True) if line.current else None,
             "history": [document_json(row, current=False) for row in line.history]} for line in lines]


def _row_json(row: DossierDocument) -> dict[str, Any]:
    """A piece just written, with its label and whether it is the current one of its kind."""
    order = db().get_one(Order, row.order_id)
    current = current_documents(order).get(DocumentKind(row.kind)) is row
    return {**document_json(row, current=current), "label": kind_label(row.kind, order.entity)}


@operation("/orders/{order_id}/documents", "get", summary="Every piece of the dossier, replaced ones included",
           tag="documents", response={"type": "array", "items": DOCUMENT}, errors=(403, 404))
def list_documents(actor: StaffAccount, order_id: int) -> list[dict[str, Any]]:
    order = order_for(db(), actor, order_id)
    current = {row.id for row in current_documents(order).values()}
    return [{**document_json(row, current=row.id in current), "label": kind_label(row.kind, order.entity)}
            for row in order.documents]


@operation("/orders/{order_id}/documents", "post",
           summary="Upload a piece (type checked by content); the order's state follows its completeness",
           tag="documents", status=201, content_type="multipart/form-data", request_schema=UPLOAD_FORM,
           response=DOCUMENT, errors=(400, 403, 404, 409, 413))
def upload_document(actor: StaffAccount, order_id: int) -> dict[str, Any]:
    kind = form_choice("kind", DocumentKind, "Type de pièce")
    data, filename = form_file()
    document_date = form_date("document_date", "La date du document", required=False)
    row = service.upload_document(db(), actor, order_id, vault=current_instance().vault, kind=kind, data=data,
                                  filename=filename, document_date=document_date)
    return _row_json(row)


@operation("/orders/{order_id}/documents/{document_id}/review", "post",
           summary="Accept or reject the current piece of a kind (CA operators)", tag="documents",
           request_schema=REVIEW_BODY, response=DOCUMENT, errors=(400, 403, 404, 409))
def review_document(actor: StaffAccount, body: dict[str, Any], order_id: int, document_id: int) -> dict[str, Any]:
    row = service.review_document(db(), actor, order_id, document_id,
                                  accept=body["status"] == ReviewStatus.ACCEPTED, note=body.get("note"))
    return _row_json(row)


@operation("/orders/{order_id}/documents/{document_id}/content", "get",
           summary="The piece's file, decrypted (the read is audited; never cached)", tag="documents",
           response=BINARY, errors=(403, 404))
def document_content(actor: StaffAccount, order_id: int, document_id: int) -> Response:
    document, data = service.read_dossier_document(db(), actor, current_instance().vault, order_id, document_id)
    return attachment(document, data)
