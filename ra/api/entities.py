"""Entities and their convention d'adhésion over the API (same services and scope as the screens)."""

from __future__ import annotations

from typing import Any

from flask import Response

from ra.api import operation
from ra.api.params import (
    BINARY, PAGE, REJECTION, form_date, form_file, iso, page_json, page_schema, query_enum, query_text,
)
from ra.blueprints.common import attachment
from ra.instance import current_instance
from ra.models import Convention, ConventionStatus, Document, Entity, EntityKind, EntityStatus, StaffAccount
from ra.pagination import paginate
from ra.services import entities as service
from ra.web import db

KIND = {"type": "string", "enum": [str(k) for k in EntityKind]}
STATUS = {"type": "string", "enum": [str(s) for s in EntityStatus]}
CONVENTION = {"type": "object", "required": ["entity_id", "status", "signed_on"], "properties": {
    "entity_id": {"type": "integer"},
    "status": {"type": "string", "enum": [str(s) for s in ConventionStatus]},
    "signed_on": {"type": "string", "format": "date"},
    "media_type": {"type": ["string", "null"]}, "size": {"type": ["integer", "null"]},
    "submitted_at": {"type": ["string", "null"], "format": "date-time"},
    "decided_at": {"type": ["string", "null"], "format": "date-time"},
    "decision_note": {"type": ["string", "null"], "description": "why it was rejected"}}}
ENTITY = {"type": "object", "required": ["id", "name", "kind", "siren", "departement", "status"], "properties": {
    "id": {"type": "integer"}, "name": {"type": "string", "description": "official name (certificate O)"},
    "kind": KIND, "siren": {"type": "string"}, "siret": {"type": ["string", "null"]},
    "departement": {"type": "string"}, "parent_id": {"type": ["integer", "null"]}, "status": STATUS,
    "created_at": {"type": "string", "format": "date-time"},
    "convention": {"oneOf": [CONVENTION, {"type": "null"}]}}}
_FIELDS = {
    "name": {"type": "string", "maxLength": 200}, "kind": KIND,
    "siren": {"type": "string", "maxLength": 20, "description": "9 digits, Luhn key"},
    "siret": {"type": ["string", "null"], "maxLength": 30, "description": "14 digits, starts with the SIREN"},
    "departement": {"type": "string", "maxLength": 3}, "parent_id": {"type": ["integer", "null"]},
    "status": STATUS}
NEW_ENTITY = {"type": "object", "required": ["name", "kind", "siren", "departement"],
              "additionalProperties": False, "properties": _FIELDS}
ENTITY_CHANGES = {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": _FIELDS,
                  "description": "only the fields to change"}
CONVENTION_FORM = {"type": "object", "required": ["file", "signed_on"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "the signed convention (PDF, JPEG, PNG)"},
    "signed_on": {"type": "string", "format": "date"}}}


def convention_json(convention: Convention) -> dict[str, Any]:
    document = db().get(Document, convention.document_id)
    return {"entity_id": convention.entity_id, "status": str(convention.status), "signed_on": iso(convention.signed_on),
            "media_type": document.media_type if document else None, "size": document.size if document else None,
            "submitted_at": iso(document.uploaded_at) if document else None,
            "decided_at": iso(convention.decided_at), "decision_note": convention.decision_note}


def entity_json(entity: Entity) -> dict[str, Any]:
    return {"id": entity.id, "name": entity.name, "kind": str(entity.kind), "siren": entity.siren,
            "siret": entity.siret, "departement": entity.departement, "parent_id": entity.parent_id,
            "status": str(entity.status), "created_at": iso(entity.created_at),
            "convention": convention_json(entity.convention) if entity.convention else None}


@operation("/entities", "get", summary="Entities in your scope, by name", tag="entities",
           response=page_schema(ENTITY), errors=(400, 403),
           query=(("kind", KIND, "entity kind"), ("departement", {"type": "string"}, "département code, e.g. 22"),
                  ("q", {"type": "string"}, "part of the name or start of the SIREN"), PAGE))
def list_entities(actor: StaffAccount) -> dict[str, Any]:
    stmt = service.entity_list_query(actor, kind=query_enum("kind", EntityKind),
                                     departement=query_text("departement"), text=query_text("q"))
    return page_json(paginate(db(), stmt), entity_json)


@operation("/entities/{entity_id}", "get", summary="One entity in your scope, with its convention",
           tag="entities", response=ENTITY, errors=(403, 404))
def show_entity(actor: StaffAccount, entity_id: int) -> dict[str, Any]:
    return entity_json(service.get_entity(db(), actor, entity_id))


def _entity_input(values: dict[str, Any]) -> service.EntityInput:
    return service.EntityInput(
        name=values["name"], kind=values["kind"], siren=values["siren"], departement=values["departement"],
        siret=values.get("siret"), parent_id=values.get("parent_id"),
        status=values.get("status") or EntityStatus.ACTIVE)


@operation("/entities", "post", summary="Record an entity (CA operators)", tag="entities", status=201,
           request_schema=NEW_ENTITY, response=ENTITY, errors=(400, 403))
def create_entity(actor: StaffAccount, body: dict[str, Any]) -> dict[str, Any]:
    return entity_json(service.create_entity(db(), actor, _entity_input(body)))


@operation("/entities/{entity_id}", "patch", summary="Correct an entity (CA operators); every change is audited",
           tag="entities", request_schema=ENTITY_CHANGES, response=ENTITY, errors=(400, 403, 404))
def update_entity(actor: StaffAccount, body: dict[str, Any], entity_id: int) -> dict[str, Any]:
    entity = service.get_entity(db(), actor, entity_id)
    current = {"name": entity.name, "kind": str(entity.kind), "siren": entity.siren, "siret": entity.siret,
               "departement": entity.departement, "parent_id": entity.parent_id, "status": str(entity.status)}
    return entity_json(service.update_entity(db(), actor, entity_id, _entity_input({**current, **body})))


@operation("/entities/{entity_id}/convention", "post",
           summary="Submit the signed convention d'adhésion; it waits for a CA operator", tag="entities",
           status=201, content_type="multipart/form-data", request_schema=CONVENTION_FORM, response=CONVENTION,
           errors=(400, 403, 404, 409, 413))
def submit_convention(actor: StaffAccount, entity_id: int) -> dict[str, Any]:
    data, filename = form_file()
    signed_on = form_date("signed_on", "La date de signature", required=True)
    instance = current_instance()
    convention = service.submit_convention(db(), actor, entity_id, vault=instance.vault,
                                           territory=instance.settings.territory, data=data,
                                           filename=filename, signed_on=signed_on)
    return convention_json(convention)


@operation("/entities/{entity_id}/convention/approve", "post",
           summary="Approve a pending convention: the entity may order (CA operators)", tag="entities",
           response=CONVENTION, errors=(403, 404, 409))
def approve_convention(actor: StaffAccount, entity_id: int) -> dict[str, Any]:
    return convention_json(service.approve_convention(db(), actor, entity_id))


@operation("/entities/{entity_id}/convention/reject", "post",
           summary="Reject a pending convention, saying why (CA operators)", tag="entities",
           request_schema=REJECTION, response=CONVENTION, errors=(400, 403, 404, 409))
def reject_convention(actor: StaffAccount, body: dict[str, Any], entity_id: int) -> dict[str, Any]:
    return convention_json(service.reject_convention(db(), actor, entity_id, body["note"]))


@operation("/entities/{entity_id}/convention/content", "get",
           summary="The convention's file (the read is audited)", tag="entities", response=BINARY,
           errors=(403, 404))
def convention_content(actor: StaffAccount, entity_id: int) -> Response:
    document, data = service.read_convention_document(db(), actor, current_instance().vault, entity_id)
    return attachment(document, data)
