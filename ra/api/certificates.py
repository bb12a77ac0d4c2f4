"""Certificates and revocation requests over the API (same services, same scope as the screens)."""

from __future__ import annotations

from typing import Any

from flask import request

from ra.api import operation
from ra.api.params import PAGE, REJECTION, iso, page_json, page_schema
from ra.db import utcnow
from ra.models import Certificate, RevocationRequest, StaffAccount
from ra.pagination import paginate
from ra.permissions import Action, require
from ra.services import certificates as certs
from ra.services import revocation_requests as service
from ra.web import db

STATUS = {"type": "string", "enum": list(certs.STATUSES)}
CERTIFICATE = {"type": "object", "required": ["serial", "status", "subject"], "properties": {
    "serial": {"type": "string", "description": "lowercase hexadecimal"},
    "status": {"type": "string", "enum": ["valid", "revoked", "expired"]},
    "subject": {"type": "string"}, "email": {"type": "string"}, "profile": {"type": "string"},
    "not_before": {"type": "string", "format": "date-time"}, "not_after": {"type": "string", "format": "date-time"},
    "entity_id": {"type": ["integer", "null"]}, "order_id": {"type": ["integer", "null"]},
    "revoked_at": {"type": ["string", "null"], "format": "date-time"},
    "revocation_reason": {"type": ["string", "null"], "description": "RFC 5280 reason name"}}}
CERTIFICATE_DETAIL = {**CERTIFICATE, "properties": {**CERTIFICATE["properties"],
                                                    "pem": {"type": "string", "description": "the certificate, PEM"}}}
REQUEST = {"type": "object", "required": ["id", "certificate_serial", "reason", "status"], "properties": {
    "id": {"type": "integer"}, "certificate_serial": {"type": "string"},
    "reason": {"type": "string", "description": "RFC 5280 reason name"},
    "status": {"type": "string", "enum": ["pending", "processed", "rejected"]},
    "comment": {"type": ["string", "null"]}, "requested_by_holder": {"type": "boolean"},
    "created_at": {"type": "string", "format": "date-time"},
    "processed_at": {"type": ["string", "null"], "format": "date-time"}}}
NEW_REQUEST = {"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {
    "reason": {"type": "string", "enum": [c.key for c in service.REASON_CHOICES],
               "description": "tokenLost (lost or stolen token) is recorded as keyCompromise"},
    "comment": {"type": "string", "maxLength": service.MAX_COMMENT},
    "revoke_now": {"type": "boolean", "description": "CA operators only: revoke at once"}}}


def _reason_name(code: int | None) -> str | None:
    return service.rfc_name(code) if code is not None else None


def certificate_json(cert: Certificate, entity_id: int | None) -> dict[str, Any]:
    return {"serial": cert.serial, "status": cert.status(utcnow()), "subject": cert.subject, "email": cert.email,
            "profile": cert.profile, "not_before": iso(cert.not_before), "not_after": iso(cert.not_after),
            "entity_id": entity_id, "order_id": cert.order_id, "revoked_at": iso(cert.revoked_at),
            "revocation_reason": _reason_name(cert.revocation_reason) if cert.revoked_at else None}


def request_json(item: RevocationRequest, serial: str) -> dict[str, Any]:
    return {"id": item.id, "certificate_serial": serial, "reason": _reason_name(item.reason),
            "status": str(item.status), "comment": item.comment, "requested_by_holder": item.requested_by_holder,
            "created_at": iso(item.created_at), "processed_at": iso(item.processed_at)}


@operation("/certificates", "get", summary="Issued certificates in your scope, newest first", tag="certificates",
           response=page_schema(CERTIFICATE), errors=(400, 403),
           query=(("status", STATUS, "valid, revoked or expired"),
                  ("entity_id", {"type": "integer"}, "certificates ordered for this entity"),
                  ("q", {"type": "string"}, "part of the subject or start of the serial"), PAGE))
def list_certificates(actor: StaffAccount) -> dict[str, Any]:
    args = request.args
    filters = certs.CertificateFilter.parse(args.get("status"), args.get("entity_id"), args.get("q"))
    page = paginate(db(), certs.list_certificates(actor, filters))
    owners = certs.entities_of(db(), page.items)
    return page_json(page, lambda c: certificate_json(c, owners[c.id].id if c.id in owners else None))


@operation("/certificates/{serial}", "get", summary="One certificate in your scope, with its PEM",
           tag="certificates", response=CERTIFICATE_DETAIL, errors=(403, 404))
def show_certificate(actor: StaffAccount, serial: str) -> dict[str, Any]:
    cert = certs.get_certificate(db(), actor, serial)
    order = certs.order_of(db(), cert)
    return {**certificate_json(cert, order.entity_id if order else None), "pem": certs.pem(cert)}


@operation("/certificates/{serial}/revocation-requests", "post", summary="Ask for the revocation of a certificate",
           tag="certificates", status=201, request_schema=NEW_REQUEST, response=REQUEST, errors=(400, 403, 404, 409))
def create_revocation_request(actor: StaffAccount, body: dict[str, Any], serial: str) -> dict[str, Any]:
    created = service.request_revocation(db(), actor, serial, reason_key=body["reason"], comment=body.get("comment"),
                                         revoke_now=bool(body.get("revoke_now")))
    return request_json(created, _serial_of(created))


@operation("/revocation-requests", "get", summary="Revocation requests (CA operators)", tag="certificates",
           response={"type": "array", "items": REQUEST}, errors=(400, 403),
           query=(("status", {"type": "string", "enum": ["pending", "processed", "rejected"]}, "filter by state"),
                  PAGE))
def list_revocation_requests(actor: StaffAccount) -> list[dict[str, Any]]:
    require(actor, Action.PROCESS_REVOCATIONS)
    page = paginate(db(), service.list_requests(actor, request.args.get("status") or None))
    serials = {cert_id: c.serial for cert_id, c in service.certificates_of(db(), page.items).items()}
    return [request_json(r, serials.get(r.certificate_id, "")) for r in page.items]


def _serial_of(item: RevocationRequest) -> str:
    cert = db().get(Certificate, item.certificate_id)
    return cert.serial if cert else ""


@operation("/revocation-requests/{request_id}/approve", "post", summary="Approve: the certificate is revoked",
           tag="certificates", response=REQUEST, errors=(403, 404, 409))
def approve_revocation_request(actor: StaffAccount, request_id: int) -> dict[str, Any]:
    done = service.approve_request(db(), actor, request_id)
    return request_json(done, _serial_of(done))


@operation("/revocation-requests/{request_id}/reject", "post",
           summary="Reject with a note: the certificate stays valid",
           tag="certificates", request_schema=REJECTION, response=REQUEST, errors=(400, 403, 404, 409))
def reject_revocation_request(actor: StaffAccount, body: dict[str, Any], request_id: int) -> dict[str, Any]:
    done = service.reject_request(db(), actor, request_id, body["note"])
    return request_json(done, _serial_of(done))
