"""/api/v1 dossier pieces: upload (type checked by content, nothing kept from a refused file),
review by CA operators, audited uncached reads, in the scope and roles of DESIGN.md."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.instance import Instance
from ra.models import AuditEvent, DocumentKind
from tests.ra.api_setup import (
    IN_SCOPE, OFFICER_WRITE, OPERATOR_ONLY, Api, Cast, approvable_order, assert_error, clients, make_cast, new_order,
)
from tests.ra.order_setup import pdf_bytes, png_bytes, vault_files

TODAY = date.today()


@pytest.fixture(scope="module")
def cast(pki: Instance) -> Cast:
    return make_cast(pki)


@pytest.fixture
def api(app: Flask, cast: Cast) -> dict[str, Api]:
    return clients(app, cast)


def piece(kind: DocumentKind, content: bytes | None = None, name: str = "piece.pdf",
          day: date | None = TODAY - timedelta(days=10)) -> dict[str, Any]:
    form: dict[str, Any] = {"kind": str(kind), "file": (content if content is not None else pdf_bytes(), name)}
    if day is not None:
        form["document_date"] = day.isoformat()
    return form


@pytest.mark.parametrize("persona,expected", OFFICER_WRITE.items())
def test_upload_matrix(api: dict[str, Api], cast: Cast, persona: str, expected: int) -> None:
    order = new_order(api, cast)
    response = api[persona].upload(f"/orders/{order['id']}/documents", piece(DocumentKind.HOLDER_ID))
    if expected == 201:
        body = response.get_json()
        assert (body["kind"], body["review_status"], body["current"]) == ("holder_id", "pending", True)
        assert body["media_type"] == "application/pdf" and len(body["sha256"]) == 64
    else:
        assert_error(response, expected)
    listed = api["operator"].get(f"/orders/{order['id']}/documents").get_json()
    assert len(listed) == (1 if expected == 201 else 0)


BAD_UPLOADS = {
    "no file": {"kind": "holder_id"},
    "no kind": {"file": (b"%PDF-1.4", "piece.pdf")},
    "unknown kind": {"kind": "passport", "file": (b"%PDF-1.4", "piece.pdf")},
    "empty": {"kind": "holder_id", "file": (b"", "piece.pdf")},
    "png named pdf": {"kind": "holder_id", "file": ("PNG", "piece.pdf")},
    "text named pdf": {"kind": "holder_id", "file": (b"Bonjour, voici ma carte.", "piece.pdf")},
    "polyglot": {"kind": "holder_id", "file": ("POLYGLOT", "piece.pdf")},
    "too large": {"kind": "holder_id", "file": ("LARGE", "piece.pdf")},
    "request undated": {"kind": "request", "file": ("PDF", "demande.pdf")},
    "request too old": {"kind": "request", "file": ("PDF", "demande.pdf"), "document_date": "2020-01-01"},
    "date unreadable": {"kind": "request", "file": ("PDF", "demande.pdf"), "document_date": "hier"},
}


def _content(value: Any) -> Any:
    if not isinstance(value, tuple) or not isinstance(value[0], str):
        return value
    made = {"PNG": png_bytes, "PDF": pdf_bytes,
            "POLYGLOT": lambda: pdf_bytes() + b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40,
            "LARGE": lambda: pdf_bytes()[:-6] + b" " * (10 * 1024 * 1024) + b"%%EOF\n"}[value[0]]()
    return made, value[1]


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_upload_is_400_and_changes_nothing(api: dict[str, Api], pki: Instance, cast: Cast, case: str) -> None:
    order = new_order(api, cast)
    before = vault_files(pki.vault)
    form = {k: _content(v) for k, v in BAD_UPLOADS[case].items()}
    response = api["mc"].upload(f"/orders/{order['id']}/documents", form)
    assert_error(response, 400)
    assert api["mc"].get(f"/orders/{order['id']}/documents").get_json() == []
    assert vault_files(pki.vault) == before


def test_upload_over_the_request_limit_is_413(api: dict[str, Api], cast: Cast) -> None:
    order = new_order(api, cast)
    huge = {"kind": "holder_id", "file": (b"%PDF-1.4\n" + b"0" * (12 * 1024 * 1024), "piece.pdf")}
    assert_error(api["mc"].upload(f"/orders/{order['id']}/documents", huge), 413)
    assert api["mc"].get(f"/orders/{order['id']}/documents").get_json() == []


def test_document_content_is_an_audited_uncached_read(api: dict[str, Api], db_session: Session,
                                                      cast: Cast) -> None:
    order = new_order(api, cast)
    content = png_bytes()
    row = api["mc"].upload(f"/orders/{order['id']}/documents", piece(DocumentKind.HOLDER_ID, content, "cni.png"))
    path = f"/orders/{order['id']}/documents/{row.get_json()['id']}/content"
    for persona, expected in IN_SCOPE.items():
        response = api[persona].get(path)
        if expected == 200:
            assert response.data == content and response.headers["Content-Type"] == "image/png"
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers["Content-Disposition"].startswith("attachment")
        else:
            assert_error(response, expected)
    assert_error(api["mc"].get(f"/orders/{order['id']}/documents/999999999/content"), 404)
    db_session.rollback()
    reads = db_session.scalars(select(AuditEvent.actor).where(AuditEvent.action == "document.read",
                                                              AuditEvent.details.contains(order["reference"])))
    assert sorted(reads) == sorted(cast.emails[p] for p, e in IN_SCOPE.items() if e == 200)


@pytest.mark.parametrize("persona,expected", OPERATOR_ONLY.items())
def test_review_matrix(api: dict[str, Api], cast: Cast, persona: str, expected: int) -> None:
    order = new_order(api, cast)
    row = api["mc"].upload(f"/orders/{order['id']}/documents", piece(DocumentKind.HOLDER_ID)).get_json()
    response = api[persona].post(f"/orders/{order['id']}/documents/{row['id']}/review", {"status": "accepted"})
    if expected == 200:
        assert response.get_json()["review_status"] == "accepted"
    else:
        assert_error(response, expected)


def test_review_input_and_transitions(api: dict[str, Api], cast: Cast) -> None:
    order = new_order(api, cast)
    path = f"/orders/{order['id']}/documents"
    first = api["mc"].upload(path, piece(DocumentKind.HOLDER_ID)).get_json()
    review = f"{path}/{first['id']}/review"
    assert_error(api["operator"].post(review, {"status": "maybe"}), 400)
    assert_error(api["operator"].post(review, {"status": "rejected"}), 400)  # a rejection says why
    assert_error(api["operator"].post(review, {"status": "accepted", "note": "x" * 501}), 400)
    rejected = api["operator"].post(review, {"status": "rejected", "note": "Copie illisible"}).get_json()
    assert (rejected["review_status"], rejected["review_note"]) == ("rejected", "Copie illisible")
    missing = api["mc"].get(f"/orders/{order['id']}").get_json()["missing"]
    assert any("Copie illisible" in item for item in missing)
    second = api["mc"].upload(path, piece(DocumentKind.HOLDER_ID)).get_json()
    assert "remplacée" in assert_error(api["operator"].post(review, {"status": "accepted"}), 409)["message"]
    listed = {d["id"]: d["current"] for d in api["mc"].get(path).get_json()}
    assert listed == {first["id"]: False, second["id"]: True}
    assert_error(api["operator"].post(f"{path}/999999999/review", {"status": "accepted"}), 404)


def test_upload_after_approval_is_409(api: dict[str, Api], pki: Instance, db_session: Session, cast: Cast) -> None:
    order = approvable_order(pki, db_session, cast)
    api["operator"].post(f"/orders/{order.id}/approve")
    before = vault_files(pki.vault)
    assert_error(api["mc"].upload(f"/orders/{order.id}/documents", piece(DocumentKind.HOLDER_ID)), 409)
    assert vault_files(pki.vault) == before


def test_order_detail_shows_the_dossier(api: dict[str, Api], cast: Cast) -> None:
    order = new_order(api, cast)
    for kind in DocumentKind:
        dated = kind == DocumentKind.REQUEST
        response = api["aed"].upload(f"/orders/{order['id']}/documents", piece(kind, day=None if not dated else
                                                                                  TODAY - timedelta(days=5)))
        assert response.status_code == 201, response.get_json()
    detail = api["mc"].get(f"/orders/{order['id']}").get_json()
    assert detail["state"] == "dossier_complete" and detail["missing"] == []
    assert len(detail["not_accepted"]) == 5
    lines = {line["kind"]: line for line in detail["dossier"]}
    assert set(lines) == {str(k) for k in DocumentKind}
    assert lines["request"]["needs_date"] and lines["request"]["current"]["document_date"] == (
        TODAY - timedelta(days=5)).isoformat()
    assert {line["status"] for line in lines.values()} == {"pending"}
