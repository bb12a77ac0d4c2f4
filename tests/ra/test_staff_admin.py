"""CA operators' staff administration: who may do it, account creation, designations, activation."""

from __future__ import annotations

import html
import re
import secrets
from datetime import date, timedelta
from io import BytesIO

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.db import utcnow
from ra.errors import Forbidden
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import AuditEvent, DesignationStatus, Document, EntityKind, Role, StaffAccount
from ra.permissions import Action, require
from ra.services.accounts import check_password
from ra.services.staff import upload_designation
from tests.ra.web import Browser, Person, make_account, make_entity

PDF = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] "
       b"/Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00" + b"\x90" * 200
TEMPORARY = re.compile(r'<code id="mot-de-passe-provisoire">([^<]+)</code>')


def settle(session: Session) -> None:
    """End the test session's transaction (on SQLite a reader would keep the write lock)."""
    session.commit()


def reload(session: Session, obj: object) -> None:
    session.refresh(obj)
    session.commit()


def logged_in(app: Flask, person: Person) -> Browser:
    browser = Browser(app)
    # The current step's code: the previous step's may expire while the password is checked.
    browser._steps[person.email] = int(utcnow().timestamp() // 30) - 1
    assert browser.login(person).status_code == 302
    return browser


def unqualified_mc(db_session: Session, cipher: FieldCipher) -> Person:
    """A trained MC whose designation has not been uploaded yet."""
    person = make_account(db_session, cipher, Role.MC, entity=make_entity(db_session), qualified=False)
    person.account.training_date = date.today() - timedelta(days=10)
    db_session.commit()
    return person


def vault_files(pki: Instance) -> set[str]:
    return {p.name for p in pki.settings.documents_dir.glob("*")} if pki.settings.documents_dir.exists() else set()


# --- permission matrix -----------------------------------------------------------------------

STAFF_ACTIONS = ["list", "create_form", "create", "show", "training", "upload", "decide", "deactivate", "document"]


def _do(browser: Browser, action: str, target: StaffAccount, entity_id: int):  # type: ignore[no-untyped-def]
    """One staff-administration request; CSRF tokens come from /compte, which every role may open."""
    page = f"/comptes/{target.id}"
    if action == "list":
        return browser.get("/comptes?role=mc")
    if action == "create_form":
        return browser.get("/comptes/nouveau")
    if action == "create":
        return browser.submit("/compte", {"email": f"cree-{secrets.token_hex(4)}@example.fr", "full_name": "Créé",
                                          "role": "mc", "entity_id": str(entity_id)}, action="/comptes/nouveau")
    if action == "show":
        return browser.get(page)
    if action == "training":
        return browser.submit("/compte", {"training_date": "2024-01-15"}, action=f"{page}/formation")
    if action == "upload":
        return browser.submit("/compte", {"document": (BytesIO(PDF), "designation.pdf")}, action=f"{page}/designation")
    if action == "decide":
        return browser.submit("/compte", {"decision": "approve"}, action=f"{page}/designation/decision")
    if action == "deactivate":
        return browser.submit("/compte", {"active": "0"}, action=f"{page}/activation")
    if action == "document":
        return browser.get(f"{page}/designation")
    raise AssertionError(action)


@pytest.mark.parametrize("role", [Role.MC, Role.AED, Role.AUDITOR, Role.OPERATOR])
def test_staff_administration_permission_matrix(
        role: Role, app: Flask, pki: Instance, db_session: Session, cipher: FieldCipher) -> None:
    entity = make_entity(db_session)
    actor = make_account(db_session, cipher, role, entity=entity if role == Role.MC else None,
                         scope=(entity,) if role == Role.AED else ())
    target = unqualified_mc(db_session, cipher).account
    upload_designation(db_session, target, target, PDF, "designation.pdf", pki.vault)  # pending, to be decided
    db_session.commit()
    browser = logged_in(app, actor)
    accounts_before = db_session.scalar(select(func.count()).select_from(StaffAccount))
    settle(db_session)

    for action in STAFF_ACTIONS:
        response = _do(browser, action, target, entity.id)
        if role == Role.OPERATOR:
            assert response.status_code in (200, 302), (action, response.status_code)
        else:
            assert response.status_code == 403, (action, response.status_code)

    reload(db_session, target)
    accounts_after = db_session.scalar(select(func.count()).select_from(StaffAccount))
    settle(db_session)
    if role == Role.OPERATOR:
        assert accounts_after == accounts_before + 1
        assert target.training_date == date(2024, 1, 15)
        assert target.designation_status == DesignationStatus.APPROVED and not target.active
    else:
        assert accounts_after == accounts_before
        assert target.training_date == date.today() - timedelta(days=10)
        assert target.designation_status == DesignationStatus.PENDING and target.active


def test_staff_pages_are_not_in_an_officers_navigation(app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    operator = make_account(db_session, cipher, Role.OPERATOR)
    auditor = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    assert 'href="/comptes"' in logged_in(app, operator).get("/").get_data(as_text=True)
    assert 'href="/comptes"' not in logged_in(app, auditor).get("/").get_data(as_text=True)


# --- designations ----------------------------------------------------------------------------

def test_designation_upload_then_approval_lets_the_mc_act(
        app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    mc = unqualified_mc(db_session, cipher)
    operator = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    with pytest.raises(Forbidden):
        require(mc.account, Action.EDIT_ORDERS)

    mc_browser = logged_in(app, mc)
    uploaded = mc_browser.submit("/compte", {"document": (BytesIO(PDF), "designation-maire.pdf")},
                                 action="/compte/designation")
    assert uploaded.status_code == 302
    reload(db_session, mc.account)
    assert mc.account.designation_status == DesignationStatus.PENDING
    document = db_session.get(Document, mc.account.designation_document_id)
    settle(db_session)
    assert document is not None and document.uploaded_by_id == mc.account.id and document.media_type == "application/pdf"
    with pytest.raises(Forbidden):
        require(mc.account, Action.EDIT_ORDERS)
    assert "attente" in mc_browser.get("/compte").get_data(as_text=True)

    op_browser = logged_in(app, operator)
    assert mc.account.full_name in op_browser.get("/").get_data(as_text=True)  # on the operator's home
    downloaded = op_browser.get(f"/comptes/{mc.account.id}/designation")
    assert downloaded.status_code == 200 and downloaded.data == PDF
    approved = op_browser.submit(f"/comptes/{mc.account.id}", {"decision": "approve", "note": "signée du maire"},
                                 action=f"/comptes/{mc.account.id}/designation/decision")
    assert approved.status_code == 302
    reload(db_session, mc.account)
    assert mc.account.designation_status == DesignationStatus.APPROVED
    assert mc.account.designation_decided_by_id == operator.account.id and mc.account.designation_decided_at
    require(mc.account, Action.EDIT_ORDERS)  # the MC can now act

    actions = list(db_session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(mc.account.id))))
    settle(db_session)
    assert {"account.designation_upload", "account.designation_approve"} <= set(actions)
    again = op_browser.submit(f"/comptes/{mc.account.id}", {"decision": "reject"},
                              action=f"/comptes/{mc.account.id}/designation/decision")
    assert again.status_code == 409 and "attend de décision" in html.unescape(again.get_data(as_text=True))


def test_a_rejected_designation_does_not_qualify(app: Flask, pki: Instance, db_session: Session,
                                                 cipher: FieldCipher) -> None:
    mc = unqualified_mc(db_session, cipher)
    operator = make_account(db_session, cipher, Role.OPERATOR)
    upload_designation(db_session, operator.account, mc.account, PDF, "d.pdf", pki.vault)
    db_session.commit()
    response = logged_in(app, operator).submit(f"/comptes/{mc.account.id}", {"decision": "reject"},
                                               action=f"/comptes/{mc.account.id}/designation/decision")
    assert response.status_code == 302
    reload(db_session, mc.account)
    assert mc.account.designation_status == DesignationStatus.REJECTED
    with pytest.raises(Forbidden):
        require(mc.account, Action.EDIT_ORDERS)


@pytest.mark.parametrize("where", ["own", "operator"])
def test_upload_refuses_an_executable_named_pdf_and_stores_nothing(
        where: str, app: Flask, pki: Instance, db_session: Session, cipher: FieldCipher) -> None:
    mc = unqualified_mc(db_session, cipher)
    operator = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    browser = logged_in(app, mc if where == "own" else operator)
    page, action = (("/compte", "/compte/designation") if where == "own"
                    else (f"/comptes/{mc.account.id}", f"/comptes/{mc.account.id}/designation"))
    documents_before = db_session.scalar(select(func.count()).select_from(Document))
    settle(db_session)
    files_before = vault_files(pki)

    response = browser.submit(page, {"document": (BytesIO(EXE), "designation.pdf")}, action=action)
    assert response.status_code == 400
    assert "Type de fichier non accepté : seuls PDF, JPEG et PNG le sont." in response.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Document)) == documents_before
    reload(db_session, mc.account)
    assert mc.account.designation_status == DesignationStatus.NONE and mc.account.designation_document_id is None
    assert vault_files(pki) == files_before


# --- creation --------------------------------------------------------------------------------

def test_operator_creates_an_mc_whose_temporary_password_leads_to_enrolment(
        app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    entity = make_entity(db_session)
    operator = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    browser = logged_in(app, operator)
    email = f"nouvelle-mc-{secrets.token_hex(4)}@example.fr"
    created = browser.submit("/comptes/nouveau", {"email": email, "full_name": "Anne Kerouac", "role": "mc",
                                                  "entity_id": str(entity.id), "training_date": "2024-03-01"})
    assert created.status_code == 200
    password = TEMPORARY.search(created.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    account = db_session.scalar(select(StaffAccount).where(StaffAccount.email == email))
    settle(db_session)
    assert account is not None and account.entity_id == entity.id and account.training_date == date(2024, 3, 1)
    assert not account.totp_enabled and check_password(account, password) and len(password) >= 12
    assert password not in browser.get(f"/comptes/{account.id}").get_data(as_text=True)

    newcomer = Browser(app)
    first = newcomer.submit("/connexion", {"email": email, "password": password, "code": ""})
    assert first.status_code == 302 and first.location.endswith("/compte/second-facteur")


def test_account_creation_refuses_inconsistent_input(app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    commune = make_entity(db_session)
    epci = make_entity(db_session, kind=EntityKind.EPCI)
    operator = make_account(db_session, cipher, Role.OPERATOR)
    taken = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    browser = logged_in(app, operator)
    base = {"full_name": "Quelqu'un", "email": f"x-{secrets.token_hex(4)}@example.fr"}
    cases = [
        ({"role": "mc"}, "rattaché à une entité"),
        ({"role": "aed"}, "au moins une entité ou un EPCI"),
        ({"role": "aed", "epci_id": str(commune.id)}, "n'est pas un EPCI"),
        ({"role": "mc", "entity_id": "999999999"}, "Entité inconnue"),
        ({"role": "mc", "entity_id": str(commune.id),
          "training_date": (date.today() + timedelta(days=3)).isoformat()}, "dans le futur"),
        ({"role": "auditor", "email": taken.email}, "existe déjà"),
        ({"role": "pape"}, "pas un choix valide"),
    ]
    for extra, message in cases:
        response = browser.submit("/comptes/nouveau", {**base, **extra})
        assert response.status_code == 400, extra
        assert message in html.unescape(response.get_data(as_text=True)), (extra, message)
    assert db_session.scalar(select(func.count()).select_from(StaffAccount)
                             .where(StaffAccount.email == base["email"])) == 0
    settle(db_session)

    aed = browser.submit("/comptes/nouveau", {**base, "role": "aed", "epci_id": str(epci.id),
                                              "scope_entity_ids": [str(commune.id)]})
    assert aed.status_code == 200
    account = db_session.scalar(select(StaffAccount).where(StaffAccount.email == base["email"]))
    assert account is not None and account.scope_epci_id == epci.id
    assert [e.id for e in account.scope_entities] == [commune.id]
    settle(db_session)


# --- list, training, activation --------------------------------------------------------------

def test_list_filters_and_paginates(app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    tag = secrets.token_hex(4)
    for n in range(27):
        db_session.add(StaffAccount(email=f"liste-{tag}-{n}@example.fr", full_name=f"Liste {tag} {n:02d}",
                                    role=Role.AUDITOR if n else Role.AED, password_hash="x",
                                    designation_status=DesignationStatus.NONE))
    operator = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    browser = logged_in(app, operator)
    first = browser.get(f"/comptes?q={tag.upper()}").get_data(as_text=True)
    assert first.count(f"Liste {tag}") == 25 and "Page 1 sur 2" in first
    second = browser.get(f"/comptes?q={tag}&page=2").get_data(as_text=True)
    assert second.count(f"Liste {tag}") == 2
    only_aed = browser.get(f"/comptes?q={tag}&role=aed").get_data(as_text=True)
    assert only_aed.count(f"Liste {tag}") == 1 and f"Liste {tag} 00" in only_aed
    assert f"Liste {tag}" not in browser.get(f"/comptes?q={tag}&designation=pending").get_data(as_text=True)
    assert browser.get("/comptes?q=%25_%5C&page=abc&role=nimporte").status_code == 200


def test_training_date_in_the_future_is_refused(app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    mc = unqualified_mc(db_session, cipher)
    operator = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    response = logged_in(app, operator).submit(
        f"/comptes/{mc.account.id}", {"training_date": (date.today() + timedelta(days=1)).isoformat()},
        action=f"/comptes/{mc.account.id}/formation")
    assert response.status_code == 400 and "dans le futur" in response.get_data(as_text=True)
    reload(db_session, mc.account)
    assert mc.account.training_date == date.today() - timedelta(days=10)


def test_deactivation_ends_access_and_reactivation_restores_it(
        app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    auditor = make_account(db_session, cipher, Role.AUDITOR)
    operator = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    auditor_browser = logged_in(app, auditor)
    op_browser = logged_in(app, operator)
    page = f"/comptes/{auditor.account.id}"
    assert op_browser.submit(page, {"active": "0"}, action=f"{page}/activation").status_code == 302
    assert auditor_browser.get("/").status_code == 302  # the open session no longer works
    refused_login = Browser(app).submit("/connexion", {"email": auditor.email, "password": auditor.password,
                                                       "code": "000000"}, environ_base={"REMOTE_ADDR": "2001:db8::5"})
    assert refused_login.status_code == 401
    assert op_browser.submit(page, {"active": "0"}, action=f"{page}/activation").status_code == 409
    assert op_browser.submit(page, {"active": "1"}, action=f"{page}/activation").status_code == 302
    assert auditor_browser.login(auditor).status_code == 302  # same browser: it knows the codes already used
    assert auditor_browser.get("/").status_code == 200

    own = f"/comptes/{operator.account.id}"
    refused = op_browser.submit(own, {"active": "0"}, action=f"{own}/activation")
    assert refused.status_code == 400 and "propre compte" in html.unescape(refused.get_data(as_text=True))
    reload(db_session, operator.account)
    assert operator.account.active


def test_operator_resets_access_and_the_person_enrols_again(app, pki, db_session, cipher) -> None:  # type: ignore[no-untyped-def]
    from ra.models import Role, StaffAccount
    from tests.ra.web import Browser, make_account

    operator = make_account(db_session, cipher, Role.OPERATOR)
    auditor = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    browser = Browser(app)
    assert browser.login(operator).status_code == 302
    page = browser.submit(f"/comptes/{auditor.account.id}", {}, action=f"/comptes/{auditor.account.id}/acces")
    assert page.status_code == 200
    assert 'id="mot-de-passe-provisoire"' in page.get_data(as_text=True)
    with pki.factory() as session:
        account = session.get(StaffAccount, auditor.account.id)
        assert account is not None and not account.totp_enabled and account.totp_secret is None
        session.rollback()
    # the old password and code no longer open a session
    assert Browser(app).login(auditor).status_code == 401


def test_only_operators_reset_access(app, db_session, cipher) -> None:  # type: ignore[no-untyped-def]
    from ra.models import Role
    from tests.ra.web import Browser, make_account

    auditor = make_account(db_session, cipher, Role.AUDITOR)
    target = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    browser = Browser(app)
    assert browser.login(auditor).status_code == 302
    response = browser.submit("/", {}, action=f"/comptes/{target.account.id}/acces")
    assert response.status_code == 403
