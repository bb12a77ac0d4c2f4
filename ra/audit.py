"""Write and verify the audit chain.

Every row carries the SHA-256 of the previous row's hash and its own canonical content, so a
changed, deleted or reordered row breaks the chain at that point. A row is written in the same
transaction as the change it records: if it cannot be written, the change is rolled back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from ra.db import utcnow
from ra.db_driver import DriverTransaction
from ra.models import AuditEvent

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x67756963  # "guic"


def canonical_details(details: dict[str, object]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(
    *, seq: int, at: datetime, actor: str, action: str, object_type: str, object_id: str,
    details: str, prev_hash: str,
) -> str:
    content = json.dumps(
        [seq, at.isoformat(), actor, action, object_type, object_id, details, prev_hash],
        separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(content.encode()).hexdigest()


def record(
    session: Session | DriverTransaction, *, actor: str, action: str, object_type: str, object_id: object,
    details: dict[str, object] | None = None,
) -> int:
    """Append one event to the chain inside the caller's transaction; return its sequence number.

    The row is written with a Core INSERT: the ORM unit of work costs more than the row.
    """
    dialect = session.get_bind().dialect if isinstance(session, Session) else session.dialect
    if dialect.name == "postgresql":
        # Serialise appends: the chain has exactly one head.
        session.execute(_ADVISORY_LOCK, {"k": _PG_LOCK_KEY})
    last = session.execute(_LAST).first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    row: dict[str, object] = dict(
        seq=seq, at=utcnow(), actor=actor, action=action, object_type=object_type,
        object_id=str(object_id), details=canonical_details(details or {}), prev_hash=prev_hash,
    )
    row["hash"] = event_hash(**row)  # type: ignore[arg-type]
    session.execute(_INSERT, row)
    return seq


_LAST = select(AuditEvent.__table__.c.seq, AuditEvent.__table__.c.hash).order_by(
    AuditEvent.__table__.c.seq.desc()).limit(1)
_INSERT = insert(AuditEvent.__table__)
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_broken_seq: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


def verify(session: Session) -> ChainReport:
    """Recompute the chain in sequence order; name the first row that does not hold."""
    prev_hash, expected_seq, rows = GENESIS, 1, 0
    result = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    for event in result.yield_per(1000):
        rows += 1
        if event.seq != expected_seq:
            return ChainReport(rows, event.seq, f"row {expected_seq} is missing before row {event.seq}")
        if event.prev_hash != prev_hash:
            return ChainReport(rows, event.seq, "previous-hash link does not match the row before")
        recomputed = event_hash(
            seq=event.seq, at=event.at, actor=event.actor, action=event.action,
            object_type=event.object_type, object_id=event.object_id, details=event.details,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            return ChainReport(rows, event.seq, "content does not match its hash")
        prev_hash, expected_seq = event.hash, expected_seq + 1
    return ChainReport(rows, None, None)
