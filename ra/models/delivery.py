"""Delivery sessions, face-to-face identity checks, USB tokens and revocation requests."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ra.db import Base, UTCDateTime, utcnow
from ra.models.staff import StaffAccount


class SessionStatus(enum.StrEnum):
    PLANNED = "planned"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class DeliverySession(Base):
    """Session de remise: a date, a site, an operator (MC or AED), orders."""

    __tablename__ = "delivery_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_date: Mapped[date] = mapped_column(Date, index=True)
    site_address: Mapped[str] = mapped_column(String(300))
    on_site: Mapped[bool] = mapped_column(Boolean, default=True)  # at the entity: on-site fee
    operator_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    status: Mapped[SessionStatus] = mapped_column(String(10), default=SessionStatus.PLANNED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    operator: Mapped[StaffAccount] = relationship()


class IdDocumentType(enum.StrEnum):
    CNI = "cni"
    PASSEPORT = "passeport"
    TITRE_SEJOUR = "titre_sejour"


class IdentityCheck(Base):
    """Face-à-face: the operator checked the holder's ID in person."""

    __tablename__ = "identity_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("delivery_sessions.id"), index=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"))
    document_type: Mapped[IdDocumentType] = mapped_column(String(15))
    document_number: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted with the instance key
    document_expiry: Mapped[date] = mapped_column(Date)
    issuing_country: Mapped[str] = mapped_column(String(3))  # ISO 3166-1 alpha-3
    names_match: Mapped[bool] = mapped_column(Boolean)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenState(enum.StrEnum):
    BLANK = "blank"
    INITIALISED = "initialised"
    ACTIVE = "active"
    BLOCKED = "blocked"
    LOST = "lost"
    RETIRED = "retired"


class UsbToken(Base):
    """Support: a holder's USB token."""

    __tablename__ = "usb_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(100))
    state: Mapped[TokenState] = mapped_column(String(12), default=TokenState.BLANK)
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("holders.id"))
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id"))
    so_pin_escrow: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenEvent(Base):
    """One state change of a token, for its history."""

    __tablename__ = "token_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("usb_tokens.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RevocationRequestStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    REJECTED = "rejected"


class RevocationRequest(Base):
    """A request to revoke, from an MC/AED or the holder; a CA operator processes it."""

    __tablename__ = "revocation_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    reason: Mapped[int] = mapped_column(Integer)  # RFC 5280 CRLReason
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    requested_by_holder: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[RevocationRequestStatus] = mapped_column(String(10), default=RevocationRequestStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
