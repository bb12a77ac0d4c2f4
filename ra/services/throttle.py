"""Rate limits read from the audit log: no table of their own, nothing to clean up.

Every failed login already writes an ``auth.login_failed`` row (``object_id`` = the email
typed, ``details`` = canonical JSON holding ``"ip"``). Past a threshold of recent failures for
an email or for an address, the login form is refused before the password is even checked,
so a refusal says nothing about the password. The holder's revocation with a code counts its
failures the same way (:func:`recent_failures`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.db import utcnow
from ra.models import AuditEvent

FAILED_LOGIN = "auth.login_failed"
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
REFUSAL = "Trop de tentatives de connexion infructueuses : réessayez dans 15 minutes."


@dataclass(frozen=True)
class LoginPressure:
    """Failed logins within the window, for the email typed and for the client address."""

    account_failures: int
    address_failures: int

    @property
    def refused(self) -> bool:
        return (self.account_failures >= MAX_FAILURES_PER_ACCOUNT
                or self.address_failures >= MAX_FAILURES_PER_ADDRESS)


def audit_key(email: str) -> str:
    """The email as a failed login's ``object_id`` records it (the column holds 100 characters)."""
    return email[:100]


def _ip_fragment(ip: str) -> str:
    """The exact text ``"ip":"<ip>"`` takes in a row's canonical JSON details."""
    return f'"ip":{json.dumps(ip, ensure_ascii=False)}'


def recent_failures(session: Session, action: str, object_id: str, ip: str | None, *,
                    since: datetime) -> tuple[int, int]:
    """Audit rows ``action`` since ``since``: (about ``object_id``, from the address ``ip``)."""
    recent = (select(func.count()).select_from(AuditEvent)
              .where(AuditEvent.action == action, AuditEvent.at >= since))
    by_object = session.scalar(recent.where(AuditEvent.object_id == object_id[:100])) or 0
    by_address = 0
    if ip:
        # Canonical JSON (sorted keys, no blanks) makes this substring exact: the closing quote
        # stops 10.0.0.1 from matching 10.0.0.12.
        by_address = session.scalar(
            recent.where(AuditEvent.details.contains(_ip_fragment(ip), autoescape=True))) or 0
    return by_object, by_address


def login_pressure(session: Session, email: str, ip: str | None, *, now: datetime | None = None) -> LoginPressure:
    return LoginPressure(*recent_failures(session, FAILED_LOGIN, audit_key(email), ip,
                                          since=(now or utcnow()) - WINDOW))
