"""/api/v1 certificates and revocation requests: the same scope and roles as the screens."""

from __future__ import annotations

import pytest
from cryptography import x509
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import Certificate
from ra.services.accounts import create_api_token
from tests.ra.certificate_setup import Cast, issue, issued_for, make_cast, reread


class Api:
    """A client for one persona, with its own bearer token."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def get(self, path: str):  # type: ignore[no-untyped-def]
        return self.client.get(f"/api/v1{path}", headers=self.headers)

    def post(self, path: str, body: object = None):  # type: ignore[no-untyped-def]
        return self.client.post(f"/api/v1{path}", headers=self.headers, json=body)


@pytest.fixture
def cast(db_session: Session, cipher: FieldCipher) -> Cast:
    return make_cast(db_session, cipher)


@pytest.fixture
def api(app: Flask, db_session: Session, cast: Cast) -> dict[str, Api]:
    tokens = {name: create_api_token(db_session, person.account, "tests", actor="test")[1]
              for name, person in cast.people().items()}
    db_session.commit()
    return {name: Api(app.test_client(), token) for name, token in tokens.items()}


@pytest.fixture
def cert(pki: Instance, db_session: Session, cast: Cast) -> Certificate:
    return issued_for(pki, db_session, cast.home, cast.mc.account)


@pytest.mark.parametrize("persona,expected", [
    ("mc", 200), ("mc_out", 404), ("aed", 200), ("aed_out", 404), ("operator", 200), ("auditor", 200)])
def test_get_certificate_follows_the_scope(api: dict[str, Api], cert: Certificate, cast: Cast,
                                           persona: str, expected: int) -> None:
    response = api[persona].get(f"/certificates/{cert.serial}")
    assert response.status_code == expected
    if expected == 200:
        body = response.get_json()
        assert body["status"] == "valid" and body["entity_id"] == cast.home.id
        assert x509.load_pem_x509_certificate(body["pem"].encode()).serial_number == int(cert.serial, 16)
    else:
        assert set(response.get_json()) == {"error", "message"}


@pytest.mark.parametrize("persona,expected", [
    ("mc", 201), ("mc_out", 404), ("aed", 201), ("aed_out", 404), ("operator", 201), ("auditor", 403)])
def test_request_revocation_matrix(api: dict[str, Api], cert: Certificate, persona: str, expected: int) -> None:
    response = api[persona].post(f"/certificates/{cert.serial}/revocation-requests",
                                 {"reason": "affiliationChanged", "comment": "départ"})
    assert response.status_code == expected
    body = response.get_json()
    if expected == 201:
        assert body["status"] == "pending" and body["reason"] == "affiliationChanged"
        assert body["certificate_serial"] == cert.serial
    else:
        assert set(body) == {"error", "message"}


@pytest.mark.parametrize("persona,expected", [
    ("mc", 403), ("mc_out", 403), ("aed", 403), ("aed_out", 403), ("operator", 200), ("auditor", 403)])
def test_processing_is_for_ca_operators(api: dict[str, Api], cert: Certificate, persona: str, expected: int) -> None:
    made = api["mc"].post(f"/certificates/{cert.serial}/revocation-requests", {"reason": "superseded"}).get_json()
    assert api[persona].get("/revocation-requests?status=pending").status_code == expected
    approved = api[persona].post(f"/revocation-requests/{made['id']}/approve")
    assert approved.status_code == expected
    if expected == 200:
        assert approved.get_json()["status"] == "processed"
        assert api["mc"].get(f"/certificates/{cert.serial}").get_json()["status"] == "revoked"


def test_approve_revokes_once_and_reject_keeps_valid(pki: Instance, db_session: Session, api: dict[str, Api],
                                                     cast: Cast, cert: Certificate) -> None:
    operator = api["operator"]
    first = api["aed"].post(f"/certificates/{cert.serial}/revocation-requests", {"reason": "keyCompromise"}).get_json()
    twice = api["mc"].post(f"/certificates/{cert.serial}/revocation-requests", {"reason": "superseded"})
    assert twice.status_code == 409  # one pending request per certificate
    listed = operator.get("/revocation-requests?status=pending").get_json()
    assert first["id"] in {r["id"] for r in listed}
    assert operator.post(f"/revocation-requests/{first['id']}/approve").status_code == 200
    assert operator.post(f"/revocation-requests/{first['id']}/approve").status_code == 409
    assert operator.post(f"/revocation-requests/{first['id']}/reject", {"note": "non"}).status_code == 409
    again = api["mc"].post(f"/certificates/{cert.serial}/revocation-requests", {"reason": "superseded"})
    assert again.status_code == 409 and "déjà révoqué" in again.get_json()["message"]

    other = issued_for(pki, db_session, cast.home, cast.mc.account)
    made = api["mc"].post(f"/certificates/{other.serial}/revocation-requests", {"reason": "superseded"}).get_json()
    assert operator.post(f"/revocation-requests/{made['id']}/reject", {}).status_code == 400
    assert operator.post(f"/revocation-requests/{made['id']}/reject", {"note": ""}).status_code == 400
    rejected = operator.post(f"/revocation-requests/{made['id']}/reject", {"note": "doublon"})
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert reread(pki, other).revoked_at is None
    assert operator.post("/revocation-requests/999999999/approve").status_code == 404


def test_operator_may_revoke_at_once_but_not_an_mc(api: dict[str, Api], pki: Instance, cert: Certificate) -> None:
    refused = api["mc"].post(f"/certificates/{cert.serial}/revocation-requests",
                             {"reason": "keyCompromise", "revoke_now": True})
    assert refused.status_code == 403 and reread(pki, cert).revoked_at is None
    done = api["operator"].post(f"/certificates/{cert.serial}/revocation-requests",
                                {"reason": "tokenLost", "revoke_now": True})
    assert done.status_code == 201 and done.get_json()["status"] == "processed"
    assert done.get_json()["reason"] == "keyCompromise"
    assert reread(pki, cert).revoked_at is not None


def test_list_is_scoped_and_filtered(pki: Instance, db_session: Session, api: dict[str, Api], cast: Cast,
                                     cert: Certificate) -> None:
    foreign = issued_for(pki, db_session, cast.elsewhere, cast.mc_out.account)
    unattached = issue(pki)

    def serials(persona: str, query: str = "") -> set[str]:
        response = api[persona].get(f"/certificates?{query}")
        assert response.status_code == 200, response.get_json()
        return {c["serial"] for c in response.get_json()["items"]}

    mine = serials("mc", f"entity_id={cast.home.id}")
    assert cert.serial in mine and foreign.serial not in mine
    assert serials("mc", f"entity_id={cast.elsewhere.id}") == set()  # not a leak: simply nothing
    assert cert.serial in serials("aed", f"q={cert.serial}") and serials("aed_out", f"q={cert.serial}") == set()
    assert serials("mc", f"q={unattached.serial}") == set()
    assert serials("operator", f"q={unattached.serial}") == {unattached.serial}
    assert serials("auditor", f"entity_id={cast.elsewhere.id}&status=valid") == {foreign.serial}
    assert serials("operator", f"entity_id={cast.elsewhere.id}&status=revoked") == set()


@pytest.mark.parametrize("query,body", [("status=bogus", None), ("entity_id=abc", None)])
def test_bad_query_is_a_json_400(api: dict[str, Api], query: str, body: object) -> None:
    response = api["operator"].get(f"/certificates?{query}")
    assert response.status_code == 400 and set(response.get_json()) == {"error", "message"}


def test_bad_bodies_are_json_400(api: dict[str, Api], cert: Certificate) -> None:
    path = f"/certificates/{cert.serial}/revocation-requests"
    for body in ({"reason": "certificateHold"}, {"reason": "removeFromCRL"}, {}, {"reason": "superseded", "x": 1},
                 {"reason": "superseded", "comment": "x" * 501}):
        response = api["mc"].post(path, body)
        assert response.status_code == 400 and set(response.get_json()) == {"error", "message"}
    assert api["mc"].get("/certificates/not-hex").status_code == 404
