"""Publishing a CRL: stream revoked rows from the database into the CA core's encoder.

Revocation is a row written by the RA; this job reads those rows with a server-side cursor
(never the whole list in memory), has the CA key sign the result and writes the DER file to
the publication folder atomically. The CRL number is taken under the authority's row lock, so
numbers only ever grow, even with several nodes publishing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ca.crl import CRLParameters, write_crl
from ca.signer import KeySigner
from ra import audit
from ra.authority import CertificationAuthority, load_authority
from ra.db import read_session, transaction, utcnow
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


def crl_due(session: Session, slug: str, now: datetime, *, max_age: timedelta) -> str | None:
    """Why a new CRL should be published now (None if the last one is still current)."""
    authority = load_authority(session, slug)
    last = session.scalar(
        select(CRL).where(CRL.authority_id == authority.id).order_by(CRL.number.desc()).limit(1)
    )
    if last is None:
        return "no CRL published yet"
    if now - last.this_update >= max_age:
        return f"the last CRL (#{last.number}) is older than {max_age}"
    # thisUpdate is truncated to the second: a revocation in that same second may be in the CRL
    # or not; counting it as newer only publishes once more.
    newer = session.scalar(
        select(Certificate.serial).where(Certificate.authority_id == authority.id)
        .where(Certificate.revoked_at >= last.this_update).limit(1)
    )
    return f"certificates revoked since CRL #{last.number}" if newer else None


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
    params = CRLParameters.for_issuer(ref.certificate, number, now, next_update)
    path = publication_dir / crl_filename(slug)
    with atomic_file(path) as out, read_session(factory) as session:  # one snapshot
        summary = write_crl(params, revoked_entries(session, ref.id, now), signer, out)

    with transaction(factory) as session:
        crl = CRL(
            authority_id=ref.id, number=number, this_update=now, next_update=next_update,
            entries=summary.entry_count, sha256=summary.sha256, size=summary.size,
        )
        session.add(crl)
        audit.record(
            session, actor=actor, action="crl.publish", object_type="crl", object_id=f"{slug}#{number}",
            details={"entries": summary.entry_count, "sha256": summary.sha256,
                     "next_update": next_update.isoformat()},
        )
        return crl


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file that appears at ``path`` complete, or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    with atomic_file(path) as f:
        f.write(data)
