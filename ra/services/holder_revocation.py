"""A holder revokes their own certificate with the revocation code handed over at delivery.

No login: the serial and the code are the credential. A wrong code, an unknown serial or a
certificate without a code give the same answer and cost the same argon2 verification, so
the page tells nothing about which serials exist. Every failure is an audit row (without
the code); past a threshold of recent failures for a serial or an address, attempts are
refused before any check — the rate limit is read from the audit log, like the login one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra import audit
from ra.db import utcnow
from ra.errors import InvalidInput, RAError
from ra.models import Certificate, CertificateState, RevocationRequest, RevocationRequestStatus
from ra.services.accounts import verify_or_dummy
from ra.services.certificates import normalise_serial
from ra.services.enrolment import normalise_code
from ra.services.revocation import revoke_certificate
from ra.services.revocation_requests import check_revocable, lock_certificate, reason_for
from ra.services.throttle import recent_failures

HOLDER_ACTOR = "porteur"
HOLDER_REASONS = ("keyCompromise", "affiliationChanged", "cessationOfOperation", "superseded")
FAILED = "certificate.holder_revoke_failed"
WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5  # per serial and per address, within the window
GENERIC_REFUSAL = "Le numéro de série ou le code de révocation est incorrect."


class TooManyAttempts(RAError):
    http_status = 429
    code = "too_many_requests"


def _code_matches(cert: Certificate | None, code: str) -> bool:
    # same cost when there is nothing to check
    return verify_or_dummy(cert.revocation_code_hash if cert is not None else None, normalise_code(code))


def revoke_by_holder(
    session: Session, *, serial: str, code: str, reason_key: str, ip: str | None,
    now: datetime | None = None,
) -> Certificate | None:
    """Revoke at once with the right code; None (failure audited) otherwise. The caller commits.

    Raises ``TooManyAttempts`` (nothing written) past the threshold, ``InvalidInput`` for a
    malformed serial or reason, ``IllegalTransition`` if the certificate, proven by its code,
    is already revoked or expired.
    """
    now = now or utcnow()
    normalised = normalise_serial(serial)
    reason = reason_for(reason_key, HOLDER_REASONS)
    if not code or len(code) > 64:
        raise InvalidInput("Saisissez le code de révocation remis avec le certificat.")
    by_serial, by_address = recent_failures(session, FAILED, normalised, ip, since=now - WINDOW)
    if by_serial >= MAX_FAILURES or by_address >= MAX_FAILURES:
        raise TooManyAttempts("Trop de tentatives infructueuses : réessayez dans 15 minutes.")
    cert = session.scalar(select(Certificate).where(Certificate.serial == normalised)
                          .where(Certificate.state == CertificateState.ISSUED))
    if not _code_matches(cert, code):
        audit.record(session, actor=HOLDER_ACTOR, action=FAILED, object_type="certificate",
                     object_id=normalised[:100], details={"ip": ip or ""})
        return None
    assert cert is not None
    cert = lock_certificate(session, cert.id)
    check_revocable(cert, now)
    request = RevocationRequest(certificate_id=cert.id, reason=int(reason), requested_by_holder=True,
                                status=RevocationRequestStatus.PROCESSED, created_at=now, processed_at=now)
    session.add(request)
    session.flush()
    audit.record(session, actor=HOLDER_ACTOR, action="revocation_request.holder", object_type="revocation_request",
                 object_id=request.id, details={"certificate": cert.serial, "reason": reason.name, "ip": ip or ""})
    revoke_certificate(session, cert, reason=reason, actor=HOLDER_ACTOR, now=now)
    _close_pending(session, cert, request, now)
    return cert


def _close_pending(session: Session, cert: Certificate, done: RevocationRequest, now: datetime) -> None:
    """A staff request still waiting for this certificate has nothing left to do: close it."""
    for waiting in session.scalars(select(RevocationRequest).where(RevocationRequest.certificate_id == cert.id)
                                   .where(RevocationRequest.status == RevocationRequestStatus.PENDING)):
        waiting.status = RevocationRequestStatus.PROCESSED
        waiting.processed_at = now
        audit.record(session, actor=HOLDER_ACTOR, action="revocation_request.close",
                     object_type="revocation_request", object_id=waiting.id,
                     details={"certificate": cert.serial, "revoked_by_request": done.id})
