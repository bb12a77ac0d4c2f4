"""French by default, English as the second locale (chosen with ?lang=, kept in the session)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from ra.fieldcrypt import FieldCipher
from ra.models import Role
from tests.ra.web import Browser, make_account


def test_login_page_is_french_by_default(app: Flask) -> None:
    html = app.test_client().get("/connexion").get_data(as_text=True)
    assert "Se connecter" in html and 'lang="fr"' in html


def test_english_is_chosen_and_kept(app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    browser = Browser(app)
    english = browser.get("/connexion?lang=en").get_data(as_text=True)
    assert "Log in" in english and 'lang="en"' in english
    assert browser.login(person).status_code == 302
    home = browser.get("/").get_data(as_text=True)
    assert "Audit log" in home and "Log out" in home
