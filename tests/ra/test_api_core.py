"""The API's frame: bearer tokens, JSON errors, the OpenAPI document."""

from __future__ import annotations

from flask import Flask
from openapi_spec_validator import validate
from sqlalchemy.orm import Session

from ra.api.meta import openapi_document
from ra.db import transaction
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import Role
from ra.services.accounts import create_api_token, revoke_api_token
from tests.ra.web import make_account


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_openapi_document_is_valid_and_lists_every_route(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    validate(document)
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = str(rule.rule).removeprefix("/api/v1").replace("<int:", "{").replace("<", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, f"{method} {path} is not documented"
    assert openapi_document()["components"]["schemas"]["Error"]["required"] == ["error", "message"]


def test_missing_token_is_401_json(app: Flask) -> None:
    response = app.test_client().get("/api/v1/me")
    assert response.status_code == 401
    assert set(response.get_json()) == {"error", "message"}


def test_token_identifies_its_account_until_revoked(app: Flask, pki: Instance, db_session: Session,
                                                    cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    token, clear = create_api_token(db_session, person.account, "tests", actor="test")
    db_session.commit()
    client = app.test_client()
    assert client.get("/api/v1/me", headers=bearer(clear)).get_json()["email"] == person.email
    with transaction(pki.factory) as session:
        revoke_api_token(session, session.merge(token), actor="test")
    response = client.get("/api/v1/me", headers=bearer(clear))
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"


def test_unknown_api_path_is_json_404(app: Flask) -> None:
    response = app.test_client().get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
