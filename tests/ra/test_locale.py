"""French by default, English as the second locale (chosen with ?lang=, kept in the session)."""

from __future__ import annotations

import gettext
import os
import shutil
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy.orm import Session

from ra import TRANSLATIONS
from ra.fieldcrypt import FieldCipher
from ra.models import Role
from ra.translations import compile_catalogues
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


def test_every_screen_string_and_label_has_an_english_translation() -> None:
    root = Path(__file__).resolve().parents[2]
    with open(root / "translations/en/LC_MESSAGES/messages.po", "rb") as f:
        catalog = read_po(f)
    missing = []
    found = [*extract_from_dir(root / "templates", method_map=[("**.html", "jinja2")]),
             *extract_from_dir(root / "ra", method_map=[("**.py", "python")])]  # labels marked N_
    assert len(found) > 400
    for _file, _line, message, _comments, _context in found:
        key = message if isinstance(message, str) else message[0]
        entry = catalog.get(message if isinstance(message, str) else message[0])
        if entry is None or not entry.string or not (entry.string if isinstance(entry.string, str) else entry.string[0]):
            missing.append(key)
    assert not missing, f"untranslated: {missing[:10]}"


def test_catalogues_are_compiled_when_missing_or_older_than_their_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    messages = tmp_path / "en" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    shutil.copy(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po", messages / "messages.po")
    mo = messages / "messages.mo"
    assert compile_catalogues(tmp_path) == [mo]
    english = gettext.GNUTranslations(mo.open("rb"))
    assert english.gettext("Se connecter") == "Log in"
    assert compile_catalogues(tmp_path) == []  # up to date: left alone
    os.utime(messages / "messages.po", (mo.stat().st_mtime + 10,) * 2)
    assert compile_catalogues(tmp_path) == [mo]  # the source changed
    assert [p.name for p in messages.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_english_lists_show_english_filters_and_states(app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.OPERATOR)
    db_session.commit()
    browser = Browser(app)
    browser.get("/connexion?lang=en")
    assert browser.login(person).status_code == 302
    orders = browser.get("/commandes/").get_data(as_text=True)
    for english in ("Holder or reference", ">Draft<", ">Identity verified<", ">Cancelled<"):
        assert english in orders
    assert "Brouillon" not in orders and "Porteur ou référence" not in orders
    staff = browser.get("/comptes").get_data(as_text=True)
    assert "Name or address" in staff and ">CA operator<" in staff and ">Deactivated<" in staff
