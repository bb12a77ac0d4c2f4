"""Endpoints the delivery station calls during a session (token enrolment)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from ra.api import operation
from ra.instance import current_instance
from ra.db import utcnow
from ra.models import DeliverySession, StaffAccount, TokenState, UsbToken
from ra.services import certificates, enrolment, token_queries, tokens
from ra.web import cipher, db

ORDER_ID = {"type": "integer"}
WORK_ITEM = {"type": "object", "properties": {
    "order_id": ORDER_ID, "reference": {"type": "string"}, "state": {"type": "string"},
    "holder": {"type": "string"}, "entity": {"type": "string"}, "profile": {"type": "string"},
    "token_choice": {"type": "string", "enum": ["new", "reuse"]},
    "token_serial": {"type": ["string", "null"]}, "session_id": {"type": "integer"},
    "site_address": {"type": "string"}}}
CERTIFICATE = {"type": "object", "required": ["serial", "certificate", "chain"], "properties": {
    "serial": {"type": "string"}, "certificate": {"type": "string", "description": "PEM"},
    "chain": {"type": "array", "items": {"type": "string"}, "description": "issuing CA, root (PEM)"},
    "order_state": {"type": "string"}, "not_before": {"type": "string"}, "not_after": {"type": "string"}}}
TOKEN = {"type": "object", "properties": {
    "serial": {"type": "string"}, "model": {"type": "string"}, "state": {"type": "string"},
    "certificates": {"type": "array", "items": {"type": "object", "properties": {
        "serial": {"type": "string"}, "status": {"type": "string"}, "not_after": {"type": "string"}}}}}}


def today() -> date:
    return date.today()


@operation("/station/today", "get", summary="Today's holders whose identity check is recorded",
           tag="station", response={"type": "array", "items": WORK_ITEM}, errors=(403,))
def station_today(actor: StaffAccount) -> list[dict[str, Any]]:
    return [asdict(item) for item in enrolment.today_worklist(db(), actor, today())]


@operation("/orders/{order_id}/enrolment", "get",
           summary="The order as this operator may enrol it now (checked before touching the token)",
           tag="station", response=WORK_ITEM, errors=(403, 404, 409))
def enrolment_check(actor: StaffAccount, order_id: int) -> dict[str, Any]:
    order = enrolment.enrolment_order(db(), actor, order_id, today())
    delivery = db().get(DeliverySession, order.delivery_session_id)
    token_id = order.token_id or order.reused_token_id
    token = db().get(UsbToken, token_id) if token_id else None
    return {"order_id": order.id, "reference": order.reference, "state": str(order.state),
            "holder": order.holder.display_name, "entity": order.entity.name, "profile": order.profile,
            "token_choice": str(order.token_choice), "token_serial": token.serial if token else None,
            "session_id": order.delivery_session_id, "site_address": delivery.site_address if delivery else ""}


@operation("/orders/{order_id}/token", "post", summary="Register the token being enrolled",
           tag="station", status=201, errors=(400, 403, 404, 409),
           request_schema={"type": "object", "required": ["serial", "model"], "additionalProperties": False,
                           "properties": {"serial": {"type": "string", "minLength": 1, "maxLength": 64},
                                          "model": {"type": "string", "maxLength": 100},
                                          "so_pin": {"type": "string", "minLength": 6, "maxLength": 64,
                                                     "description": "new token: escrowed, encrypted"}}},
           response={"type": "object", "properties": {"serial": {"type": "string"}, "state": {"type": "string"}}})
def register_token(actor: StaffAccount, body: dict[str, Any], order_id: int) -> dict[str, Any]:
    token = enrolment.register_token(db(), actor, order_id, serial=body["serial"], model=body["model"],
                                     so_pin=body.get("so_pin"), cipher=cipher(), today=today())
    return {"serial": token.serial, "state": str(token.state)}


@operation("/orders/{order_id}/certificate", "post", summary="Submit the token's CSR; idempotent",
           tag="station", status=201, errors=(400, 403, 404, 409), response=CERTIFICATE,
           request_schema={"type": "object", "required": ["csr"], "additionalProperties": False,
                           "properties": {"csr": {"type": "string", "maxLength": 20000,
                                                  "description": "PEM certificate request"}}})
def submit_csr(actor: StaffAccount, body: dict[str, Any], order_id: int) -> dict[str, Any]:
    instance = current_instance()
    db().commit()  # issuance runs its own transactions (reserve, then store): release ours first
    cert = enrolment.submit_csr(instance.factory, instance.ca, actor.id, order_id,
                                body["csr"].encode(), today=today())
    return {"serial": cert.serial, "certificate": certificates.pem(cert),
            "chain": enrolment.chain_pems(db(), instance.ca), "order_state": "issued",
            "not_before": cert.not_before.isoformat(), "not_after": cert.not_after.isoformat()}


DELIVERY_REQUEST = {"type": "object", "required": ["token_serial"], "additionalProperties": False,
                    "properties": {"token_serial": {"type": "string", "minLength": 1, "maxLength": 64}}}
DELIVERY_ANSWER = {"type": "object", "properties": {
    "revocation_code": {"type": "string", "description": "shown once; only its hash is kept"},
    "receipt": {"type": "object"}}}


@operation("/orders/{order_id}/delivery", "post", summary="Confirm the certificate is on the token",
           tag="station", status=201, errors=(400, 403, 404, 409), request_schema=DELIVERY_REQUEST,
           response=DELIVERY_ANSWER)
def confirm_delivery(actor: StaffAccount, body: dict[str, Any], order_id: int) -> dict[str, Any]:
    return _delivery_answer(actor, enrolment.confirm_delivery(db(), actor, order_id,
                                                              token_serial=body["token_serial"], today=today()))


@operation("/orders/{order_id}/delivery/revocation-code", "post",
           summary="A new revocation code for an order delivered today (the delivery's answer was lost)",
           tag="station", status=201, errors=(400, 403, 404, 409), request_schema=DELIVERY_REQUEST,
           response=DELIVERY_ANSWER)
def redraw_revocation_code(actor: StaffAccount, body: dict[str, Any], order_id: int) -> dict[str, Any]:
    return _delivery_answer(actor, enrolment.redraw_revocation_code(
        db(), actor, order_id, token_serial=body["token_serial"], today=today()))


def _delivery_answer(actor: StaffAccount, delivery: enrolment.Delivery) -> dict[str, Any]:
    """The revocation code and what the procès-verbal states."""
    order, cert = delivery.order, delivery.certificate
    delivery_session = db().get(DeliverySession, order.delivery_session_id)
    receipt = {
        "order": order.reference, "holder": order.holder.display_name, "holder_email": order.holder.email,
        "entity": order.entity.name, "siren": order.entity.siren, "profile": order.profile,
        "certificate_serial": cert.serial, "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(), "token_serial": delivery.token.serial,
        "token_model": delivery.token.model, "operator": actor.full_name,
        "operator_role": str(actor.role),
        "site_address": delivery_session.site_address if delivery_session else "",
    }
    return {"revocation_code": delivery.revocation_code, "receipt": receipt}


@operation("/tokens/{serial}/so-pin", "get", summary="The escrowed SO PIN of a token in scope (audited)",
           tag="station", errors=(403, 404),
           response={"type": "object", "properties": {"so_pin": {"type": "string"}}})
def so_pin(actor: StaffAccount, serial: str) -> dict[str, Any]:
    return {"so_pin": enrolment.escrowed_so_pin(db(), actor, serial, cipher())}


def _token_json(token: Any) -> dict[str, Any]:
    now = utcnow()
    return {"serial": token.serial, "model": token.model, "state": str(token.state),
            "certificates": [{"serial": c.serial, "status": c.status(now), "not_after": c.not_after.isoformat()}
                             for c in tokens.token_certificates(db(), token)]}


@operation("/tokens/{serial}", "get", summary="A token, its state and its certificates' status",
           tag="station", errors=(403, 404), response=TOKEN)
def token_status(actor: StaffAccount, serial: str) -> dict[str, Any]:
    return _token_json(token_queries.visible_token(db(), actor, serial))  # the token screen's rule


@operation("/tokens/{serial}/state", "post", summary="Record a token event (blocked, active, lost, retired)",
           tag="station", errors=(400, 403, 404, 409), response=TOKEN,
           request_schema={"type": "object", "required": ["state"], "additionalProperties": False,
                           "properties": {"state": {"type": "string",
                                                    "enum": ["active", "blocked", "lost", "retired"]},
                                          "note": {"type": "string", "maxLength": 500}}})
def token_state(actor: StaffAccount, body: dict[str, Any], serial: str) -> dict[str, Any]:
    token = tokens.change_token_state(db(), actor, serial, TokenState(body["state"]), note=body.get("note"))
    return _token_json(token)
