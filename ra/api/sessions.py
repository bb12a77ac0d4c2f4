"""Delivery sessions over the API: planning, their orders, absence and the face-to-face check.

Only the session's operator (an MC or AED) changes a session; CA staff read them. The identity
check's document number goes in encrypted and never comes back out: no response carries it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ra.api import operation
from ra.api.params import PAGE, iso, page_json, page_schema, parse_date, query_date, query_enum, query_text
from ra.errors import InvalidInput
from ra.instance import current_instance
from ra.models import DeliverySession, IdDocumentType, IdentityCheck, Order, OrderState, SessionStatus, StaffAccount
from ra.pagination import paginate
from ra.services import identity
from ra.services import sessions as service
from ra.services.session_invoice import SessionInvoice, invoice_or_problem
from ra.web import cipher, db

_DATE = {"type": "string", "format": "date"}
STATUS = {"type": "string", "enum": [str(s) for s in SessionStatus]}
SESSION = {"type": "object", "required": ["id", "session_date", "site_address", "status"], "properties": {
    "id": {"type": "integer"}, "session_date": _DATE, "site_address": {"type": "string"},
    "on_site": {"type": "boolean", "description": "at the entity (on-site fee) rather than at a CCI"},
    "operator_id": {"type": "integer"}, "operator_name": {"type": "string"}, "status": STATUS,
    "created_at": {"type": "string", "format": "date-time"},
    "order_count": {"type": "integer", "description": "orders held, cancelled ones left out"}}}
CHECK = {"type": "object", "required": ["id", "order_id", "session_id", "document_type"], "properties": {
    "id": {"type": "integer"}, "order_id": {"type": "integer"}, "session_id": {"type": "integer"},
    "operator_id": {"type": "integer"},
    "document_type": {"type": "string", "enum": [str(t) for t in IdDocumentType]},
    "document_expiry": _DATE, "issuing_country": {"type": "string", "description": "ISO 3166-1 alpha-3"},
    "names_match": {"type": "boolean"}, "checked_at": {"type": "string", "format": "date-time"},
    "order_state": {"type": "string", "enum": [str(s) for s in OrderState],
                    "description": "the order's state once the check is recorded (in the POST answer)"}},
    "description": "the document number is stored encrypted and never returned"}
SESSION_ORDER = {"type": "object", "required": ["order_id", "reference", "state"], "properties": {
    "order_id": {"type": "integer"}, "reference": {"type": "string"},
    "state": {"type": "string", "enum": [str(s) for s in OrderState]},
    "session_id": {"type": ["integer", "null"]}, "absent": {"type": "boolean"},
    "holder": {"type": "string", "description": "Given names SURNAME"}, "entity_id": {"type": "integer"},
    "entity_name": {"type": "string"}, "identity_check": {"oneOf": [CHECK, {"type": "null"}]},
    "certificate_serial": {"type": ["string", "null"]}}}
_CENTS = {"type": "integer", "description": "euro cents"}
TOTALS = {"type": "object", "properties": {"ht_cents": _CENTS, "vat_cents": _CENTS, "ttc_cents": _CENTS}}
INVOICE = {"type": "object", "required": ["entities", "totals"], "properties": {
    "entities": {"type": "array", "items": {"type": "object", "properties": {
        "entity_id": {"type": "integer"}, "entity_name": {"type": "string"},
        "certificates": {"type": "integer"}, "totals": TOTALS,
        "lines": {"type": "array", "items": {"type": "object", "properties": {
            "label": {"type": "string"}, "quantity": {"type": "integer"}, "unit_cents": _CENTS,
            "total_cents": _CENTS, "total_ttc_cents": _CENTS}}}}}},
    "totals": TOTALS}}
SESSION_DETAIL = {**SESSION, "properties": {
    **SESSION["properties"],
    "orders": {"type": "array", "items": SESSION_ORDER, "description": "the orders you may see"},
    "invoice": {"oneOf": [INVOICE, {"type": "null"}],
                "description": "BPU invoice lines per entity of your scope (face-to-face done)"},
    "invoice_error": {"type": ["string", "null"]}}}
_SESSION_FIELDS = {"session_date": _DATE, "site_address": {"type": "string", "maxLength": 300},
                   "on_site": {"type": "boolean"}}
NEW_SESSION = {"type": "object", "required": ["session_date", "site_address"], "additionalProperties": False,
               "properties": _SESSION_FIELDS}
SESSION_CHANGES = {"type": "object", "minProperties": 1, "additionalProperties": False,
                   "properties": _SESSION_FIELDS}
ORDER_IDS = {"type": "object", "required": ["order_ids"], "additionalProperties": False, "properties": {
    "order_ids": {"type": "array", "minItems": 1, "maxItems": 200, "uniqueItems": True,
                  "items": {"type": "integer"}}}}
MOVE = {"type": "object", "required": ["target_session_id"], "additionalProperties": False,
        "properties": {"target_session_id": {"type": "integer"}}}
EVIDENCE = {"type": "object", "additionalProperties": False,
            "required": ["document_type", "document_number", "document_expiry", "issuing_country", "names_match"],
            "properties": {
                "document_type": {"type": "string", "enum": [str(t) for t in IdDocumentType]},
                "document_number": {"writeOnly": True, "description": "string of 4 to 20 letters or digits "
                                    "(spaces ignored); stored encrypted, never returned nor repeated in errors"},
                "document_expiry": _DATE,
                "issuing_country": {"type": "string", "pattern": "^[A-Za-z]{3}$",
                                    "description": "ISO 3166-1 alpha-3, e.g. FRA"},
                "names_match": {"type": "boolean", "description": "names on the ID match the order"},
                "in_person": {"type": "boolean", "default": True,
                              "description": "the holder stands before you (false is refused)"}}}


def session_json(delivery: DeliverySession, count: int | None = None) -> dict[str, Any]:
    if count is None:
        count = service.order_counts(db(), [delivery.id]).get(delivery.id, 0)
    return {"id": delivery.id, "session_date": iso(delivery.session_date), "site_address": delivery.site_address,
            "on_site": bool(delivery.on_site), "operator_id": delivery.operator_id,
            "operator_name": delivery.operator.full_name, "status": str(delivery.status),
            "created_at": iso(delivery.created_at), "order_count": count}


def check_json(check: IdentityCheck) -> dict[str, Any]:
    """The face-to-face record, WITHOUT its document number."""
    return {"id": check.id, "order_id": check.order_id, "session_id": check.session_id,
            "operator_id": check.operator_id, "document_type": str(check.document_type),
            "document_expiry": iso(check.document_expiry), "issuing_country": check.issuing_country,
            "names_match": bool(check.names_match), "checked_at": iso(check.checked_at)}


def session_order_json(order: Order, check: IdentityCheck | None = None, serial: str | None = None) -> dict[str, Any]:
    return {"order_id": order.id, "reference": order.reference, "state": str(order.state),
            "session_id": order.delivery_session_id, "absent": bool(order.absent),
            "holder": order.holder.display_name, "entity_id": order.entity_id, "entity_name": order.entity.name,
            "identity_check": check_json(check) if check else None, "certificate_serial": serial}


def invoice_json(invoice: SessionInvoice) -> dict[str, Any]:
    def totals(t: Any) -> dict[str, int]:
        return {"ht_cents": t.ht_cents, "vat_cents": t.vat_cents, "ttc_cents": t.ttc_cents}

    return {"entities": [{"entity_id": e.entity_id, "entity_name": e.entity_name, "certificates": e.certificates,
                          "totals": totals(e.totals),
                          "lines": [{"label": line.label_fr, "quantity": line.quantity, "unit_cents": line.unit_cents,
                                     "total_cents": line.total_cents, "total_ttc_cents": line.total_ttc_cents}
                                    for line in e.lines]} for e in invoice.entities],
            "totals": totals(invoice.totals)}


def session_detail_json(actor: StaffAccount, delivery: DeliverySession) -> dict[str, Any]:
    rows = identity.day_rows(db(), actor, delivery)
    invoice, invoice_error = invoice_or_problem(db(), actor, delivery, current_instance().settings.bpu_path)
    return {**session_json(delivery), "invoice": invoice and invoice_json(invoice), "invoice_error": invoice_error,
            "orders": [session_order_json(r.order, r.check, r.certificate_serial) for r in rows]}


@operation("/sessions", "get", summary="Delivery sessions you operate or that hold orders of your scope",
           tag="sessions", response=page_schema(SESSION), errors=(400,),
           query=(("status", STATUS, "session status"), ("date_from", _DATE, "on or after this day"),
                  ("date_to", _DATE, "on or before this day"), ("q", {"type": "string"}, "part of the address"),
                  PAGE))
def list_sessions(actor: StaffAccount) -> dict[str, Any]:
    stmt = service.sessions_query(actor, status=query_enum("status", SessionStatus), date_from=query_date("date_from"),
                                  date_to=query_date("date_to"), text=query_text("q"))
    page = paginate(db(), stmt)
    counts = service.order_counts(db(), [s.id for s in page.items])
    return page_json(page, lambda s: session_json(s, counts.get(s.id, 0)))


@operation("/sessions/{session_id}", "get", summary="A session, its orders and its invoice lines",
           tag="sessions", response=SESSION_DETAIL, errors=(404,))
def show_session(actor: StaffAccount, session_id: int) -> dict[str, Any]:
    return session_detail_json(actor, service.get_session(db(), actor, session_id))


def _day(body: dict[str, Any], name: str) -> date:
    return parse_date(body[name], f"Champ {name}")


@operation("/sessions", "post", summary="Plan a session that you operate (MC, AED)", tag="sessions", status=201,
           request_schema=NEW_SESSION, response=SESSION_DETAIL, errors=(400, 403))
def create_session(actor: StaffAccount, body: dict[str, Any]) -> dict[str, Any]:
    delivery = service.create_session(db(), actor, session_date=_day(body, "session_date"),
                                      site_address=body["site_address"], on_site=body.get("on_site", True))
    return session_detail_json(actor, delivery)


@operation("/sessions/{session_id}", "patch", summary="Change the date, site or on-site flag before any face-to-face",
           tag="sessions", request_schema=SESSION_CHANGES, response=SESSION_DETAIL, errors=(400, 403, 404, 409))
def update_session(actor: StaffAccount, body: dict[str, Any], session_id: int) -> dict[str, Any]:
    delivery = service.get_session(db(), actor, session_id)
    day = _day(body, "session_date") if "session_date" in body else delivery.session_date
    delivery = service.update_session(db(), actor, session_id, session_date=day,
                                      site_address=body.get("site_address", delivery.site_address),
                                      on_site=body.get("on_site", delivery.on_site))
    return session_detail_json(actor, delivery)


@operation("/sessions/{session_id}/cancel", "post", summary="Cancel a planned session; its orders go back to approved",
           tag="sessions", response=SESSION_DETAIL, errors=(403, 404, 409))
def cancel_session(actor: StaffAccount, session_id: int) -> dict[str, Any]:
    return session_detail_json(actor, service.cancel_session(db(), actor, session_id))


@operation("/sessions/{session_id}/close", "post",
           summary="Close the session from its day on; holders not seen go back to approved",
           tag="sessions", response=SESSION_DETAIL, errors=(403, 404, 409))
def close_session(actor: StaffAccount, session_id: int) -> dict[str, Any]:
    return session_detail_json(actor, service.close_session(db(), actor, session_id))


@operation("/sessions/{session_id}/orders", "post", summary="Schedule approved orders of your scope at the session",
           tag="sessions", request_schema=ORDER_IDS, response={"type": "array", "items": SESSION_ORDER},
           errors=(400, 403, 404, 409))
def add_orders(actor: StaffAccount, body: dict[str, Any], session_id: int) -> list[dict[str, Any]]:
    return [session_order_json(o) for o in service.add_orders(db(), actor, session_id, body["order_ids"])]


@operation("/sessions/{session_id}/orders/{order_id}", "delete",
           summary="Take an order out of the session before its face-to-face (it is approved again)",
           tag="sessions", response=SESSION_ORDER, errors=(403, 404, 409))
def remove_order(actor: StaffAccount, session_id: int, order_id: int) -> dict[str, Any]:
    return session_order_json(service.remove_order(db(), actor, session_id, order_id))


@operation("/sessions/{session_id}/orders/{order_id}/move", "post",
           summary="Move an order not checked yet to another session you operate", tag="sessions",
           request_schema=MOVE, response=SESSION_ORDER, errors=(400, 403, 404, 409))
def move_order(actor: StaffAccount, body: dict[str, Any], session_id: int, order_id: int) -> dict[str, Any]:
    return session_order_json(service.move_order(db(), actor, session_id, order_id, body["target_session_id"]))


@operation("/sessions/{session_id}/orders/{order_id}/absent", "post",
           summary="The holder did not come: the order stays scheduled, flagged absent", tag="sessions",
           response=SESSION_ORDER, errors=(403, 404, 409))
def mark_absent(actor: StaffAccount, session_id: int, order_id: int) -> dict[str, Any]:
    return session_order_json(service.mark_absent(db(), actor, session_id, order_id))


@operation("/sessions/{session_id}/orders/{order_id}/identity-check", "post",
           summary="Record the face-to-face on the session's day: the order's identity is verified",
           tag="sessions", status=201, request_schema=EVIDENCE, response=CHECK, errors=(400, 403, 404, 409))
def record_identity_check(actor: StaffAccount, body: dict[str, Any], session_id: int, order_id: int) -> dict[str, Any]:
    number = body["document_number"]
    if not isinstance(number, str):  # checked here: a schema error message would repeat the number
        raise InvalidInput("Champ document_number : une chaîne de 4 à 20 lettres ou chiffres est attendue.")
    evidence = identity.IdentityEvidence(
        document_type=body["document_type"], document_number=number,
        document_expiry=_day(body, "document_expiry"), issuing_country=body["issuing_country"],
        names_match=body["names_match"], in_person=body.get("in_person", True))
    check = identity.record_identity_check(db(), actor, session_id, order_id, evidence, cipher=cipher())
    order = db().get_one(Order, order_id)
    return {**check_json(check), "order_state": str(order.state)}
