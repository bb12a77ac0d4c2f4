"""``guichet init``: schema, then the key ceremony and the first CRLs, once per instance."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from ca.ceremony import CeremonyPlan, GeneratedCA, create_issuing, create_root, load_plan
from ca.token import Token, initialize_token, list_tokens
from ra import audit
from ra.config import (
    DEV_PINS_FILE, ISSUING_SLUG, PIN_VARIABLES, ROOT_SLUG, ConfigError, Settings, load_dev_pins,
)
from ra.db import transaction, utcnow
from ra.errors import IllegalTransition
from ra.instance import Instance
from ra.migrations import upgrade_database
from ra.models import Authority, Certificate, CertificateState
from ra.services.crl import publish_crl, write_atomically

@dataclass(frozen=True)
class InitReport:
    created: bool
    authorities: tuple[str, ...]


def ensure_dev_pins(settings: Settings) -> Path | None:
    """SoftHSM development instance only: make random token PINs once, in a 0600 file.

    A production instance sets the PIN variables from its secret store; nothing is written.
    """
    if not settings.uses_softhsm or all(os.environ.get(v) for v in PIN_VARIABLES):
        return None
    path = settings.instance / DEV_PINS_FILE
    if not path.exists():
        settings.instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            for variable in PIN_VARIABLES:
                f.write(f"{variable}={secrets.randbelow(10**8):08d}\n")
    load_dev_pins(settings.instance)
    return path


def _so_pin(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"{variable} is not set: it holds the security-officer PIN of a new token.")
    return value


def initialise(instance: Instance, *, plan_path: Path | None = None, create_tokens: bool = True) -> InitReport:
    settings = instance.settings
    upgrade_database(settings.database_url)
    with instance.factory() as session:
        existing = session.scalars(select(Authority.slug)).all()
    if existing:
        return InitReport(False, tuple(existing))

    plan = load_plan(plan_path, policy_oid=settings.policy_oid)
    labels = {t.label for t in list_tokens(settings.pkcs11_module)}
    if create_tokens:
        for label in (settings.root_token_label, settings.ca_token_label):
            if label in labels:
                raise IllegalTransition(
                    f"A token labelled {label!r} already exists: a ceremony never overwrites a CA."
                )
        initialize_token(settings.pkcs11_module, label=settings.root_token_label,
                         so_pin=_so_pin("GUICHET_ROOT_SO_PIN"), user_pin=settings.root_pin())
        initialize_token(settings.pkcs11_module, label=settings.ca_token_label,
                         so_pin=_so_pin("GUICHET_CA_SO_PIN"), user_pin=settings.ca_pin())

    root, issuing = _ceremony(settings, plan)
    _record(instance, plan, root, issuing)
    for generated, slug in ((root, ROOT_SLUG), (issuing, ISSUING_SLUG)):
        write_atomically(settings.publication_dir / f"{slug}.crt", generated.certificate_der)
    for slug, hours in ((ROOT_SLUG, 24 * 365), (ISSUING_SLUG, settings.crl_next_update_hours)):
        publish_crl(instance.factory, instance.ca, slug, actor="ceremony",
                    publication_dir=settings.publication_dir, next_update_hours=hours)
    return InitReport(True, (ROOT_SLUG, ISSUING_SLUG))


def _ceremony(settings: Settings, plan: CeremonyPlan) -> tuple[GeneratedCA, GeneratedCA]:
    now = utcnow().replace(microsecond=0)
    root_token = Token.open(settings.pkcs11_module, label=settings.root_token_label)
    ca_token = Token.open(settings.pkcs11_module, label=settings.ca_token_label)
    with root_token.session(user_pin=settings.root_pin()) as root_session:
        root = create_root(root_session, plan, now)
        root_session.store_certificate(root.certificate_der, label=root.key_label, key_id=root.key_id)
        root_key = root_session.private_key(key_id=root.key_id)
        with ca_token.session(user_pin=settings.ca_pin()) as ca_session:
            issuing = create_issuing(
                ca_session, plan, now, root_key=root_key, root_certificate=root.certificate,
                root_crl_url=settings.url_for_pki(f"{ROOT_SLUG}.crl"),
                root_certificate_url=settings.url_for_pki(f"{ROOT_SLUG}.crt"),
            )
            ca_session.store_certificate(
                issuing.certificate_der, label=issuing.key_label, key_id=issuing.key_id
            )
    return root, issuing


def _record(instance: Instance, plan: CeremonyPlan, root: GeneratedCA, issuing: GeneratedCA) -> None:
    settings = instance.settings
    with transaction(instance.factory) as session:
        if session.scalar(select(func.count()).select_from(Authority)):
            raise IllegalTransition("The instance was initialised meanwhile by another process.")
        rows = {}
        for slug, generated, spec, token_label, parent in (
            (ROOT_SLUG, root, plan.root, settings.root_token_label, None),
            (ISSUING_SLUG, issuing, plan.issuing, settings.ca_token_label, ROOT_SLUG),
        ):
            cert = generated.certificate
            row = Authority(
                slug=slug, name=spec.common_name, certificate_der=generated.certificate_der,
                token_label=token_label, key_label=generated.key_label, key_id=generated.key_id.hex(),
                key_spec=str(spec.key), not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc, crl_number=0,
                parent=rows.get(parent) if parent else None,
            )
            session.add(row)
            session.flush()
            rows[slug] = row
            audit.record(session, actor="ceremony", action="ca.create", object_type="authority",
                         object_id=slug, details={"subject": cert.subject.rfc4514_string(),
                                                  "key": str(spec.key), "serial": format(cert.serial_number, "x")})
        # The issuing CA's certificate is one the root issued: it can be revoked (ARL).
        cert = issuing.certificate
        session.add(Certificate(
            authority_id=rows[ROOT_SLUG].id, serial=format(cert.serial_number, "x"),
            state=CertificateState.ISSUED, profile="ca-issuing",
            subject=cert.subject.rfc4514_string(), email="",
            public_key_der=cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            issued_at=utcnow(), der=issuing.certificate_der,
        ))

