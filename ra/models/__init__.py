"""Typed SQLAlchemy 2 models. Importing this package registers every table on ``Base``."""

from ra.models.audit import AuditEvent
from ra.models.pki import CRL, Authority, Certificate, CertificateState

__all__ = ["AuditEvent", "Authority", "CRL", "Certificate", "CertificateState"]
