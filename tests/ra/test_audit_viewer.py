"""The audit viewer: who may read it, what the filters return, and chain verification."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from html import unescape

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ra import audit
from ra.db import utcnow
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import AuditEvent, Role
from tests.ra.certificate_setup import logged_in
from tests.ra.web import Browser, Person, make_account, make_entity

ROW_LINK = re.compile(r'href="/audit/(\d+)"')


def seqs_on(page_html: str) -> set[int]:
    return {int(n) for n in ROW_LINK.findall(page_html)}


def audit_rows(pki: Instance) -> int:
    with pki.factory() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


@pytest.fixture
def reader(app: Flask, db_session: Session, cipher: FieldCipher) -> Browser:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    return logged_in(app, person)


@dataclass
class Tagged:
    """Rows written by a unique actor, by name."""

    actor: str
    seq: dict[str, int]


@pytest.fixture
def tagged(db_session: Session) -> Tagged:
    found = Tagged(f"filtre-{secrets.token_hex(4)}@example.fr", {})
    for name, action, object_type, object_id in [
        ("order_create", "order.create", "order", "C-1"), ("order_cancel", "order.cancel", "order", "C-2"),
        ("token", "token.register", "usb_token", "T-9"), ("doc", "document.read", "document", "C-1"),
    ]:
        found.seq[name] = audit.record(db_session, actor=found.actor, action=action, object_type=object_type,
                                       object_id=object_id, details={"note": "élément", "n": len(found.seq)})
    db_session.commit()
    return found


@pytest.mark.parametrize("role,expected", [(Role.MC, 403), (Role.AED, 403), (Role.OPERATOR, 200), (Role.AUDITOR, 200)])
def test_who_may_read_the_audit_log(app: Flask, db_session: Session, cipher: FieldCipher, role: Role,
                                    expected: int) -> None:
    entity = make_entity(db_session)
    person: Person = make_account(db_session, cipher, role, entity=entity if role == Role.MC else None,
                                  scope=(entity,) if role == Role.AED else ())
    db_session.commit()
    browser = logged_in(app, person)
    assert browser.get("/audit/").status_code == expected
    assert browser.get("/audit/1").status_code == expected
    verify = browser.submit("/", {}, action="/audit/verifier")
    assert verify.status_code == expected


def test_filters_return_the_right_rows(reader: Browser, tagged: Tagged) -> None:
    actor, seq = tagged.actor, tagged.seq

    def seqs(query: str) -> set[int]:
        response = reader.get(f"/audit/?actor={actor}&{query}")
        assert response.status_code == 200
        return seqs_on(response.get_data(as_text=True))

    assert seqs("") == set(seq.values())
    assert seqs("action=order.") == {seq["order_create"], seq["order_cancel"]}
    assert seqs("action=order.cancel") == {seq["order_cancel"]}
    assert seqs("object_type=usb_token") == {seq["token"]}
    assert seqs("object_id=C-1") == {seq["order_create"], seq["doc"]}
    today = utcnow().date()  # the filter dates are UTC days
    assert seqs(f"from={today}&to={today + timedelta(days=1)}") == seqs("")
    assert seqs(f"from={today + timedelta(days=2)}") == set()
    assert seqs(f"to={today - timedelta(days=2)}") == set()
    assert seqs_on(reader.get(f"/audit/?actor={actor[3:12]}").get_data(as_text=True)) >= set(seq.values())
    # LIKE wildcards typed in the actor filter are taken literally
    assert seqs_on(reader.get("/audit/?actor=%25_%25").get_data(as_text=True)) == set()


def test_newest_first_and_paginated(reader: Browser, db_session: Session) -> None:
    actor = f"pages-{secrets.token_hex(4)}"
    made = [audit.record(db_session, actor=actor, action="test.page", object_type="thing", object_id=i)
            for i in range(30)]
    db_session.commit()
    first = reader.get(f"/audit/?actor={actor}").get_data(as_text=True)
    second = reader.get(f"/audit/?actor={actor}&page=2").get_data(as_text=True)
    first_seqs = [int(n) for n in ROW_LINK.findall(first)]
    assert first_seqs == sorted(made, reverse=True)[:25]
    assert seqs_on(second) == set(sorted(made)[:5])
    assert "Page 1 sur 2" in first


@pytest.mark.parametrize("query", ["from=2024-13-01", "to=hier", "from=2025-02-01&to=2025-01-01"])
def test_bad_dates_are_a_clear_400(reader: Browser, query: str) -> None:
    response = reader.get(f"/audit/?{query}")
    assert response.status_code == 400
    assert "date" in response.get_data(as_text=True)


def test_event_detail_pretty_prints_details(reader: Browser, tagged: Tagged) -> None:
    html = unescape(reader.get(f"/audit/{tagged.seq['doc']}").get_data(as_text=True))
    assert "document.read" in html
    assert '{\n  "n": 3,\n  "note": "élément"\n}' in html
    assert reader.get("/audit/999999999").status_code == 404


def test_browsing_writes_nothing(pki: Instance, reader: Browser, tagged: Tagged) -> None:
    before = audit_rows(pki)
    reader.get("/audit/")
    reader.get(f"/audit/?actor={tagged.actor}&action=order.")
    reader.get(f"/audit/{tagged.seq['order_create']}")
    assert audit_rows(pki) == before


def test_verification_says_intact_and_is_itself_audited(pki: Instance, reader: Browser, db_session: Session) -> None:
    response = reader.submit("/audit/", {}, action="/audit/verifier")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Chaîne intacte" in html
    rows = int(re.search(r"(\d+) lignes vérifiées", html).group(1))  # type: ignore[union-attr]
    with pki.factory() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert last.action == "audit.verify" and last.seq == rows + 1
    assert '"intact":true' in last.details


@contextmanager
def tampering(pki: Instance, seq: int) -> Iterator[int]:
    """Row ``seq`` changed behind the chain's back with plain SQL, restored on leaving."""
    with pki.factory() as session, session.begin():
        original = session.scalar(select(AuditEvent.actor).where(AuditEvent.seq == seq))
        session.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(actor="mallory@example.fr"))
    try:
        yield seq
    finally:
        with pki.factory() as session, session.begin():
            session.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(actor=original))


@pytest.fixture
def tampered(pki: Instance, tagged: Tagged) -> Iterator[int]:
    with tampering(pki, tagged.seq["token"]) as seq:
        yield seq


def test_verification_names_the_tampered_row(pki: Instance, reader: Browser, tampered: int) -> None:
    response = reader.submit("/audit/", {}, action="/audit/verifier")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Chaîne rompue à la ligne {tampered}" in html and "modifiée" in html
    assert f'href="/audit/{tampered}"' in html


def test_chain_is_intact_again_after_restoring(pki: Instance, tagged: Tagged) -> None:
    with tampering(pki, tagged.seq["doc"]) as seq, pki.factory() as session:
        assert audit.verify(session).first_broken_seq == seq
    with pki.factory() as session:
        assert audit.verify(session).ok
