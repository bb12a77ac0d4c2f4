"""Orders over the API: list, detail with the dossier, creation, approval, cancellation."""

from __future__ import annotations

from typing import Any

from ca.profiles import PROFILES
from ra.api import operation
from ra.api.dossier import DOSSIER_LINE, dossier_json
from ra.api.params import PAGE, iso, page_json, page_schema, query_enum, query_int, query_text
from ra.models import Certificate, Order, OrderState, StaffAccount, TokenChoice
from ra.pagination import paginate
from ra.services import dossier
from ra.services import orders as service
from ra.services.dossier_rules import not_accepted
from ra.web import db

STATE = {"type": "string", "enum": [str(s) for s in OrderState]}
TOKEN_CHOICE = {"type": "string", "enum": [str(c) for c in TokenChoice]}
HOLDER = {"type": "object", "required": ["surname", "given_names", "email"], "properties": {
    "id": {"type": "integer"}, "surname": {"type": "string"}, "given_names": {"type": "string"},
    "email": {"type": "string"}, "title": {"type": ["string", "null"]}}}
ORDER = {"type": "object", "required": ["id", "reference", "state", "entity_id", "holder"], "properties": {
    "id": {"type": "integer"}, "reference": {"type": "string"}, "state": STATE,
    "entity_id": {"type": "integer"}, "entity_name": {"type": "string"}, "holder": HOLDER,
    "profile": {"type": "string"}, "token_choice": TOKEN_CHOICE,
    "reused_token_serial": {"type": ["string", "null"]},
    "ordered_on": {"type": "string", "format": "date"}, "created_at": {"type": "string", "format": "date-time"},
    "delivery_session_id": {"type": ["integer", "null"]}, "absent": {"type": "boolean"},
    "cancelled_reason": {"type": ["string", "null"]}}}
ORDER_DETAIL = {**ORDER, "properties": {
    **ORDER["properties"],
    "certificate_serial": {"type": ["string", "null"]},
    "dossier": {"type": "array", "items": DOSSIER_LINE, "description": "one line per required piece"},
    "missing": {"type": "array", "items": {"type": "string"},
                "description": "what is missing or wrong in the dossier (French); empty when complete"},
    "not_accepted": {"type": "array", "items": {"type": "string"},
                     "description": "pieces a CA operator has not accepted yet"}}}
_TEXT = {"type": "string", "maxLength": 254}
NEW_ORDER = {"type": "object", "required": ["entity_id", "holder", "profile", "token_choice"],
             "additionalProperties": False, "properties": {
                 "entity_id": {"type": "integer"},
                 "holder": {"type": "object", "required": ["surname", "given_names", "email"],
                            "additionalProperties": False, "properties": {
                                "surname": _TEXT, "given_names": _TEXT, "email": _TEXT,
                                "title": {"type": ["string", "null"], "maxLength": 254}},
                            "description": "names as on the official ID; the holder never changes"},
                 "profile": {"type": "string", "enum": list(PROFILES)},
                 "token_choice": TOKEN_CHOICE,
                 "reused_token_serial": {"type": ["string", "null"], "maxLength": 64,
                                         "description": "with token_choice reuse: a token this holder owns"}}}
CANCELLATION = {"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {
    "reason": {"type": "string", "minLength": 1, "maxLength": 500}}}


def order_json(order: Order) -> dict[str, Any]:
    holder, token = order.holder, service.reused_token(db(), order)
    return {"id": order.id, "reference": order.reference, "state": str(order.state), "entity_id": order.entity_id,
            "entity_name": order.entity.name,
            "holder": {"id": holder.id, "surname": holder.surname, "given_names": holder.given_names,
                       "email": holder.email, "title": holder.title},
            "profile": order.profile, "token_choice": str(order.token_choice),
            "reused_token_serial": token.serial if token else None, "ordered_on": iso(order.ordered_on),
            "created_at": iso(order.created_at), "delivery_session_id": order.delivery_session_id,
            "absent": bool(order.absent), "cancelled_reason": order.cancelled_reason}


def order_detail_json(order: Order) -> dict[str, Any]:
    cert = db().get(Certificate, order.certificate_id) if order.certificate_id else None
    return {**order_json(order), "certificate_serial": cert.serial if cert else None,
            "dossier": dossier_json(dossier.dossier_lines(order)), "missing": dossier.missing_items(order),
            "not_accepted": not_accepted(order)}


@operation("/orders", "get", summary="Orders of the entities in your scope, newest first", tag="orders",
           response=page_schema(ORDER), errors=(400, 403),
           query=(("state", STATE, "order state"), ("entity_id", {"type": "integer"}, "orders of this entity"),
                  ("q", {"type": "string"}, "part of the reference, holder's names or email"), PAGE))
def list_orders(actor: StaffAccount) -> dict[str, Any]:
    stmt = service.order_list_query(actor, state=query_enum("state", OrderState), entity_id=query_int("entity_id"),
                                    text=query_text("q"))
    return page_json(paginate(db(), stmt), order_json)


@operation("/orders/{order_id}", "get", summary="One order, its dossier and what is missing", tag="orders",
           response=ORDER_DETAIL, errors=(403, 404))
def show_order(actor: StaffAccount, order_id: int) -> dict[str, Any]:
    return order_detail_json(service.order_for(db(), actor, order_id))


@operation("/orders", "post", summary="Place a draft order for a holder of an entity in your scope",
           tag="orders", status=201, request_schema=NEW_ORDER, response=ORDER_DETAIL, errors=(400, 403, 404))
def create_order(actor: StaffAccount, body: dict[str, Any]) -> dict[str, Any]:
    holder = body["holder"]
    new = service.NewOrder(
        entity_id=body["entity_id"], surname=holder["surname"], given_names=holder["given_names"],
        email=holder["email"], title=holder.get("title"), profile=body["profile"],
        token_choice=body["token_choice"], reused_token_serial=body.get("reused_token_serial"))
    return order_detail_json(service.create_order(db(), actor, new))


@operation("/orders/{order_id}/approve", "post",
           summary="Approve a complete dossier whose pieces were all accepted (CA operators)", tag="orders",
           response=ORDER_DETAIL, errors=(403, 404, 409))
def approve_order(actor: StaffAccount, order_id: int) -> dict[str, Any]:
    return order_detail_json(service.approve_order(db(), actor, order_id))


@operation("/orders/{order_id}/cancel", "post", summary="Cancel an order before its certificate is issued",
           tag="orders", request_schema=CANCELLATION, response=ORDER_DETAIL, errors=(400, 403, 404, 409))
def cancel_order(actor: StaffAccount, body: dict[str, Any], order_id: int) -> dict[str, Any]:
    return order_detail_json(service.cancel_order(db(), actor, order_id, body["reason"]))
