"""Holders and their orders (commandes), with the lifecycle of DESIGN.md."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ra.db import Base, UTCDateTime, utcnow
from ra.models.documents import DossierDocument
from ra.models.entities import Entity


class Holder(Base):
    """Porteur: a natural person, named as on the official ID."""

    __tablename__ = "holders"

    id: Mapped[int] = mapped_column(primary_key=True)
    surname: Mapped[str] = mapped_column(String(64))
    given_names: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254), index=True)
    title: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def display_name(self) -> str:
        return f"{self.given_names} {self.surname.upper()}"


class OrderState(enum.StrEnum):
    DRAFT = "draft"
    DOSSIER_COMPLETE = "dossier_complete"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    IDENTITY_VERIFIED = "identity_verified"
    ISSUED = "issued"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class TokenChoice(enum.StrEnum):
    NEW = "new"
    REUSE = "reuse"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    profile: Mapped[str] = mapped_column(String(64))
    token_choice: Mapped[TokenChoice] = mapped_column(String(10))
    reused_token_id: Mapped[int | None] = mapped_column(ForeignKey("usb_tokens.id"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("usb_tokens.id"))  # enrolled on
    state: Mapped[OrderState] = mapped_column(String(20), default=OrderState.DRAFT, index=True)
    ordered_on: Mapped[date] = mapped_column(Date)  # the order date (dossier and pricing rules)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivery_session_id: Mapped[int | None] = mapped_column(ForeignKey("delivery_sessions.id"), index=True)
    renewal_of_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    cancelled_reason: Mapped[str | None] = mapped_column(String(500))
    absent: Mapped[bool] = mapped_column(Boolean, default=False)  # holder absent at the session

    entity: Mapped[Entity] = relationship()
    holder: Mapped[Holder] = relationship()
    documents: Mapped[list[DossierDocument]] = relationship(order_by=DossierDocument.id)
