"""Staff accounts: creation, passwords (argon2id), TOTP second factor, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra import audit
from ra.db import utcnow
from ra.errors import InvalidInput
from ra.fieldcrypt import FieldCipher
from ra.models import ApiToken, DesignationStatus, Entity, Role, StaffAccount

HASHER = PasswordHasher()  # the one argon2id hasher of the RA (passwords, revocation codes)
TOTP_PURPOSE = "totp-secret"
MIN_PASSWORD = 12


@cache
def _dummy_hash() -> str:
    """A verification against this hash costs the same as a real one: no enumeration by timing."""
    return HASHER.hash(secrets.token_urlsafe(16))


def verify_or_dummy(stored: str | None, secret: str) -> bool:
    """``secret`` checked against ``stored``; with nothing stored, the same cost and False."""
    try:
        ok = HASHER.verify(stored or _dummy_hash(), secret)
    except (VerificationError, InvalidHashError):
        return False
    return ok and bool(stored)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"Le mot de passe doit compter au moins {MIN_PASSWORD} caractères.")
    return HASHER.hash(password)


def check_password(account: StaffAccount | None, password: str) -> bool:
    return verify_or_dummy(account.password_hash if account else None, password)


def new_totp_secret(account: StaffAccount, cipher: FieldCipher) -> str:
    """Draw a fresh TOTP seed for enrolment; it is stored encrypted and not yet enabled."""
    secret = pyotp.random_base32()
    account.totp_secret = cipher.encrypt(secret, purpose=TOTP_PURPOSE)
    account.totp_enabled = False
    account.totp_last_step = None
    return secret


def matching_step(seed: str, code: str, now: float) -> int | None:
    """The 30 s step (current or adjacent) whose 6-digit code is ``code``, or None."""
    code = (code or "").strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(seed)
    for drift in (0, -1, 1):
        step = int(now // totp.interval) + drift
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


def check_totp(account: StaffAccount, code: str, cipher: FieldCipher, *, at: float | None = None) -> bool:
    """A 6-digit code of the current (or adjacent) 30 s step, never the same step twice."""
    if account.totp_secret is None:
        return False
    seed = cipher.decrypt(account.totp_secret, purpose=TOTP_PURPOSE)
    step = matching_step(seed, code, at if at is not None else utcnow().timestamp())
    if step is None or (account.totp_last_step is not None and step <= account.totp_last_step):
        return False  # wrong, or replayed
    account.totp_last_step = step
    return True


@dataclass(frozen=True)
class NewAccount:
    email: str
    full_name: str
    role: Role
    password: str
    entity_id: int | None = None  # MC
    scope_epci_id: int | None = None  # AED
    scope_entity_ids: tuple[int, ...] = ()  # AED
    training_date: date | None = None


def create_account(session: Session, new: NewAccount, *, actor: str) -> StaffAccount:
    email = new.email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise InvalidInput("Adresse électronique invalide.")
    if session.scalar(select(func.count()).select_from(StaffAccount).where(StaffAccount.email == email)):
        raise InvalidInput("Un compte existe déjà avec cette adresse.")
    if new.role == Role.MC and new.entity_id is None:
        raise InvalidInput("Un mandataire de certification est rattaché à une entité.")
    if new.role == Role.AED and new.scope_epci_id is None and not new.scope_entity_ids:
        raise InvalidInput("Le périmètre d'une AED comprend au moins une entité ou un EPCI.")
    account = StaffAccount(
        email=email, full_name=new.full_name.strip(), role=new.role,
        password_hash=hash_password(new.password), entity_id=new.entity_id,
        scope_epci_id=new.scope_epci_id, training_date=new.training_date,
        designation_status=DesignationStatus.NONE,
    )
    if new.scope_entity_ids:
        account.scope_entities = list(session.scalars(select(Entity).where(Entity.id.in_(new.scope_entity_ids))))
    session.add(account)
    session.flush()
    audit.record(session, actor=actor, action="account.create", object_type="staff_account",
                 object_id=account.id, details={"email": email, "role": str(new.role)})
    return account


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, account: StaffAccount, name: str, *, actor: str) -> tuple[ApiToken, str]:
    """A new bearer token; the clear value is returned once and never stored."""
    name = name.strip()
    if not 0 < len(name) <= 100:
        raise InvalidInput("Donnez un nom au jeton (100 caractères au plus).")
    clear = "gch_" + secrets.token_urlsafe(32)
    token = ApiToken(staff_id=account.id, name=name, prefix=clear[:12], token_hash=hash_api_token(clear))
    session.add(token)
    session.flush()
    audit.record(session, actor=actor, action="api_token.create", object_type="api_token",
                 object_id=token.id, details={"name": name, "prefix": token.prefix})
    return token, clear


def revoke_api_token(session: Session, token: ApiToken, *, actor: str) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor=actor, action="api_token.revoke", object_type="api_token",
                     object_id=token.id, details={"prefix": token.prefix})


def account_for_api_token(session: Session, clear: str) -> StaffAccount | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_api_token(clear)))
    if token is None or token.revoked_at is not None or not token.staff.active:
        return None
    token.last_used_at = utcnow()
    return token.staff
