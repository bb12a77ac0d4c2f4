"""Uploaded documents: the bytes are encrypted in the vault, the row keeps their identity."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ra.db import Base, UTCDateTime, utcnow


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    vault_id: Mapped[str] = mapped_column(String(32), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))  # of the plaintext
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(50))
    original_name: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id", use_alter=True))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retain_until: Mapped[date | None] = mapped_column(Date)  # set once the file's last cert expires
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DocumentKind(enum.StrEnum):
    HOLDER_ID = "holder_id"  # pièce d'identité du porteur
    REQUEST = "request"  # demande signée du représentant légal, contresignée par le porteur
    ENTITY_PROOF = "entity_proof"  # extrait SIRENE / Kbis de moins de 3 mois
    LEGAL_REP_ID = "legal_rep_id"  # pièce d'identité du représentant légal
    TERMS_OF_USE = "terms_of_use"  # conditions générales d'utilisation signées


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class DossierDocument(Base):
    """One supporting document of an order's dossier."""

    __tablename__ = "dossier_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[DocumentKind] = mapped_column(String(20))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    document_date: Mapped[date | None] = mapped_column(Date)  # signature / issue date on the paper
    review_status: Mapped[ReviewStatus] = mapped_column(String(10), default=ReviewStatus.PENDING)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    document: Mapped[Document] = relationship()
