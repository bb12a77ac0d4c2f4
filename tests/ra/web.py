"""Real objects for web and service tests: entities, staff accounts, a logged-in browser.

Login goes through the real form (password + TOTP code computed from the account's seed),
with the CSRF token read from the page, exactly as a person's browser does it.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from ra.db import utcnow
from ra.fieldcrypt import FieldCipher
from ra.models import (
    Convention, ConventionStatus, DesignationStatus, Document, Entity, EntityKind, Role, StaffAccount,
)
from ra.services.accounts import NewAccount, create_account, new_totp_secret

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)
_rng = random.Random()


def luhn_complete(digits: str) -> str:
    """Append the Luhn check digit."""
    for d in "0123456789":
        candidate = digits + d
        total = 0
        for i, c in enumerate(reversed(candidate)):
            n = int(c) * (2 if i % 2 else 1)
            total += n - 9 if n > 9 else n
        if total % 10 == 0:
            return candidate
    raise AssertionError


_sirens = itertools.count(_rng.randrange(900_000))  # consecutive: random draws collided (1 run in 4)


def unique_siren() -> str:
    """A SIREN no other call of this process returns (29xxxxxx: no fixed test SIREN starts so)."""
    return luhn_complete(f"29{next(_sirens):06d}")


def make_entity(
    session: Session, name: str | None = None, *, kind: EntityKind = EntityKind.COMMUNE,
    departement: str = "22", parent: Entity | None = None, convention: bool = True,
) -> Entity:
    entity = Entity(name=name or f"COMMUNE TEST {next(_counter)}", kind=kind, siren=unique_siren(),
                    departement=departement, parent_id=parent.id if parent else None)
    session.add(entity)
    session.flush()
    if convention:
        doc = Document(vault_id=f"{next(_counter):032x}", sha256="0" * 64, size=1,
                       media_type="application/pdf", original_name="convention.pdf")
        session.add(doc)
        session.flush()
        session.add(Convention(entity_id=entity.id, signed_on=date.today() - timedelta(days=30),
                               document_id=doc.id, status=ConventionStatus.APPROVED,
                               decided_at=utcnow()))
        session.flush()
    return entity


@dataclass
class Person:
    account: StaffAccount
    totp_seed: str
    password: str = PASSWORD

    @property
    def email(self) -> str:
        return self.account.email


def make_account(
    session: Session, cipher: FieldCipher, role: Role, *, entity: Entity | None = None,
    epci: Entity | None = None, scope: tuple[Entity, ...] = (), qualified: bool = True,
    name: str | None = None,
) -> Person:
    n = next(_counter)
    account = create_account(session, NewAccount(
        email=f"{role}{n}-{_rng.randrange(10**6)}@example.fr", full_name=name or f"Agent {role} {n}",
        role=role, password=PASSWORD, entity_id=entity.id if entity else None,
        scope_epci_id=epci.id if epci else None, scope_entity_ids=tuple(e.id for e in scope),
        training_date=date.today() - timedelta(days=60) if qualified else None,
    ), actor="test")
    if qualified and account.is_officer:
        account.designation_status = DesignationStatus.APPROVED
    seed = new_totp_secret(account, cipher)
    account.totp_enabled = True
    session.flush()
    return Person(account, seed)


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


class Browser:
    """A test client that logs in through the real form and sends forms with their CSRF token."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self._steps: dict[str, int] = {}

    def totp_code(self, person: Person) -> str:
        totp = pyotp.TOTP(person.totp_seed)
        now_step = int(utcnow().timestamp() // 30)
        last = self._steps.get(person.email, -1)
        for step in (now_step, now_step + 1, now_step - 1):
            if step > last:
                self._steps[person.email] = step
                return totp.at(step * 30)
        raise AssertionError("three logins in one TOTP step: use another account")

    def login(self, person: Person) -> TestResponse:
        page = self.client.get("/connexion")
        return self.client.post("/connexion", data={
            "csrf_token": csrf_token(page.get_data(as_text=True)), "email": person.email,
            "password": person.password, "code": self.totp_code(person),
        })

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self.client.get(url, **kwargs)

    def submit(self, page_url: str, data: dict[str, Any], *, action: str | None = None,
               **kwargs: Any) -> TestResponse:
        """GET the page holding the form, then POST ``data`` with its CSRF token."""
        page = self.client.get(page_url)
        data = {"csrf_token": csrf_token(page.get_data(as_text=True)), **data}
        return self.client.post(action or page_url, data=data, **kwargs)
