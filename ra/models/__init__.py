"""Typed SQLAlchemy 2 models. Importing this package registers every table on ``Base``."""

from ra.models.audit import AuditEvent
from ra.models.delivery import (
    DeliverySession, IdDocumentType, IdentityCheck, RevocationRequest, RevocationRequestStatus,
    SessionStatus, TokenEvent, TokenState, UsbToken,
)
from ra.models.documents import Document, DocumentKind, DossierDocument, ReviewStatus
from ra.models.entities import Convention, ConventionStatus, Entity, EntityKind, EntityStatus
from ra.models.orders import Holder, Order, OrderState, TokenChoice
from ra.models.pki import CRL, Authority, Certificate, CertificateState
from ra.models.staff import ApiToken, DesignationStatus, Role, StaffAccount, aed_scope_entities

__all__ = [
    "ApiToken", "AuditEvent", "Authority", "CRL", "Certificate", "CertificateState", "Convention",
    "ConventionStatus", "DeliverySession", "DesignationStatus", "Document", "DocumentKind",
    "DossierDocument", "Entity", "EntityKind", "EntityStatus", "Holder", "IdDocumentType",
    "IdentityCheck", "Order", "OrderState", "ReviewStatus", "RevocationRequest",
    "RevocationRequestStatus", "Role", "SessionStatus", "StaffAccount", "TokenChoice", "TokenEvent",
    "TokenState", "UsbToken", "aed_scope_entities",
]
