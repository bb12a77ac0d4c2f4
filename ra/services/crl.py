"""Publishing a CRL: stream revoked rows from the database into the CA core's encoder.

Revocation is a row written by the RA; this job reads those rows with a server-side cursor
(never the whole list in memory), has the CA key sign the result and writes the DER file to
the publication folder atomically. The CRL number is taken under the authority's row lock, so
numbers only ever grow, even with several nodes publishing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ca.crl import CRLParameters, build_crl
from ca.signer import KeySigner
from ra import audit
from ra.authority import AuthorityRef, CertificationAuthority, load_authority
from ra.db import transaction, utcnow
from ra.errors import NotFound
from ra.models import CRL, Authority, Certificate

STREAM_BATCH = 20_000


def revoked_entries(session: Session, authority_id: int, at: datetime) -> Iterator[tuple]:
    """(serial, revocation date, reason, invalidity date) for every revoked, unexpired cert."""
    table = Certificate.__table__
    stmt = (
        select(table.c.serial, table.c.revoked_at, table.c.revocation_reason, table.c.invalidity_date)
        .where(table.c.authority_id == authority_id)
        .where(table.c.revoked_at.is_not(None))
        .where(table.c.not_after > at)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for serial, revoked_at, reason, invalidity in session.execute(stmt):
        yield int(serial, 16), revoked_at, reason, invalidity


def crl_filename(slug: str) -> str:
    return f"{slug}.crl"


def publish_crl(
    factory: sessionmaker[Session], ca: CertificationAuthority, slug: str, *,
    actor: str, publication_dir: Path, next_update_hours: int, now: datetime | None = None,
) -> CRL:
    now = (now or utcnow()).replace(microsecond=0)
    next_update = now + timedelta(hours=next_update_hours)

    with transaction(factory) as session:  # take the next number under the row lock
        authority = session.scalar(
            select(Authority).where(Authority.slug == slug).with_for_update()
        )
        if authority is None:
            raise NotFound(f"No certification authority {slug!r}: run `guichet init` first.")
        authority.crl_number += 1
        number = authority.crl_number
        ref = load_authority(session, slug)

    signer = KeySigner(ca.signing_key(ref))
    der, entries = _build(factory, ref, signer, number, now, next_update)
    digest = hashlib.sha256(der).hexdigest()
    write_atomically(publication_dir / crl_filename(slug), der)

    with transaction(factory) as session:
        crl = CRL(
            authority_id=ref.id, number=number, this_update=now, next_update=next_update,
            entries=entries, sha256=digest, size=len(der),
        )
        session.add(crl)
        audit.record(
            session, actor=actor, action="crl.publish", object_type="crl", object_id=f"{slug}#{number}",
            details={"entries": entries, "sha256": digest, "next_update": next_update.isoformat()},
        )
        return crl


def _build(
    factory: sessionmaker[Session], ref: AuthorityRef, signer: KeySigner, number: int,
    this_update: datetime, next_update: datetime,
) -> tuple[bytes, int]:
    cert = ref.certificate
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    params = CRLParameters(
        issuer_name=cert.subject.public_bytes(), authority_key_id=ski, crl_number=number,
        this_update=this_update, next_update=next_update,
    )
    counter = _Counter()
    with factory() as session:  # one read transaction: a consistent snapshot
        der = build_crl(params, counter.wrap(revoked_entries(session, ref.id, this_update)), signer)
    return der, counter.count


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def wrap(self, rows: Iterator[tuple]) -> Iterator[tuple]:
        for self.count, row in enumerate(rows, 1):  # noqa: B007
            yield row


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
