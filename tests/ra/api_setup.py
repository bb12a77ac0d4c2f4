"""A cast for the /api/v1 tests: entities in and out of scope, one real account and bearer token per
persona, and a JSON client per persona. Built once per test module and backend (each account costs
an argon2 hash); tests create their own orders, sessions and entities on top of it."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sqlalchemy.orm import Session

from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import Entity, EntityKind, Order, Role, StaffAccount
from ra.services.accounts import create_api_token
from tests.ra.order_setup import accept_dossier, fill_dossier, place_order
from tests.ra.web import make_account, make_entity, unique_siren

# persona → (role, where its scope lies); "in" is the cast's commune, "out" the other one.
PERSONAS: dict[str, tuple[Role, str, bool]] = {
    "mc": (Role.MC, "in", True),
    "mc_out": (Role.MC, "out", True),
    "aed": (Role.AED, "in", True),
    "aed_out": (Role.AED, "out", True),
    "operator": (Role.OPERATOR, "", True),
    "auditor": (Role.AUDITOR, "", True),
    "mc_unqualified": (Role.MC, "in", False),
}

# Expected statuses per persona, for an object of the cast's commune.
IN_SCOPE = dict(mc=200, mc_out=404, aed=200, aed_out=404, operator=200, auditor=200)
OFFICER_WRITE = dict(mc=201, mc_out=404, aed=201, aed_out=404, operator=201, auditor=403, mc_unqualified=403)
OPERATOR_ONLY = dict(mc=403, mc_out=404, aed=403, aed_out=404, operator=200, auditor=403)


@dataclass
class Cast:
    """Ids only: the objects live in the shared database, the tests read them back as they need."""

    epci_id: int
    commune_id: int
    other_epci_id: int
    other_id: int
    account_ids: dict[str, int] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def make_cast(pki: Instance) -> Cast:
    """An EPCI with a member commune (convention approved), another EPCI with its own commune, and
    one qualified account per persona (the AED scoped by EPCI), each with an API token."""
    cipher = FieldCipher(pki.settings.secret_key)
    with pki.factory() as session:
        epci = make_entity(session, "CC API TEST", kind=EntityKind.EPCI)
        commune = make_entity(session, parent=epci)
        other_epci = make_entity(session, "CC API AUTRE", kind=EntityKind.EPCI)
        other = make_entity(session, parent=other_epci)
        cast = Cast(epci.id, commune.id, other_epci.id, other.id)
        for name, (role, where, qualified) in PERSONAS.items():
            if role == Role.MC:
                scope: dict[str, Any] = {"entity": commune if where == "in" else other}
            elif role == Role.AED:
                scope = {"epci": epci if where == "in" else other_epci}
            else:
                scope = {}
            person = make_account(session, cipher, role, qualified=qualified, **scope)
            _token, clear = create_api_token(session, person.account, "tests", actor="test")
            cast.account_ids[name], cast.emails[name], cast.tokens[name] = person.account.id, person.email, clear
        session.commit()
    return cast


class Api:
    """A JSON client for one persona, with its bearer token."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **query: Any) -> TestResponse:
        return self.client.get(f"/api/v1{path}", headers=self.headers, query_string=query)

    def post(self, path: str, body: object = None) -> TestResponse:
        return self.client.post(f"/api/v1{path}", headers=self.headers, json=body)

    def patch(self, path: str, body: object) -> TestResponse:
        return self.client.patch(f"/api/v1{path}", headers=self.headers, json=body)

    def delete(self, path: str) -> TestResponse:
        return self.client.delete(f"/api/v1{path}", headers=self.headers)

    def raw(self, method: str, path: str, data: bytes, content_type: str) -> TestResponse:
        return self.client.open(f"/api/v1{path}", method=method, headers=self.headers, data=data,
                                content_type=content_type)

    def upload(self, path: str, fields: dict[str, Any]) -> TestResponse:
        """A multipart/form-data POST; a (bytes, filename) value is a file part."""
        data = {k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in fields.items()}
        return self.client.post(f"/api/v1{path}", headers=self.headers, data=data,
                                content_type="multipart/form-data")


def clients(app: Flask, cast: Cast) -> dict[str, Api]:
    return {name: Api(app.test_client(), token) for name, token in cast.tokens.items()}


def assert_error(response: TestResponse, status: int) -> dict[str, Any]:
    """The response is a JSON error {error, message} with this status; returns its body."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert set(body) == {"error", "message"} and body["message"], body
    return body


# --- orders of the cast's commune --------------------------------------------------------------

def account(db: Session, cast: Cast, persona: str) -> StaffAccount:
    return db.get_one(StaffAccount, cast.account_ids[persona])


def order_body(cast: Cast, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "entity_id": cast.commune_id, "profile": "rgs2-entite-double", "token_choice": "new",
        "holder": {"surname": "Le Bihan", "given_names": "Gwenaëlle", "title": "Secrétaire de mairie",
                   "email": f"gwen.{unique_siren()}@example.fr"}}
    body.update(overrides)
    return body


def new_order(api: dict[str, Api], cast: Cast) -> dict[str, Any]:
    response = api["mc"].post("/orders", order_body(cast))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def approvable_order(pki: Instance, db: Session, cast: Cast) -> Order:
    """An order of the cast's commune whose five pieces are uploaded and accepted (dossier complete)."""
    order = place_order(db, account(db, cast, "mc"), db.get_one(Entity, cast.commune_id))
    fill_dossier(db, pki.vault, account(db, cast, "mc"), order)
    accept_dossier(db, account(db, cast, "operator"), order)
    db.commit()
    return order
