"""/api/v1 entities, conventions and orders: the scope and roles of DESIGN.md, the lifecycle's
illegal transitions as 409, bad input as 400 with nothing changed (dossier pieces: test_api_documents)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import AuditEvent, ConventionStatus, Entity, EntityKind, Order, Role
from ra.services.accounts import create_api_token
from tests.ra.api_setup import (
    IN_SCOPE, OFFICER_WRITE, OPERATOR_ONLY, Api, Cast, approvable_order, assert_error, clients, make_cast, new_order,
    order_body,
)
from tests.ra.order_setup import pdf_bytes, png_bytes, vault_files
from tests.ra.web import make_account, make_entity, unique_siren

TODAY = date.today()


@pytest.fixture(scope="module")
def cast(pki: Instance) -> Cast:
    return make_cast(pki)


@pytest.fixture
def api(app: Flask, cast: Cast) -> dict[str, Api]:
    return clients(app, cast)


def order_count(db: Session, entity_id: int) -> int:
    """Counted in a transaction of its own (on SQLite an open one would hold the write lock)."""
    db.rollback()
    count = db.scalar(select(func.count()).select_from(Order).where(Order.entity_id == entity_id)) or 0
    db.rollback()
    return count


# --- entities --------------------------------------------------------------------------------

@pytest.mark.parametrize("persona,expected", IN_SCOPE.items())
def test_get_entity_follows_the_scope(api: dict[str, Api], cast: Cast, persona: str, expected: int) -> None:
    response = api[persona].get(f"/entities/{cast.commune_id}")
    if expected == 200:
        body = response.get_json()
        assert response.status_code == 200 and body["id"] == cast.commune_id
        assert body["parent_id"] == cast.epci_id and body["kind"] == "commune"
        assert body["convention"]["status"] == "approved" and len(body["siren"]) == 9
    else:
        assert_error(response, expected)


@pytest.mark.parametrize("persona,sees", [("mc", True), ("mc_out", False), ("aed", True), ("aed_out", False),
                                          ("operator", True), ("auditor", True)])
def test_entity_list_is_scope_restricted(api: dict[str, Api], db_session: Session, cast: Cast, persona: str,
                                         sees: bool) -> None:
    siren = db_session.get_one(Entity, cast.commune_id).siren
    db_session.rollback()  # on SQLite a transaction left open would hold the write lock
    body = api[persona].get("/entities", q=siren, kind="commune", departement="22", page=1).get_json()
    assert ([e["id"] for e in body["items"]] == [cast.commune_id]) is sees
    assert body["total"] == (1 if sees else 0)
    everything = api[persona].get("/entities").get_json()["items"]
    if persona == "mc":
        assert [e["id"] for e in everything] == [cast.commune_id]
    if persona == "aed":  # the EPCI and its members (tests add members), nothing else
        assert {cast.epci_id, cast.commune_id} <= {e["id"] for e in everything}
        assert all(cast.epci_id in (e["id"], e["parent_id"]) for e in everything)


def test_entity_list_refuses_an_unknown_kind(api: dict[str, Api]) -> None:
    assert "kind" in assert_error(api["operator"].get("/entities", kind="mairie"), 400)["message"]


@pytest.mark.parametrize("persona,expected", [("operator", 201), ("mc", 403), ("aed", 403), ("auditor", 403)])
def test_only_ca_operators_create_entities(api: dict[str, Api], db_session: Session, persona: str,
                                           expected: int) -> None:
    siren = unique_siren()
    response = api[persona].post("/entities", {"name": "COMMUNE DE PLOUNEVEZ", "kind": "commune",
                                               "siren": siren, "departement": "22", "siret": None})
    if expected == 201:
        assert response.status_code == 201
        assert response.get_json()["siren"] == siren and response.get_json()["convention"] is None
    else:
        assert_error(response, expected)
    assert (db_session.scalar(select(Entity.id).where(Entity.siren == siren)) is not None) is (expected == 201)


@pytest.mark.parametrize("body", [
    {"name": "COMMUNE X", "kind": "commune", "siren": "123456789", "departement": "22"},  # Luhn
    {"name": "COMMUNE X", "kind": "mairie", "siren": "SIREN", "departement": "22"},  # unknown enum
    {"name": "COMMUNE X", "kind": "commune", "siren": 732829320, "departement": "22"},  # wrong type
    {"name": "COMMUNE X", "kind": "commune", "siren": "SIREN", "departement": "22", "owner": "me"},
    {"name": "COMMUNE X", "kind": "commune", "siren": "SIREN", "departement": "999"},
])
def test_bad_entity_input_is_400_and_creates_nothing(api: dict[str, Api], db_session: Session,
                                                     body: dict[str, Any]) -> None:
    if body["siren"] == "SIREN":
        body = {**body, "siren": unique_siren()}
    assert_error(api["operator"].post("/entities", body), 400)
    if isinstance(body["siren"], str):
        assert db_session.scalar(select(Entity.id).where(Entity.siren == body["siren"])) is None


@pytest.mark.parametrize("persona,expected", [("operator", 200), ("mc", 404), ("mc_out", 404), ("aed", 403),
                                              ("aed_out", 404), ("auditor", 403)])
def test_patch_entity_is_for_ca_operators(api: dict[str, Api], db_session: Session, cast: Cast, persona: str,
                                          expected: int) -> None:
    commune = make_entity(db_session, parent=db_session.get_one(Entity, cast.epci_id))
    db_session.commit()
    response = api[persona].patch(f"/entities/{commune.id}", {"name": "COMMUNE RENOMMEE", "departement": "29"})
    db_session.refresh(commune)
    if expected == 200:
        body = response.get_json()
        assert (body["name"], body["departement"], body["parent_id"]) == ("COMMUNE RENOMMEE", "29", cast.epci_id)
        assert (commune.name, commune.departement) == ("COMMUNE RENOMMEE", "29")
    else:
        assert_error(response, expected)
        assert commune.name.startswith("COMMUNE TEST")


def test_an_mc_cannot_edit_its_own_entity(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    assert_error(api["mc"].patch(f"/entities/{cast.commune_id}", {"name": "COMMUNE A MOI"}), 403)
    assert db_session.get_one(Entity, cast.commune_id).name != "COMMUNE A MOI"


def test_patch_entity_checks_the_merged_entity(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    commune = make_entity(db_session, parent=db_session.get_one(Entity, cast.epci_id))
    db_session.commit()
    assert "type" in assert_error(api["operator"].patch(f"/entities/{commune.id}", {"kind": "ccas"}), 400)["message"]
    assert_error(api["operator"].patch(f"/entities/{commune.id}", {}), 400)
    db_session.refresh(commune)
    assert commune.kind == EntityKind.COMMUNE


# --- conventions -------------------------------------------------------------------------------

def test_convention_submit_approve_read(api: dict[str, Api], app: Flask, pki: Instance, db_session: Session,
                                        cipher: FieldCipher, cast: Cast) -> None:
    commune = make_entity(db_session, parent=db_session.get_one(Entity, cast.epci_id), convention=False)
    own_mc = make_account(db_session, cipher, Role.MC, entity=commune)
    mc_token = create_api_token(db_session, own_mc.account, "tests", actor="test")[1]
    db_session.commit()
    mc = Api(app.test_client(), mc_token)
    path = f"/entities/{commune.id}/convention"
    content = pdf_bytes("Convention signee")
    form = {"file": (content, "convention.pdf"), "signed_on": (TODAY - timedelta(days=3)).isoformat()}
    assert_error(api["mc_out"].upload(path, form), 404)
    assert_error(api["auditor"].upload(path, form), 403)
    assert_error(api["operator"].post(f"{path}/approve"), 404)  # nothing submitted yet
    submitted = mc.upload(path, form)
    assert submitted.status_code == 201, submitted.get_json()
    assert submitted.get_json()["status"] == "pending" and submitted.get_json()["media_type"] == "application/pdf"
    for persona, status in (("mc", 404), ("aed", 403), ("auditor", 403), ("mc_out", 404)):
        assert_error(api[persona].post(f"{path}/approve"), status)
    approved = api["operator"].post(f"{path}/approve")
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert_error(api["operator"].post(f"{path}/approve"), 409)
    assert_error(api["operator"].post(f"{path}/reject", {"note": "trop tard"}), 409)
    assert_error(mc.upload(path, form), 409)  # an approved convention is never replaced
    file = api["aed"].get(f"{path}/content")
    assert file.status_code == 200 and file.data == content
    assert file.headers["Content-Type"] == "application/pdf" and file.headers["Cache-Control"] == "no-store"
    assert_error(api["mc_out"].get(f"{path}/content"), 404)
    db_session.rollback()
    document_id = db_session.get_one(Entity, commune.id).convention.document_id  # type: ignore[union-attr]
    assert db_session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "document.read", AuditEvent.object_id == str(document_id))) == 1


@pytest.mark.parametrize("form,word", [
    ({"signed_on": "2026-01-01"}, "Fichier manquant"),
    ({"file": (b"", "vide.pdf"), "signed_on": "2026-01-01"}, ""),
    ({"file": (png_bytes(), "convention.pdf"), "signed_on": "2026-01-01"}, "extension"),
    ({"file": (pdf_bytes(), "convention.pdf")}, "date de signature"),
    ({"file": (pdf_bytes(), "convention.pdf"), "signed_on": "01/02/2026"}, "AAAA-MM-JJ"),
    ({"file": (pdf_bytes(), "convention.pdf"), "signed_on": "2999-01-01"}, "futur"),
])
def test_bad_convention_upload_is_400(api: dict[str, Api], pki: Instance, db_session: Session, cast: Cast,
                                      form: dict[str, Any], word: str) -> None:
    commune = make_entity(db_session, parent=db_session.get_one(Entity, cast.epci_id), convention=False)
    db_session.commit()
    before = vault_files(pki.vault)
    body = assert_error(api["aed"].upload(f"/entities/{commune.id}/convention", form), 400)
    assert word in body["message"]
    db_session.refresh(commune)
    assert commune.convention is None and vault_files(pki.vault) == before


def test_convention_outside_the_territory_and_rejection(api: dict[str, Api], db_session: Session,
                                                        cast: Cast) -> None:
    epci = db_session.get_one(Entity, cast.epci_id)
    paris = make_entity(db_session, departement="75", parent=epci, convention=False)
    commune = make_entity(db_session, parent=epci, convention=False)
    db_session.commit()
    form = {"file": (pdf_bytes(), "c.pdf"), "signed_on": TODAY.isoformat()}
    assert "départements" in assert_error(api["aed"].upload(f"/entities/{paris.id}/convention", form), 400)["message"]
    assert api["aed"].upload(f"/entities/{commune.id}/convention", form).status_code == 201
    assert_error(api["operator"].post(f"/entities/{commune.id}/convention/reject", {"note": ""}), 400)
    rejected = api["operator"].post(f"/entities/{commune.id}/convention/reject", {"note": "Signature manquante"})
    assert rejected.get_json()["status"] == "rejected"
    assert rejected.get_json()["decision_note"] == "Signature manquante"
    db_session.refresh(commune)
    assert commune.convention is not None and commune.convention.status == ConventionStatus.REJECTED


# --- orders ----------------------------------------------------------------------------------

@pytest.mark.parametrize("persona,expected", OFFICER_WRITE.items())
def test_create_order_matrix(api: dict[str, Api], db_session: Session, cast: Cast, persona: str,
                             expected: int) -> None:
    before = order_count(db_session, cast.commune_id)
    response = api[persona].post("/orders", order_body(cast))
    if expected == 201:
        body = response.get_json()
        assert response.status_code == 201 and body["state"] == "draft" and body["reference"].startswith("C-")
        assert body["holder"]["surname"] == "Le Bihan" and body["entity_id"] == cast.commune_id
        assert len(body["missing"]) == 5 and {line["status"] for line in body["dossier"]} == {"missing"}
    else:
        assert_error(response, expected)
    assert order_count(db_session, cast.commune_id) == before + (expected == 201)


@pytest.mark.parametrize("persona,expected", IN_SCOPE.items())
def test_get_and_list_orders_follow_the_scope(api: dict[str, Api], cast: Cast, persona: str,
                                              expected: int) -> None:
    order = new_order(api, cast)
    response = api[persona].get(f"/orders/{order['id']}")
    listed = api[persona].get("/orders", q=order["reference"], state="draft").get_json()
    if expected == 200:
        assert response.get_json()["reference"] == order["reference"]
        assert [o["id"] for o in listed["items"]] == [order["id"]]
    else:
        assert_error(response, expected)
        assert listed["items"] == [] and listed["total"] == 0


@pytest.mark.parametrize("body,field", [
    ({"holder": {"surname": "D4bois", "given_names": "Marie", "email": "m@example.fr"}}, "Nom"),
    ({"holder": {"surname": "Dubois", "given_names": "Marie", "email": "pas-une-adresse"}}, "électronique"),
    ({"profile": "rgs3-inconnu"}, "profile"),
    ({"token_choice": "maybe"}, "token_choice"),
    ({"token_choice": "reuse", "reused_token_serial": "NOPE-1"}, "support"),
    ({"entity_id": "commune"}, "entity_id"),
    ({"holder": {"surname": "Dubois", "given_names": "Marie"}}, "email"),
    ({"holder": {"surname": "Dubois", "given_names": "Marie", "email": "m@example.fr", "age": 3}}, "age"),
])
def test_bad_order_input_is_400_and_creates_nothing(api: dict[str, Api], db_session: Session, cast: Cast,
                                                    body: dict[str, Any], field: str) -> None:
    before = order_count(db_session, cast.commune_id)
    assert field in assert_error(api["mc"].post("/orders", order_body(cast, **body)), 400)["message"]
    assert order_count(db_session, cast.commune_id) == before


def test_malformed_json_is_400(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    before = order_count(db_session, cast.commune_id)
    assert_error(api["mc"].raw("POST", "/orders", b'{"entity_id": 1,', "application/json"), 400)
    assert_error(api["mc"].raw("POST", "/orders", b"entity_id=1", "application/x-www-form-urlencoded"), 400)
    assert_error(api["mc"].raw("POST", "/orders", b"[1, 2]", "application/json"), 400)
    assert order_count(db_session, cast.commune_id) == before


def test_order_needs_an_approved_convention(api: dict[str, Api], db_session: Session, cast: Cast) -> None:
    commune = make_entity(db_session, parent=db_session.get_one(Entity, cast.epci_id), convention=False)
    db_session.commit()
    message = assert_error(api["aed"].post("/orders", order_body(cast, entity_id=commune.id)), 400)["message"]
    assert "convention" in message and order_count(db_session, commune.id) == 0


@pytest.mark.parametrize("query", [{"state": "brouillon"}, {"entity_id": "abc"}, {"entity_id": "-3"}])
def test_bad_order_filters_are_400(api: dict[str, Api], query: dict[str, str]) -> None:
    assert_error(api["mc"].get("/orders", **query), 400)


@pytest.mark.parametrize("persona,expected", OPERATOR_ONLY.items())
def test_approve_order_matrix(api: dict[str, Api], pki: Instance, db_session: Session, cast: Cast, persona: str,
                              expected: int) -> None:
    order = approvable_order(pki, db_session, cast)
    response = api[persona].post(f"/orders/{order.id}/approve")
    if expected == 200:
        assert response.get_json()["state"] == "approved" and response.get_json()["missing"] == []
    else:
        assert_error(response, expected)
    db_session.refresh(order)
    assert order.state == ("approved" if expected == 200 else "dossier_complete")


def test_illegal_order_transitions_are_409(api: dict[str, Api], pki: Instance, db_session: Session,
                                           cast: Cast) -> None:
    draft = new_order(api, cast)
    assert "Brouillon" in assert_error(api["operator"].post(f"/orders/{draft['id']}/approve"), 409)["message"]
    order = approvable_order(pki, db_session, cast)
    assert api["operator"].post(f"/orders/{order.id}/approve").status_code == 200
    assert_error(api["operator"].post(f"/orders/{order.id}/approve"), 409)
    cancelled = api["aed"].post(f"/orders/{order.id}/cancel", {"reason": "Départ de l'agent"})
    assert cancelled.get_json()["state"] == "cancelled"
    assert cancelled.get_json()["cancelled_reason"] == "Départ de l'agent"
    assert_error(api["aed"].post(f"/orders/{order.id}/cancel", {"reason": "encore"}), 409)
    assert_error(api["operator"].post(f"/orders/{order.id}/approve"), 409)


@pytest.mark.parametrize("persona,expected", [("mc", 200), ("mc_out", 404), ("aed", 200), ("aed_out", 404),
                                              ("operator", 200), ("auditor", 403), ("mc_unqualified", 403)])
def test_cancel_order_matrix(api: dict[str, Api], cast: Cast, persona: str, expected: int) -> None:
    order = new_order(api, cast)
    response = api[persona].post(f"/orders/{order['id']}/cancel", {"reason": "Commande en double"})
    if expected == 200:
        assert response.get_json()["state"] == "cancelled"
    else:
        assert_error(response, expected)
    assert api["operator"].get(f"/orders/{order['id']}").get_json()["state"] == (
        "cancelled" if expected == 200 else "draft")


def test_cancel_needs_a_reason(api: dict[str, Api], cast: Cast) -> None:
    order = new_order(api, cast)
    assert_error(api["mc"].post(f"/orders/{order['id']}/cancel", {"reason": "   "}), 400)
    assert_error(api["mc"].post(f"/orders/{order['id']}/cancel", {}), 400)
    assert api["mc"].get(f"/orders/{order['id']}").get_json()["state"] == "draft"
