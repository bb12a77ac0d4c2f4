"""Certification authorities, certificates (from serial reservation on) and published CRLs."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ra.db import Base, UTCDateTime, utcnow


class Authority(Base):
    """A CA of the hierarchy: the offline root or the issuing CA. Its key stays on its token."""

    __tablename__ = "authorities"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("authorities.id"))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    token_label: Mapped[str] = mapped_column(String(32))
    key_label: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))  # hex CKA_ID
    key_spec: Mapped[str] = mapped_column(String(16))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    crl_number: Mapped[int] = mapped_column(Integer, default=0)  # last number used
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Authority | None] = relationship(remote_side=[id])


class CertificateState(enum.StrEnum):
    RESERVED = "reserved"  # serial reserved, what will be signed recorded, not signed yet
    FAILED = "failed"  # reservation abandoned: nothing was signed, the serial is burnt
    ISSUED = "issued"  # signed; validity/revocation is told by dates and revoked_at


class Certificate(Base):
    """A holder certificate, from the moment its serial is reserved."""

    __tablename__ = "certificates"
    __table_args__ = (
        Index("ix_certificates_revoked", "authority_id", "revoked_at"),
        Index("ix_certificates_not_after", "not_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id"))
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # lowercase hex
    state: Mapped[CertificateState] = mapped_column(String(16), default=CertificateState.RESERVED)
    profile: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(1000))  # RFC 4514, for display and search
    email: Mapped[str] = mapped_column(String(254))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    der: Mapped[bytes | None] = mapped_column(LargeBinary)
    failure: Mapped[str | None] = mapped_column(String(2000))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revocation_reason: Mapped[int | None] = mapped_column(Integer)
    invalidity_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", use_alter=True), index=True)
    revocation_code_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id

    authority: Mapped[Authority] = relationship()

    def status(self, now: datetime) -> str:
        """valid / revoked / expired for an issued certificate, else its reservation state."""
        if self.state != CertificateState.ISSUED:
            return str(self.state)
        if self.revoked_at is not None:
            return "revoked"
        if self.not_after <= now:
            return "expired"
        return "valid"


class CRL(Base):
    """A published CRL: its number, dates and digest. The DER file is in the publication dir."""

    __tablename__ = "crls"
    __table_args__ = (UniqueConstraint("authority_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id"))
    number: Mapped[int] = mapped_column(Integer)
    this_update: Mapped[datetime] = mapped_column(UTCDateTime)
    next_update: Mapped[datetime] = mapped_column(UTCDateTime)
    entries: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)

    authority: Mapped[Authority] = relationship()
