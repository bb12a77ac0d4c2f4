"""/api/v1 delivery sessions and the face-to-face check: only the session's operator (MC/AED) writes,
CA staff read, out of scope is 404; illegal transitions are 409, bad input 400 with nothing
changed; the ID document number goes in encrypted and never comes back. Ends with the whole
journey by API only: order → dossier → review → approval → session → face-to-face."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.api.meta import openapi_document
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import DeliverySession, DocumentKind, Entity, IdentityCheck, Order, OrderState, StaffAccount
from ra.services.identity import ID_NUMBER_PURPOSE
from tests.ra.api_setup import Api, Cast, assert_error, clients, make_cast
from tests.ra.order_setup import pdf_bytes, png_bytes
from tests.ra.session_setup import ADDRESS, make_delivery, make_order

TODAY = date.today()
NUMBER = "K7QP2XW94"
READERS = dict(mc=200, mc_out=404, aed=200, aed_out=404, operator=200, auditor=200)
SESSION_OPERATOR_ONLY = dict(mc=200, aed=403, mc_out=404, aed_out=404, operator=403, auditor=403)


@pytest.fixture(scope="module")
def cast(pki: Instance) -> Cast:
    return make_cast(pki)


@pytest.fixture
def api(app: Flask, cast: Cast) -> dict[str, Api]:
    return clients(app, cast)


def staff(db: Session, cast: Cast, persona: str) -> StaffAccount:
    return db.get_one(StaffAccount, cast.account_ids[persona])


def setup(db: Session, cast: Cast, *, operator: str = "mc", day: date = TODAY,
          state: OrderState = OrderState.SCHEDULED, entity_id: int | None = None) -> tuple[int, int]:
    """A session of ``day`` operated by ``operator`` and an order of the commune in ``state`` (held by the
    session when scheduled); committed, ids returned (SQLite: no transaction left open)."""
    delivery = make_delivery(db, staff(db, cast, operator), day=day)
    order = make_order(db, db.get_one(Entity, entity_id or cast.commune_id), staff(db, cast, "mc"), state=state,
                       delivery=delivery if state == OrderState.SCHEDULED else None)
    ids = delivery.id, order.id
    db.commit()
    return ids


def state_of(db: Session, order_id: int) -> tuple[str, int | None, bool]:
    db.rollback()
    order = db.get_one(Order, order_id)
    result = str(order.state), order.delivery_session_id, bool(order.absent)
    db.rollback()
    return result


def checks_of(db: Session, order_id: int) -> int:
    db.rollback()
    count = db.scalar(select(func.count()).select_from(IdentityCheck).where(IdentityCheck.order_id == order_id))
    db.rollback()
    return count or 0


def evidence(**overrides: Any) -> dict[str, Any]:
    body = {"document_type": "cni", "document_number": NUMBER, "document_expiry": (TODAY + timedelta(days=900))
            .isoformat(), "issuing_country": "FRA", "names_match": True}
    body.update(overrides)
    return body


# --- planning ----------------------------------------------------------------------------------

@pytest.mark.parametrize("persona,expected", [("mc", 201), ("aed", 201), ("mc_out", 201), ("operator", 403),
                                              ("auditor", 403), ("mc_unqualified", 403)])
def test_create_session_matrix(api: dict[str, Api], cast: Cast, persona: str, expected: int) -> None:
    response = api[persona].post("/sessions", {"session_date": (TODAY + timedelta(days=7)).isoformat(),
                                               "site_address": "Mairie, 1 place du Martray, 22300 Lannion"})
    if expected == 201:
        body = response.get_json()
        assert (body["status"], body["operator_id"], body["on_site"]) == ("planned", cast.account_ids[persona], True)
        assert body["orders"] == [] and body["invoice"] == {"entities": [], "totals": {
            "ht_cents": 0, "vat_cents": 0, "ttc_cents": 0}}
    else:
        assert_error(response, expected)


@pytest.mark.parametrize("body", [
    {"session_date": (TODAY - timedelta(days=1)).isoformat(), "site_address": ADDRESS},
    {"session_date": (TODAY + timedelta(days=400)).isoformat(), "site_address": ADDRESS},
    {"session_date": "2026-13-01", "site_address": ADDRESS},
    {"session_date": "demain", "site_address": ADDRESS},
    {"session_date": TODAY.isoformat(), "site_address": "ici"},
    {"session_date": TODAY.isoformat()},
    {"session_date": TODAY.isoformat(), "site_address": ADDRESS, "on_site": "oui"},
    {"session_date": TODAY.isoformat(), "site_address": ADDRESS, "room": "B12"},
])
def test_bad_session_input_is_400_and_creates_nothing(api: dict[str, Api], db_session: Session, cast: Cast,
                                                      body: dict[str, Any]) -> None:
    def count() -> int:
        db_session.rollback()
        n = db_session.scalar(select(func.count()).select_from(DeliverySession).where(
            DeliverySession.operator_id == cast.account_ids["aed"])) or 0
        db_session.rollback()
        return n

    before = count()
    assert_error(api["aed"].post("/sessions", body), 400)
    assert count() == before


@pytest.mark.parametrize("persona,expected", READERS.items())
def test_session_is_seen_through_its_orders(api: dict[str, Api], db_session: Session, cast: Cast, persona: str,
                                            expected: int) -> None:
    session_id, order_id = setup(db_session, cast)
    response = api[persona].get(f"/sessions/{session_id}")
    listed = api[persona].get("/sessions", status="planned", date_from=TODAY.isoformat(),
                              date_to=TODAY.isoformat())
    ids = {s["id"] for s in listed.get_json()["items"]}
    if expected == 200:
        body = response.get_json()
        assert body["operator_id"] == cast.account_ids["mc"] and body["session_date"] == TODAY.isoformat()
        [line] = body["orders"]
        assert (line["order_id"], line["state"], line["identity_check"]) == (order_id, "scheduled", None)
        assert line["holder"].endswith("LE GOFF")
        if persona in ("mc", "aed"):
            assert session_id in ids
    else:
        assert_error(response, expected)
        assert session_id not in ids


@pytest.mark.parametrize("query", [{"status": "ouverte"}, {"date_from": "hier"}, {"date_to": "2026-02-30"}])
def test_bad_session_filters_are_400(api: dict[str, Api], query: dict[str, str]) -> None:
    assert_error(api["mc"].get("/sessions", **query), 400)


@pytest.mark.parametrize("persona,expected", [("mc", 200), ("aed", 200), ("mc_out", 404), ("aed_out", 404),
                                              ("operator", 403), ("auditor", 403), ("mc_unqualified", 403)])
def test_add_orders_matrix(api: dict[str, Api], db_session: Session, cast: Cast, persona: str,
                           expected: int) -> None:
    own = persona not in ("operator", "auditor")
    session_id, order_id = setup(db_session, cast, operator=persona if own else "mc", state=OrderState.APPROVED)
    response = api[persona].post(f"/sessions/{session_id}/orders", {"order_ids": [order_id]})
    if expected == 200:
        [line] = response.get_json()
        assert (line["order_id"], line["state"], line["session_id"]) == (order_id, "scheduled", session_id)
        assert state_of(db_session, order_id) == ("scheduled", session_id, False)
    else:
        assert_error(response, expected)
        assert state_of(db_session, order_id) == ("approved", None, False)


def test_add_orders_is_all_or_nothing(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    session_id, approved = setup(db_session, cast, state=OrderState.APPROVED)
    _, draft = setup(db_session, cast, state=OrderState.DRAFT)
    path = f"/sessions/{session_id}/orders"
    assert "Brouillon" in assert_error(api["mc"].post(path, {"order_ids": [approved, draft]}), 409)["message"]
    assert state_of(db_session, approved) == ("approved", None, False)
    for body in ({"order_ids": []}, {"order_ids": ["un"]}, {"order_ids": approved}, {}):
        assert_error(api["mc"].post(path, body), 400)
    assert_error(api["mc"].post(path, {"order_ids": [999999999]}), 404)
    assert api["mc"].post(path, {"order_ids": [approved]}).status_code == 200
    assert_error(api["mc"].post(path, {"order_ids": [approved]}), 409)  # already scheduled


@pytest.mark.parametrize("persona,expected", SESSION_OPERATOR_ONLY.items())
def test_remove_order_matrix(api: dict[str, Api], db_session: Session, cast: Cast, persona: str,
                             expected: int) -> None:
    session_id, order_id = setup(db_session, cast)
    response = api[persona].delete(f"/sessions/{session_id}/orders/{order_id}")
    if expected == 200:
        assert (response.get_json()["state"], response.get_json()["session_id"]) == ("approved", None)
        assert state_of(db_session, order_id) == ("approved", None, False)
    else:
        assert_error(response, expected)
        assert state_of(db_session, order_id) == ("scheduled", session_id, False)


def test_absent_then_moved(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    session_id, order_id = setup(db_session, cast)
    later, _ = setup(db_session, cast, day=TODAY + timedelta(days=14), state=OrderState.APPROVED)
    assert_error(api["aed"].post(f"/sessions/{session_id}/orders/{order_id}/absent"), 403)
    assert_error(api["mc_out"].post(f"/sessions/{session_id}/orders/{order_id}/absent"), 404)
    marked = api["mc"].post(f"/sessions/{session_id}/orders/{order_id}/absent")
    assert (marked.get_json()["absent"], marked.get_json()["state"]) == (True, "scheduled")
    assert_error(api["mc"].post(f"/sessions/{session_id}/orders/{order_id}/move", {"target_session_id": "x"}), 400)
    moved = api["mc"].post(f"/sessions/{session_id}/orders/{order_id}/move", {"target_session_id": later})
    assert moved.status_code == 200 and moved.get_json()["session_id"] == later
    assert state_of(db_session, order_id) == ("scheduled", later, False)
    too_early = assert_error(api["mc"].post(f"/sessions/{later}/orders/{order_id}/absent"), 409)
    assert "jour de la session" in too_early["message"]
    assert_error(api["mc"].delete(f"/sessions/{session_id}/orders/{order_id}"), 404)  # no longer there


def test_update_cancel_close(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    session_id, order_id = setup(db_session, cast, day=TODAY + timedelta(days=3))
    path = f"/sessions/{session_id}"
    assert_error(api["auditor"].patch(path, {"on_site": False}), 403)
    assert_error(api["mc_out"].patch(path, {"on_site": False}), 404)
    assert_error(api["mc"].patch(path, {"session_date": "03/12/2026"}), 400)
    assert_error(api["mc"].patch(path, {}), 400)
    changed = api["mc"].patch(path, {"site_address": "Salle des fêtes, 22300 Lannion", "on_site": False})
    body = changed.get_json()
    assert (body["site_address"], body["on_site"], body["session_date"]) == (
        "Salle des fêtes, 22300 Lannion", False, (TODAY + timedelta(days=3)).isoformat())
    assert "jour" in assert_error(api["mc"].post(f"{path}/close"), 409)["message"]
    assert_error(api["aed"].post(f"{path}/cancel"), 403)
    cancelled = api["mc"].post(f"{path}/cancel")
    assert cancelled.get_json()["status"] == "cancelled" and cancelled.get_json()["orders"] == []
    assert state_of(db_session, order_id) == ("approved", None, False)
    for attempt in (api["mc"].post(f"{path}/cancel"), api["mc"].patch(path, {"on_site": True}),
                    api["mc"].post(f"{path}/orders", {"order_ids": [order_id]})):
        assert_error(attempt, 409)
    today_id, _ = setup(db_session, cast)
    assert api["mc"].post(f"/sessions/{today_id}/close").get_json()["status"] == "closed"


# --- the face-to-face --------------------------------------------------------------------------

@pytest.mark.parametrize("persona,expected", SESSION_OPERATOR_ONLY.items())
def test_identity_check_matrix(api: dict[str, Api], db_session: Session, cast: Cast, persona: str,
                               expected: int) -> None:
    session_id, order_id = setup(db_session, cast)
    response = api[persona].post(f"/sessions/{session_id}/orders/{order_id}/identity-check", evidence())
    if expected == 200:
        assert response.status_code == 201 and response.get_json()["order_state"] == "identity_verified"
    else:
        assert_error(response, expected)
        assert state_of(db_session, order_id)[0] == "scheduled" and checks_of(db_session, order_id) == 0


def test_identity_check_is_recorded_and_the_number_never_returned(
        api: dict[str, Api], db_session: Session, cipher: FieldCipher, cast: Cast) -> None:
    session_id, order_id = setup(db_session, cast)
    response = api["mc"].post(f"/sessions/{session_id}/orders/{order_id}/identity-check",
                              evidence(document_type="passeport", document_number="k7qp 2xw94", issuing_country="fra"))
    assert response.status_code == 201
    body = response.get_json()
    assert "document_number" not in body and NUMBER not in response.get_data(as_text=True)
    assert (body["document_type"], body["issuing_country"], body["names_match"]) == ("passeport", "FRA", True)
    assert (body["order_id"], body["session_id"], body["operator_id"]) == (order_id, session_id,
                                                                           cast.account_ids["mc"])
    detail = api["aed"].get(f"/sessions/{session_id}")
    assert NUMBER not in detail.get_data(as_text=True)
    [line] = detail.get_json()["orders"]
    assert line["state"] == "identity_verified" and line["identity_check"]["id"] == body["id"]
    db_session.rollback()
    stored = db_session.get_one(IdentityCheck, body["id"])
    assert NUMBER.encode() not in stored.document_number
    assert cipher.decrypt(stored.document_number, purpose=ID_NUMBER_PURPOSE) == NUMBER
    db_session.rollback()


@pytest.mark.parametrize("override,word", [
    ({"document_type": "permis"}, "document_type"),
    ({"document_expiry": (TODAY - timedelta(days=1)).isoformat()}, "expiré"),
    ({"document_expiry": "31/12/2030"}, "document_expiry"),
    ({"names_match": False}, "porteur"),
    ({"names_match": "oui"}, "names_match"),
    ({"issuing_country": "XXX"}, "Pays"),
    ({"issuing_country": "FR"}, "issuing_country"),
    ({"in_person": False}, "personne"),
    ({"document_number": 924817365}, "document_number"),
    ({"document_number": "K7!"}, "Numéro"),
    ({"document_number": None}, "document_number"),
    ({"nationality": "FRA"}, "nationality"),
])
def test_bad_identity_evidence_is_400_and_changes_nothing(api: dict[str, Api], db_session: Session, cast: Cast,
                                                          override: dict[str, Any], word: str) -> None:
    session_id, order_id = setup(db_session, cast)
    response = api["mc"].post(f"/sessions/{session_id}/orders/{order_id}/identity-check", evidence(**override))
    assert word in assert_error(response, 400)["message"]
    number = override.get("document_number", NUMBER)
    if number is not None:
        assert str(number) not in response.get_data(as_text=True)
    assert state_of(db_session, order_id)[0] == "scheduled" and checks_of(db_session, order_id) == 0


def test_malformed_identity_json_is_400(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    session_id, order_id = setup(db_session, cast)
    path = f"/sessions/{session_id}/orders/{order_id}/identity-check"
    assert_error(api["mc"].raw("POST", path, b'{"document_type": "cni", ', "application/json"), 400)
    assert checks_of(db_session, order_id) == 0


def test_identity_check_illegal_transitions_are_409(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    session_id, order_id = setup(db_session, cast)
    path = f"/sessions/{session_id}/orders/{order_id}"
    assert api["mc"].post(f"{path}/identity-check", evidence()).status_code == 201
    assert_error(api["mc"].post(f"{path}/identity-check", evidence()), 409)  # already verified
    assert_error(api["mc"].delete(path), 409)
    assert_error(api["mc"].post(f"{path}/absent"), 409)
    assert_error(api["mc"].post(f"/sessions/{session_id}/cancel"), 409)
    assert_error(api["mc"].patch(f"/sessions/{session_id}", {"on_site": False}), 409)
    assert checks_of(db_session, order_id) == 1
    future, later_order = setup(db_session, cast, day=TODAY + timedelta(days=2))
    message = assert_error(api["mc"].post(f"/sessions/{future}/orders/{later_order}/identity-check", evidence()),
                           409)["message"]
    assert "jour de la session" in message
    _, outsider = setup(db_session, cast, state=OrderState.APPROVED)
    assert_error(api["mc"].post(f"/sessions/{session_id}/orders/{outsider}/identity-check", evidence()), 404)


def test_session_invoice_lines(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    session_id, order_id = setup(db_session, cast)
    api["mc"].post(f"/sessions/{session_id}/orders/{order_id}/identity-check", evidence())
    invoice = api["operator"].get(f"/sessions/{session_id}").get_json()["invoice"]
    [entity] = invoice["entities"]
    assert (entity["entity_id"], entity["certificates"]) == (cast.commune_id, 1)
    assert entity["lines"] and all(line["total_cents"] == line["quantity"] * line["unit_cents"]
                                   for line in entity["lines"])
    assert invoice["totals"]["ttc_cents"] == entity["totals"]["ttc_cents"] > 0
    assert api["mc_out"].get(f"/sessions/{session_id}").status_code == 404


# --- the whole journey, by API only ----------------------------------------------------------

def test_order_to_face_to_face_by_api_only(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    mc, operator = api["mc"], api["operator"]
    created = mc.post("/orders", {
        "entity_id": cast.commune_id, "profile": "rgs2-entite-double", "token_choice": "new",
        "holder": {"surname": "Kerhervé", "given_names": "Yann Loïc", "title": "Directeur général des services",
                   "email": f"yann.{secrets.token_hex(4)}@example.fr"}})
    assert created.status_code == 201
    order = created.get_json()
    path = f"/orders/{order['id']}"
    for kind in DocumentKind:
        content, name = (png_bytes(), "piece.png") if kind == DocumentKind.HOLDER_ID else (pdf_bytes(), "piece.pdf")
        form: dict[str, Any] = {"kind": str(kind), "file": (content, name)}
        if kind == DocumentKind.REQUEST:
            form["document_date"] = (TODAY - timedelta(days=7)).isoformat()
        assert mc.upload(f"{path}/documents", form).status_code == 201
    assert mc.get(path).get_json()["state"] == "dossier_complete"
    assert_error(operator.post(f"{path}/approve"), 409)  # pieces not reviewed yet
    for piece in operator.get(f"{path}/documents").get_json():
        assert operator.get(f"{path}/documents/{piece['id']}/content").status_code == 200
        reviewed = operator.post(f"{path}/documents/{piece['id']}/review", {"status": "accepted", "note": "Conforme"})
        assert reviewed.get_json()["review_status"] == "accepted"
    assert operator.post(f"{path}/approve").get_json()["state"] == "approved"
    planned = mc.post("/sessions", {"session_date": TODAY.isoformat(), "site_address": ADDRESS, "on_site": True})
    assert planned.status_code == 201
    session_id = planned.get_json()["id"]
    assert mc.post(f"/sessions/{session_id}/orders", {"order_ids": [order["id"]]}).status_code == 200
    assert mc.get(path).get_json()["state"] == "scheduled"
    checked = mc.post(f"/sessions/{session_id}/orders/{order['id']}/identity-check", evidence())
    assert checked.status_code == 201 and "document_number" not in checked.get_json()
    final = mc.get(path).get_json()
    assert (final["state"], final["delivery_session_id"]) == ("identity_verified", session_id)
    assert state_of(db_session, order["id"]) == ("identity_verified", session_id, False)


# --- the OpenAPI document describes these endpoints ---------------------------------------------

def test_openapi_describes_every_resource_endpoint() -> None:
    document = openapi_document()
    ours = {"entities", "orders", "documents", "sessions"}
    operations = [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()
                  if set(op["tags"]) & ours]
    assert len(operations) >= 28
    for path, method, op in operations:
        [(status, response)] = [(s, r) for s, r in op["responses"].items() if s.startswith("2")]
        schema = response["content"]["application/json"]["schema"]
        described = schema.get("format") == "binary" or "properties" in schema or "properties" in schema.get(
            "items", {})
        assert described, f"{method} {path}: the response schema says nothing"
        assert "401" in op["responses"], f"{method} {path}"
        if "requestBody" in op:
            [(media, body)] = op["requestBody"]["content"].items()
            assert body["schema"]["properties"], f"{method} {path}"
            assert media in ("application/json", "multipart/form-data")
