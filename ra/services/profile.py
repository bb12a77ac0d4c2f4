"""What staff members do on their own account: enrol the second factor, change the password,
manage their API tokens.

The seed being enrolled is not written to the account until a code from it is typed back: a
re-enrolment that is abandoned leaves the current second factor in place. Until then the web
layer keeps it sealed (encrypted with the instance key) in the session cookie.
"""

from __future__ import annotations

import base64

import pyotp
import segno
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra import audit
from ra.db import utcnow
from ra.errors import InvalidInput, NotFound
from ra.fieldcrypt import FieldCipher, FieldDecryptionError
from ra.models import ApiToken, StaffAccount
from ra.services.accounts import (
    MIN_PASSWORD, TOTP_PURPOSE, check_password, hash_password, matching_step, revoke_api_token,
)

ISSUER = "guichet"
PENDING_PURPOSE = "totp-enrolment-pending"


def draw_seed() -> str:
    """A fresh base32 TOTP seed (160 bits)."""
    return pyotp.random_base32()


def seal_seed(seed: str, cipher: FieldCipher) -> str:
    return base64.urlsafe_b64encode(cipher.encrypt(seed, purpose=PENDING_PURPOSE)).decode()


def open_seed(sealed: str, cipher: FieldCipher) -> str | None:
    """The seed sealed by ``seal_seed``, or None if it is not one."""
    try:
        return cipher.decrypt(base64.urlsafe_b64decode(sealed.encode()), purpose=PENDING_PURPOSE)
    except (ValueError, FieldDecryptionError):
        return None


def provisioning_uri(account: StaffAccount, seed: str) -> str:
    return pyotp.TOTP(seed).provisioning_uri(name=account.email, issuer_name=ISSUER)


def qr_svg(account: StaffAccount, seed: str) -> str:
    """The provisioning URI as an inline <svg> element (no external resource, CSP-safe)."""
    qr = segno.make(provisioning_uri(account, seed), error="m")
    return qr.svg_inline(scale=5, border=4, dark="#000", light="#fff",
                         title="Code QR d'enrôlement du second facteur")


def grouped(seed: str) -> str:
    """The seed in groups of four, for typing it by hand."""
    return " ".join(seed[i:i + 4] for i in range(0, len(seed), 4))


def enable_second_factor(session: Session, account: StaffAccount, seed: str, code: str,
                         cipher: FieldCipher, *, at: float | None = None) -> None:
    """Make ``seed`` the account's second factor if ``code`` comes from it; audited."""
    step = matching_step(seed, code, at if at is not None else utcnow().timestamp())
    if step is None:
        raise InvalidInput("Code incorrect : saisissez les six chiffres affichés par votre application.")
    replacing = bool(account.totp_enabled)
    account.totp_secret = cipher.encrypt(seed, purpose=TOTP_PURPOSE)
    account.totp_enabled = True
    account.totp_last_step = step  # this code cannot serve again to log in
    audit.record(session, actor=account.email, action="account.totp_enrol", object_type="staff_account",
                 object_id=account.id, details={"replaces_previous": replacing})


def change_password(session: Session, account: StaffAccount, current: str, new: str, confirmation: str) -> None:
    """Replace the password after checking the current one; audited (never the passwords)."""
    if not check_password(account, current):
        raise InvalidInput("Le mot de passe actuel est incorrect.")
    if new != confirmation:
        raise InvalidInput("Les deux saisies du nouveau mot de passe diffèrent.")
    if len(new) < MIN_PASSWORD:
        raise InvalidInput(f"Le mot de passe doit compter au moins {MIN_PASSWORD} caractères.")
    if new == current:
        raise InvalidInput("Le nouveau mot de passe doit différer de l'actuel.")
    account.password_hash = hash_password(new)
    audit.record(session, actor=account.email, action="account.password_change",
                 object_type="staff_account", object_id=account.id)


def api_tokens_of(session: Session, account: StaffAccount) -> list[ApiToken]:
    return list(session.scalars(
        select(ApiToken).where(ApiToken.staff_id == account.id).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_own_api_token(session: Session, account: StaffAccount, token_id: int) -> ApiToken:
    """Revoke one of the account's own tokens; another's is not found."""
    token = session.get(ApiToken, token_id)
    if token is None or token.staff_id != account.id:
        raise NotFound("Jeton d'API introuvable.")
    revoke_api_token(session, token, actor=account.email)
    return token
