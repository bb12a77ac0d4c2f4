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

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ra.db import utcnow
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
    session: Session, *, actor: str, action: str, object_type: str, object_id: object,
    details: dict[str, object] | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        # Serialise appends: the chain has exactly one head.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = utcnow()
    body = canonical_details(details or {})
    event = AuditEvent(
        seq=seq, at=at, actor=actor, action=action, object_type=object_type,
        object_id=str(object_id), details=body, prev_hash=prev_hash,
    )
    event.hash = event_hash(
        seq=seq, at=at, actor=actor, action=action, object_type=object_type,
        object_id=str(object_id), details=body, prev_hash=prev_hash,
    )
    session.add(event)
    session.flush()
    return event


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
