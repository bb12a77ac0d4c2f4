"""Staff login: password + TOTP through the real form, CSRF enforced."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ra.fieldcrypt import FieldCipher
from ra.models import Role
from tests.ra.web import Browser, csrf_token, make_account, make_entity


def test_login_with_password_and_totp_opens_the_home(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    entity = make_entity(db_session)
    person = make_account(db_session, cipher, Role.MC, entity=entity)
    db_session.commit()
    response = browser.login(person)
    assert response.status_code == 302
    home = browser.get("/")
    assert home.status_code == 200 and entity.name in home.get_data(as_text=True)


def test_wrong_totp_code_is_refused(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    page = browser.get("/connexion")
    response = browser.client.post("/connexion", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": person.email,
        "password": person.password, "code": "000000"})
    assert response.status_code == 401
    assert browser.get("/").status_code == 302  # still sent to the login page


def test_login_without_csrf_token_is_refused(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    response = browser.client.post("/connexion", data={
        "email": person.email, "password": person.password, "code": browser.totp_code(person)})
    assert response.status_code == 400
    assert browser.get("/").status_code == 302


def test_replayed_totp_code_is_refused(app, db_session: Session, cipher: FieldCipher) -> None:  # type: ignore[no-untyped-def]
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    first = Browser(app)
    assert first.login(person).status_code == 302
    code = first._steps[person.email]
    second = Browser(app)
    second._steps[person.email] = code - 1  # force the very same code again
    page = second.get("/connexion")
    import pyotp
    response = second.client.post("/connexion", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": person.email,
        "password": person.password, "code": pyotp.TOTP(person.totp_seed).at(code * 30)})
    assert response.status_code == 401
