"""Supporting documents of a dossier: content checks, encrypted storage, retention.

Identity documents are personal data: they are encrypted at rest (``vault``), accepted only
when their content is a plain PDF, JPEG or PNG (``sniff``), and kept until ``retention_end``.
Every read is audited by the caller; the errors below carry the document id it needs.
"""

from __future__ import annotations

from datetime import date

from ra.errors import InvalidInput, NotFound, RAError

__all__ = [
    "DocumentCorrupted",
    "DocumentError",
    "DocumentNotFound",
    "DocumentRejected",
    "RETENTION_YEARS",
    "retention_end",
]

RETENTION_YEARS = 7


class DocumentError(RAError):
    """Base of the document errors."""

    code = "document_error"


class DocumentRejected(DocumentError, InvalidInput):
    """An uploaded file is refused; ``code`` says why, ``message`` says it in French."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DocumentNotFound(DocumentError, NotFound):
    """No stored document has this id."""

    code = "document_not_found"

    def __init__(self, doc_id: str) -> None:
        super().__init__("Document introuvable.")
        self.doc_id = doc_id


class DocumentCorrupted(DocumentError):
    """A stored document fails authentication, its digest check or its format check."""

    http_status = 500
    code = "document_corrupted"

    def __init__(self, doc_id: str, reason: str) -> None:
        super().__init__("Le document stocké est illisible ou a été altéré.")
        self.doc_id = doc_id
        self.reason = reason


def retention_end(last_certificate_expiry: date, years: int = RETENTION_YEARS) -> date:
    """The day the dossier may be purged: ``years`` after its last certificate expires.

    A 29 February expiry lands on 28 February when the target year is not a leap year.
    """
    if isinstance(years, bool) or not isinstance(years, int) or years < 0:
        raise ValueError("The retention period must be a non-negative whole number of years.")
    year = last_certificate_expiry.year + years
    try:
        return last_certificate_expiry.replace(year=year)
    except ValueError:  # 29 February in a common year
        return last_certificate_expiry.replace(year=year, day=28)
