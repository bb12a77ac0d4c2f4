"""The token screens: scope, the permission matrix of each event, history, filters, a loss that revokes."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest
from cryptography import x509
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.config import ISSUING_SLUG
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import AuditEvent, Certificate, Entity, EntityKind, Holder, Role, TokenEvent, TokenState, UsbToken
from ra.services.crl import publish_crl
from tests.ra.enrolment_setup import deliver, make_holder, new_serial, ready_order
from tests.ra.web import Browser, Person, make_account, make_entity

WHO = ["mc-in", "mc-out", "aed-in", "aed-out", "operator", "auditor"]
SEES = {"mc-in", "aed-in", "operator", "auditor"}
ACTS = {"mc-in", "aed-in", "operator"}
EVENTS = ["blocked", "lost", "retired"]


@dataclass
class Place:
    epci: Entity
    commune: Entity


def place(db: Session) -> Place:
    epci = make_entity(db, kind=EntityKind.EPCI, name=f"CC TEST {new_serial()[:6].upper()}")
    return Place(epci, make_entity(db, parent=epci))


def person(db: Session, cipher: FieldCipher, who: str, where: Place) -> Person:
    if who == "mc-in":
        return make_account(db, cipher, Role.MC, entity=where.commune)
    if who == "mc-out":
        return make_account(db, cipher, Role.MC, entity=make_entity(db))
    if who == "aed-in":  # an EPCI's AED: its member communes are in scope
        return make_account(db, cipher, Role.AED, epci=where.epci)
    if who == "aed-out":
        return make_account(db, cipher, Role.AED, scope=(make_entity(db),))
    return make_account(db, cipher, Role.OPERATOR if who == "operator" else Role.AUDITOR)


def make_token(db: Session, entity: Entity, state: TokenState = TokenState.ACTIVE) -> UsbToken:
    token = UsbToken(serial=new_serial(), model="SafeNet eToken 5110", state=state, entity_id=entity.id,
                     holder_id=make_holder(db).id)
    db.add(token)
    db.flush()
    return token


def stored_state(pki: Instance, token: UsbToken) -> str:
    with pki.factory() as session:
        return str(session.scalars(select(UsbToken.state).where(UsbToken.id == token.id)).one())


def url(token: UsbToken) -> str:
    return f"/supports/{token.serial}"


def send_event(browser: Browser, token: UsbToken, state: str, **extra: str):  # type: ignore[no-untyped-def]
    return browser.submit(url(token), {"state": state, **extra}, action=f"{url(token)}/evenement")


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.get_data(as_text=True))


# --- who sees what ------------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
def test_view_permission_matrix(browser: Browser, db_session: Session, cipher: FieldCipher, who: str) -> None:
    where = place(db_session)
    token = make_token(db_session, where.commune)
    user = person(db_session, cipher, who, where)
    db_session.commit()
    browser.login(user)
    page = browser.get(url(token))
    listed = text_of(browser.get(f"/supports/?q={token.serial}"))
    if who in SEES:
        assert page.status_code == 200
        assert token.serial in text_of(page) and where.commune.name in text_of(page)
        assert url(token) in listed
    else:
        assert page.status_code == 404 and token.serial not in text_of(page)
        assert url(token) not in listed
    has_forms = "/evenement" in text_of(page)
    assert has_forms == (who in ACTS)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("event", EVENTS)
def test_event_permission_matrix(browser: Browser, pki: Instance, db_session: Session, cipher: FieldCipher,
                                 who: str, event: str) -> None:
    where = place(db_session)
    token = make_token(db_session, where.commune)
    user = person(db_session, cipher, who, where)
    db_session.commit()
    browser.login(user)
    response = send_event(browser, token, event, note="déclaré à l'écran", confirm="y")
    if who in ACTS:
        assert response.status_code == 302 and response.location.endswith(url(token))
        assert stored_state(pki, token) == event
        with pki.factory() as session:
            [history] = session.scalars(select(TokenEvent).where(TokenEvent.token_id == token.id)).all()
            audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "token.state",
                                                               AuditEvent.object_id == token.serial)).all()
        assert (history.from_state, history.to_state, history.actor) == ("active", event, user.email)
        assert history.note == "déclaré à l'écran"
        assert [a.actor for a in audited] == [user.email]
        assert "Le support est" in text_of(browser.get(url(token)))
    else:
        assert response.status_code == (403 if who == "auditor" else 404)
        assert stored_state(pki, token) == "active"


def test_actions_follow_the_transition_table(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    where = place(db_session)
    tokens = {state: make_token(db_session, where.commune, state) for state in TokenState}
    user = person(db_session, cipher, "mc-in", where)
    db_session.commit()
    browser.login(user)
    offered = {}
    for state, token in tokens.items():
        page = text_of(browser.get(url(token)))
        offered[state] = {e for e in EVENTS if f'name="state" value="{e}"' in page}
    assert offered == {
        TokenState.BLANK: {"retired"},
        TokenState.INITIALISED: {"lost", "retired"},
        TokenState.ACTIVE: {"blocked", "lost", "retired"},
        TokenState.BLOCKED: {"lost", "retired"},
        TokenState.LOST: set(),
        TokenState.RETIRED: set(),
    }


def test_an_illegal_event_is_refused_with_a_message(browser: Browser, pki: Instance, db_session: Session,
                                                    cipher: FieldCipher) -> None:
    where = place(db_session)
    token = make_token(db_session, where.commune, TokenState.RETIRED)
    user = person(db_session, cipher, "operator", where)
    db_session.commit()
    browser.login(user)
    for state in ("blocked", "active", "nonsense"):
        response = send_event(browser, token, state)
        assert response.status_code == 302
        page = text_of(browser.get(url(token)))
        assert 'class="message error"' in page
        assert stored_state(pki, token) == "retired"
    assert browser.client.post(f"{url(token)}/evenement", data={"state": "lost"}).status_code == 400  # no CSRF


# --- declaring a loss ---------------------------------------------------------------------------

def test_loss_needs_the_confirmation_box(browser: Browser, pki: Instance, db_session: Session,
                                         cipher: FieldCipher) -> None:
    where = place(db_session)
    token = make_token(db_session, where.commune)
    user = person(db_session, cipher, "aed-in", where)
    db_session.commit()
    browser.login(user)
    assert send_event(browser, token, "lost").status_code == 302
    assert "Cochez la case de confirmation" in text_of(browser.get(url(token)))
    assert stored_state(pki, token) == "active"


def test_declaring_lost_from_the_screen_revokes_the_certificate(browser: Browser, pki: Instance,
                                                                db_session: Session, cipher: FieldCipher) -> None:
    ready = ready_order(db_session, cipher)
    db_session.commit()
    delivered = deliver(pki, cipher, ready)
    token, serial = delivered.token, delivered.certificate.serial
    browser.login(ready.operator)
    page = text_of(browser.get(url(token)))
    warning = page[page.index('class="message danger"'):]
    assert serial in warning[:warning.index("</p>")]  # the warning names the certificate to be revoked
    assert "etat-valid" in page

    response = send_event(browser, token, "lost", confirm="y", note="volé avec le sac")
    assert response.status_code == 302
    after = text_of(browser.get(url(token)))
    assert serial in after and "Certificats révoqués" in after and "etat-revoked" in after
    assert "compromission de la clé" in after  # the flash message
    row = after[after.index("etat-revoked"):]
    assert "Compromission de la clé" in row[:row.index("</tr>")]  # the certificate's line
    english = text_of(browser.get(url(token) + "?lang=en"))
    row = english[english.index("etat-revoked"):]
    assert "Key compromise" in row[:row.index("</tr>")] and ">Revoked<" in row
    with pki.factory() as session:
        cert = session.get(Certificate, delivered.certificate.id)
        assert cert is not None and cert.revoked_at is not None and cert.revocation_reason == 1
        assert str(session.get(UsbToken, token.id).state) == "lost"  # type: ignore[union-attr]
    publish_crl(pki.factory, pki.ca, ISSUING_SLUG, actor="test", publication_dir=pki.settings.publication_dir,
                next_update_hours=24)
    crl = x509.load_der_x509_crl((pki.settings.publication_dir / f"{ISSUING_SLUG}.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise


# --- the page and the list ----------------------------------------------------------------------

def test_history_is_shown_newest_first(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    where = place(db_session)
    token = make_token(db_session, where.commune)
    user = person(db_session, cipher, "mc-in", where)
    db_session.commit()
    browser.login(user)
    send_event(browser, token, "blocked", note="premier événement")
    send_event(browser, token, "retired", note="second événement")
    page = text_of(browser.get(url(token)))
    history = page[page.index("Historique"):]
    assert history.index("second événement") < history.index("premier événement")
    assert "/evenement" not in page  # retired: nothing left to declare from the screens


def test_list_filters_and_pages(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    where = place(db_session)
    other = make_entity(db_session, parent=where.epci)
    tokens = [make_token(db_session, where.commune) for _ in range(26)]
    blocked = make_token(db_session, other, TokenState.BLOCKED)
    holder = db_session.get(Holder, blocked.holder_id)
    assert holder is not None
    holder.surname = "Kerhervé"
    user = person(db_session, cipher, "aed-in", where)
    db_session.commit()
    browser.login(user)

    def serials(query: str) -> set[str]:
        page = text_of(browser.get(f"/supports/{query}"))
        assert "Supports (clés USB)" in page
        return set(re.findall(r'href="/supports/([0-9a-f]{16})"', page))

    first, second = serials("?page=1"), serials("?page=2")
    assert len(first) == 25 and len(second) == 2 and not first & second
    assert first | second == {t.serial for t in tokens} | {blocked.serial}
    assert serials("?state=blocked") == {blocked.serial}
    assert serials(f"?entity={other.id}") == {blocked.serial}
    assert serials("?q=kerherv") == {blocked.serial}
    assert serials(f"?q={tokens[3].serial.upper()}") == {tokens[3].serial}
    assert serials("?q=%25") == set()  # a percent sign is searched as such
    bad = browser.get("/supports/?state=perdu")
    assert bad.status_code == 400 and "État de support inconnu" in text_of(bad)


def test_auditor_reads_only(browser: Browser, pki: Instance, db_session: Session, cipher: FieldCipher) -> None:
    where = place(db_session)
    token = make_token(db_session, where.commune)
    user = person(db_session, cipher, "auditor", where)
    db_session.commit()
    browser.login(user)
    page = text_of(browser.get(url(token)))
    assert "<form" in page and "/evenement" not in page and "Déclarer" not in page
    assert "Supports" in text_of(browser.get("/"))  # the navigation entry
    with pki.factory() as session:
        assert session.scalar(select(func.count()).select_from(TokenEvent).where(TokenEvent.token_id == token.id)) == 0


def test_unknown_token_is_404(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    user = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    browser.login(user)
    assert browser.get("/supports/no-such-token").status_code == 404
    assert browser.get("/supports/").status_code == 200


def test_screens_need_a_login(app: Flask) -> None:
    response = app.test_client().get("/supports/")
    assert response.status_code == 302 and "/connexion" in response.location
