"""Staff accounts (MC, AED, CA operators, auditors), their scope and API tokens."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Column, Date, ForeignKey, Integer, LargeBinary, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ra.db import Base, UTCDateTime, utcnow
from ra.models.entities import Entity


class Role(enum.StrEnum):
    MC = "mc"  # mandataire de certification: its own entity
    AED = "aed"  # autorité d'enregistrement déléguée: the entities in its scope
    OPERATOR = "operator"  # opérateur de l'AC
    AUDITOR = "auditor"


class DesignationStatus(enum.StrEnum):
    NONE = "none"  # not needed (operator, auditor) or not uploaded yet
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


aed_scope_entities = Table(
    "aed_scope_entities", Base.metadata,
    Column("staff_id", Integer, ForeignKey("staff_accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True),
)


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # the login
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(String(10))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted with the instance key
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # refuse a replayed code
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    training_date: Mapped[date | None] = mapped_column(Date)
    designation_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    designation_status: Mapped[DesignationStatus] = mapped_column(String(10), default=DesignationStatus.NONE)
    designation_decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    designation_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id"))  # MC: its entity
    scope_epci_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id"))  # AED: an EPCI's communes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    entity: Mapped[Entity | None] = relationship(foreign_keys=[entity_id])
    scope_epci: Mapped[Entity | None] = relationship(foreign_keys=[scope_epci_id])
    scope_entities: Mapped[list[Entity]] = relationship(secondary=aed_scope_entities)

    # flask-login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_officer(self) -> bool:
        return self.role in (Role.MC, Role.AED)


class ApiToken(Base):
    """A per-user bearer token for /api/v1. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))  # shown in lists to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    staff: Mapped[StaffAccount] = relationship()
