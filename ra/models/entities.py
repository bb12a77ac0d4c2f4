"""Entities (public bodies, companies) and their convention d'adhésion."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ra.db import Base, UTCDateTime, utcnow


class EntityKind(enum.StrEnum):
    COMMUNE = "commune"
    CCAS = "ccas"
    EPCI = "epci"
    SYNDICAT = "syndicat"
    DEPARTEMENT = "departement"
    REGION = "region"
    AUTRE_PUBLIC = "autre_public"
    ENTREPRISE = "entreprise"


class EntityStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Entity(Base):
    __tablename__ = "entities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))  # official name, as in the certificate's O
    kind: Mapped[EntityKind] = mapped_column(String(20))
    siren: Mapped[str] = mapped_column(String(9), unique=True)
    siret: Mapped[str | None] = mapped_column(String(14))
    departement: Mapped[str] = mapped_column(String(3), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id"), index=True)  # EPCI
    status: Mapped[EntityStatus] = mapped_column(String(10), default=EntityStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Entity | None] = relationship(remote_side=[id])
    convention: Mapped[Convention | None] = relationship(back_populates="entity", uselist=False)


class ConventionStatus(enum.StrEnum):
    PENDING = "pending"  # uploaded, waiting for a CA operator
    APPROVED = "approved"
    REJECTED = "rejected"


class Convention(Base):
    """Convention d'adhésion: signed once per entity, before its first order."""

    __tablename__ = "conventions"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id"), unique=True)
    signed_on: Mapped[date] = mapped_column(Date)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    status: Mapped[ConventionStatus] = mapped_column(String(10), default=ConventionStatus.PENDING)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(500))

    entity: Mapped[Entity] = relationship(back_populates="convention")
