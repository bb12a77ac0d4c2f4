"""A staff member's own account: TOTP enrolment, password change, API tokens, login rate limit."""

from __future__ import annotations

import itertools
import re
import secrets

import pyotp
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.db import utcnow
from ra.fieldcrypt import FieldCipher
from ra.models import ApiToken, AuditEvent, Role, StaffAccount
from ra.services.accounts import (
    TOTP_PURPOSE, NewAccount, account_for_api_token, check_password, create_account,
)
from ra.services.throttle import MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS
from tests.ra.web import PASSWORD, Browser, Person, csrf_token, make_account

_ip = itertools.count(1)
SECRET = re.compile(r'<code id="cle-totp">([A-Z2-7 ]+)</code>')
CLEAR_TOKEN = re.compile(r'<code id="jeton-api">(gch_[A-Za-z0-9_-]+)</code>')


def new_account(session: Session, role: Role = Role.AUDITOR) -> StaffAccount:
    """An account as an operator creates it: a password, no second factor yet."""
    account = create_account(session, NewAccount(
        email=f"premiere-{next(_ip)}-{utcnow().timestamp()}@example.fr", full_name="Nouvelle Personne",
        role=role, password=PASSWORD), actor="test")
    session.commit()
    return account


def unique_ip() -> str:
    """A documentation address (RFC 3849) per call, so rate-limit counters stay apart."""
    return f"2001:db8::{secrets.randbits(32):x}:{next(_ip):x}"


def log_in(browser: Browser, person: Person) -> None:
    """Log in through the form with the current step's code (the previous step's expires mid-request)."""
    browser._steps.setdefault(person.email, int(utcnow().timestamp() // 30) - 1)
    assert browser.login(person).status_code == 302


def post_login(browser: Browser, email: str, password: str, code: str = "", ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    page = browser.client.get("/connexion", environ_base={"REMOTE_ADDR": ip})
    return browser.client.post("/connexion", environ_base={"REMOTE_ADDR": ip}, data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": email, "password": password, "code": code})


def wrong_code(seed: str) -> str:
    """Six digits that are none of the codes of the steps around now."""
    totp, step = pyotp.TOTP(seed), int(utcnow().timestamp() // 30)
    valid = {totp.at((step + d) * 30) for d in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def reload(session: Session, obj: object) -> None:
    """Re-read a row, then end the transaction (on SQLite a reader would hold the write lock)."""
    session.refresh(obj)
    session.commit()


def audit_actions(session: Session, object_id: object) -> list[str]:
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(object_id))
                                   .order_by(AuditEvent.seq)))
    session.commit()
    return actions


# --- TOTP enrolment --------------------------------------------------------------------------

def test_first_login_enrols_the_second_factor_from_the_qr_page(browser: Browser, db_session: Session) -> None:
    account = new_account(db_session)
    response = post_login(browser, account.email, PASSWORD)
    assert response.status_code == 302 and response.location.endswith("/compte/second-facteur")
    assert browser.get("/").status_code == 302  # the password alone opens no session

    page = browser.get("/compte/second-facteur")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<svg" in html and 'class="segno"' in html and "http" not in html.split("<svg", 1)[1].split("</svg>")[0]
    seed = SECRET.search(html).group(1).replace(" ", "")  # type: ignore[union-attr]
    assert browser.get("/compte/second-facteur").get_data(as_text=True).count(SECRET.search(html).group(1)) == 1  # type: ignore[union-attr]

    refused = browser.submit("/compte/second-facteur", {"code": wrong_code(seed)})
    assert refused.status_code == 400 and "Code incorrect" in refused.get_data(as_text=True)
    reload(db_session, account)
    assert not account.totp_enabled and account.totp_secret is None
    assert browser.get("/").status_code == 302

    accepted = browser.submit("/compte/second-facteur", {"code": pyotp.TOTP(seed).now()})
    assert accepted.status_code == 302
    assert browser.get("/").status_code == 200
    reload(db_session, account)
    assert account.totp_enabled and account.totp_secret is not None
    assert audit_actions(db_session, account.id)[-2:] == ["account.totp_enrol", "auth.login"]

    # The stored seed is the one shown: a later code from it logs in from another browser.
    again = Browser(browser.app)
    again._steps[account.email] = account.totp_last_step  # type: ignore[assignment]
    assert again.login(Person(account, seed)).status_code == 302
    assert again.get("/").status_code == 200


def test_enrolment_page_needs_a_password_first(browser: Browser) -> None:
    response = browser.get("/compte/second-facteur")
    assert response.status_code == 302 and "/connexion" in response.location


def test_a_password_alone_never_replaces_an_enrolled_second_factor(
        browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    before = person.account.totp_secret
    with browser.client.session_transaction() as s:  # as if the enrolment step were reached anyway
        s["enrolment_account_id"] = person.account.id
        s["enrolment_until"] = int(utcnow().timestamp()) + 600
    assert browser.get("/compte/second-facteur").status_code == 302
    reload(db_session, person.account)
    assert person.account.totp_secret == before and person.account.totp_enabled


def test_logged_in_reenrolment_asks_the_password_and_keeps_the_old_factor_until_confirmed(
        browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    log_in(browser, person)
    html = browser.get("/compte/second-facteur").get_data(as_text=True)
    seed = SECRET.search(html).group(1).replace(" ", "")  # type: ignore[union-attr]
    old = person.account.totp_secret

    no_password = browser.submit("/compte/second-facteur", {"code": pyotp.TOTP(seed).now()})
    assert no_password.status_code == 400 and "mot de passe actuel est incorrect" in no_password.get_data(as_text=True)
    reload(db_session, person.account)
    assert person.account.totp_secret == old

    done = browser.submit("/compte/second-facteur", {"code": pyotp.TOTP(seed).now(), "password": PASSWORD})
    assert done.status_code == 302
    reload(db_session, person.account)
    assert person.account.totp_secret != old
    assert cipher.decrypt(person.account.totp_secret, purpose=TOTP_PURPOSE) == seed  # type: ignore[arg-type]
    assert audit_actions(db_session, person.account.id)[-1] == "account.totp_enrol"


# --- password ---------------------------------------------------------------------------------

def test_change_password(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    log_in(browser, person)
    new = "un nouveau mot de passe solide"
    cases = [
        ({"current_password": "pas le bon mot de passe", "new_password": new, "confirmation": new},
         "mot de passe actuel est incorrect"),
        ({"current_password": PASSWORD, "new_password": new, "confirmation": new + "x"}, "diffèrent"),
        ({"current_password": PASSWORD, "new_password": "court", "confirmation": "court"}, "au moins 12 caractères"),
    ]
    for data, message in cases:
        response = browser.submit("/compte", data, action="/compte/mot-de-passe")
        assert response.status_code == 400 and message in response.get_data(as_text=True)
        reload(db_session, person.account)
        assert check_password(person.account, PASSWORD)

    done = browser.submit("/compte", {"current_password": PASSWORD, "new_password": new, "confirmation": new},
                          action="/compte/mot-de-passe")
    assert done.status_code == 302
    reload(db_session, person.account)
    assert check_password(person.account, new) and not check_password(person.account, PASSWORD)
    assert audit_actions(db_session, person.account.id)[-1] == "account.password_change"


# --- API tokens -------------------------------------------------------------------------------

def test_api_token_is_shown_once_and_revocation_stops_it(
        browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    log_in(browser, person)
    created = browser.submit("/compte", {"token_name": "Poste de remise"}, action="/compte/jetons")
    assert created.status_code == 200
    clear = CLEAR_TOKEN.search(created.get_data(as_text=True)).group(1)  # type: ignore[union-attr]

    me = browser.client.get("/api/v1/me", headers={"Authorization": f"Bearer {clear}"})
    assert me.status_code == 200 and me.get_json()["email"] == person.email

    listing = browser.get("/compte").get_data(as_text=True)
    assert "Poste de remise" in listing and clear[:12] in listing and clear not in listing
    token = db_session.scalar(select(ApiToken).where(ApiToken.staff_id == person.account.id))
    db_session.commit()
    assert token is not None and token.token_hash != clear and token.last_used_at is not None

    revoked = browser.submit("/compte", {}, action=f"/compte/jetons/{token.id}/revocation")
    assert revoked.status_code == 302
    db_session.expire_all()  # re-read the token row the request changed
    assert account_for_api_token(db_session, clear) is None
    db_session.commit()
    assert browser.client.get("/api/v1/me", headers={"Authorization": f"Bearer {clear}"}).status_code == 401
    assert audit_actions(db_session, token.id)[-2:] == ["api_token.create", "api_token.revoke"]


def test_another_persons_token_cannot_be_revoked(app: Flask, db_session: Session, cipher: FieldCipher) -> None:
    owner, other = make_account(db_session, cipher, Role.AUDITOR), make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    first = Browser(app)
    log_in(first, owner)
    clear = CLEAR_TOKEN.search(first.submit("/compte", {"token_name": "à moi"}, action="/compte/jetons")
                               .get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    token = db_session.scalar(select(ApiToken).where(ApiToken.staff_id == owner.account.id))
    db_session.commit()
    second = Browser(app)
    log_in(second, other)
    assert second.submit("/compte", {}, action=f"/compte/jetons/{token.id}/revocation").status_code == 404  # type: ignore[union-attr]
    assert account_for_api_token(db_session, clear) is not None
    db_session.commit()


# --- login rate limit ------------------------------------------------------------------------

def test_sixth_attempt_is_refused_even_with_the_right_password(
        browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    ip = unique_ip()
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert post_login(browser, person.email, "mauvais mot de passe", ip=ip).status_code == 401
    refused = post_login(browser, person.email, PASSWORD, browser.totp_code(person), ip=ip)
    assert refused.status_code == 429
    assert "Trop de tentatives" in refused.get_data(as_text=True)
    assert browser.get("/").status_code == 302
    # Another address changes nothing: the account itself is protected.
    assert post_login(browser, person.email, PASSWORD, browser.totp_code(person), ip=unique_ip()).status_code == 429
    actions = audit_actions(db_session, person.email)
    assert actions.count("auth.login_failed") == MAX_FAILURES_PER_ACCOUNT and actions[-1] == "auth.login_throttled"


def test_wrong_totp_codes_count_as_failures(browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    ip = unique_ip()
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert post_login(browser, person.email, PASSWORD, wrong_code(person.totp_seed), ip=ip).status_code == 401
    assert post_login(browser, person.email, PASSWORD, browser.totp_code(person), ip=ip).status_code == 429


def test_one_address_is_refused_after_many_failures_on_any_accounts(
        browser: Browser, db_session: Session, cipher: FieldCipher) -> None:
    person = make_account(db_session, cipher, Role.AUDITOR)
    db_session.commit()
    ip = unique_ip()
    for n in range(MAX_FAILURES_PER_ADDRESS):
        assert post_login(browser, f"inconnu{n}-{ip}@example.fr", "devinette", ip=ip).status_code == 401
    assert post_login(browser, person.email, PASSWORD, browser.totp_code(person), ip=ip).status_code == 429
    # The same person from another address is not affected.
    assert post_login(browser, person.email, PASSWORD, browser.totp_code(person), ip=unique_ip()).status_code == 302


def test_a_very_long_email_is_refused_cleanly(browser: Browser) -> None:
    email = "a" * 240 + "@example.fr"
    assert post_login(browser, email, "quelconque", ip=unique_ip()).status_code == 401
