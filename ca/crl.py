"""Streaming CRL encoder: revoked rows in, signed DER CertificateList out (RFC 5280 §5).

pyca/cryptography's ``CertificateRevocationListBuilder`` needs every entry as a Python object
and grows quadratically; a CA with a million revoked certificates cannot use it. Here each
row (a plain tuple straight from a database cursor) is encoded to DER as it arrives and
appended to one ``bytearray``; nothing else is kept per entry. The TBSCertList is then hashed
piece by piece and the digest signed once, so the same code works with an HSM key.

Entry shape: ``(serial, revocation_date, reason_code_or_None, invalidity_date_or_None)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import IntEnum
from typing import BinaryIO

from asn1crypto import x509 as asn1_x509
from cryptography import x509

from ca import der
from ca.errors import CRLError
from ca.signer import KeySigner

MAX_SERIAL_OCTETS = 20  # RFC 5280 §4.1.2.2
CRL_NUMBER_LIMIT = 2**159  # RFC 5280 §5.2.3: at most 20 octets, non-negative
_TIME_CACHE_SIZE = 4096  # distinct datetimes remembered (a mass revocation shares a second)


class Reason(IntEnum):
    """RFC 5280 CRLReason codes (7 is not used)."""

    unspecified = 0
    key_compromise = 1
    ca_compromise = 2
    affiliation_changed = 3
    superseded = 4
    cessation_of_operation = 5
    certificate_hold = 6
    remove_from_crl = 8
    privilege_withdrawn = 9
    aa_compromise = 10

    @classmethod
    def from_name(cls, name: str) -> Reason:
        """The reason named as in RFC 5280 (``keyCompromise``) or in Python (``key_compromise``)."""
        reason = _REASONS_BY_FOLDED_NAME.get(name.replace("_", "").lower())
        if reason is None:
            raise ValueError(f"unknown CRL reason name {name!r}")
        return reason


_REASONS_BY_FOLDED_NAME = {r.name.replace("_", ""): r for r in Reason}


# --- DER building blocks ----------------------------------------------------------------------

def _der_integer(value: int) -> bytes:
    """A non-negative INTEGER (a leading zero octet when the top bit is set)."""
    return der.tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _extension(oid_der: bytes, value_der: bytes) -> bytes:
    """A non-critical Extension: extnID, extnValue (critical=FALSE is DEFAULT, so absent)."""
    return der.tlv(0x30, oid_der + der.tlv(0x04, value_der))


_OID_CRL_NUMBER = bytes.fromhex("0603551d14")
_OID_AUTHORITY_KEY_ID = bytes.fromhex("0603551d23")
_OID_REASON_CODE = bytes.fromhex("0603551d15")
_OID_INVALIDITY_DATE = bytes.fromhex("0603551d18")
_VERSION_V2 = bytes.fromhex("020101")

# Every entry is shorter than 128 octets (serial ≤ 22, time ≤ 17, extensions ≤ 40): its
# SEQUENCE header and the serial's INTEGER header are one table lookup each.
_SEQUENCE_HEADER = [bytes((0x30, n)) for n in range(128)]
_INTEGER_HEADER = [bytes((0x02, n)) for n in range(MAX_SERIAL_OCTETS + 1)]

# reason code → its Extension alone, and wrapped in the entry's Extensions SEQUENCE.
# removeFromCRL is left out: RFC 5280 §5.3.1 keeps it for delta CRLs, and these are full CRLs.
_REASON_EXTENSION: dict[int | None, bytes] = {
    int(r): _extension(_OID_REASON_CODE, bytes((0x0A, 0x01, r)))
    for r in Reason
    if r not in (Reason.unspecified, Reason.remove_from_crl)
}
_REASON_EXTENSIONS = {code: der.tlv(0x30, ext) for code, ext in _REASON_EXTENSION.items()}
for _absent in (None, 0):  # RFC 5280 §5.3.1: no reasonCode rather than unspecified (0)
    _REASON_EXTENSION[_absent] = _REASON_EXTENSIONS[_absent] = b""
# An invalidityDate Extension is this prefix followed by a 17-octet GeneralizedTime.
_INVALIDITY_PREFIX = _extension(_OID_INVALIDITY_DATE, b"\x00" * 17)[:-17]


_UTC = timezone.utc
_TWO_DIGITS = [b"%02d" % n for n in range(100)]


def _utc_fields(moment: datetime, what: str) -> datetime:
    """``moment`` with UTC fields; refuses anything but an aware datetime."""
    if not isinstance(moment, datetime):
        raise CRLError(f"{what} must be a datetime, not {type(moment).__name__}.")
    if moment.tzinfo is _UTC:
        return moment
    offset = moment.utcoffset()
    if offset is None:
        raise CRLError(f"{what} must be a timezone-aware datetime.")
    return moment - offset if offset else moment


def _time(moment: datetime, what: str) -> bytes:
    """RFC 5280 §4.1.2.5 Time: UTCTime for 1950–2049, GeneralizedTime otherwise; seconds, Z."""
    u = _utc_fields(moment, what)
    if not 1950 <= u.year < 2050:
        return _generalized_time(u)
    d = _TWO_DIGITS
    digits = (d[u.year % 100], d[u.month], d[u.day], d[u.hour], d[u.minute], d[u.second])
    return b"\x17\x0d" + b"".join(digits) + b"Z"


def _generalized_time(u: datetime) -> bytes:
    """A GeneralizedTime TLV from UTC fields (RFC 5280 §4.1.2.5.2: seconds, Z, no fraction)."""
    d = _TWO_DIGITS
    century, year = divmod(u.year, 100)
    digits = (d[century], d[year], d[u.month], d[u.day], d[u.hour], d[u.minute], d[u.second])
    return b"\x18\x0f" + b"".join(digits) + b"Z"


def _invalidity_extension(moment: datetime) -> bytes:
    """RFC 5280 §5.3.2: the invalidity date is always a GeneralizedTime."""
    return _INVALIDITY_PREFIX + _generalized_time(_utc_fields(moment, "invalidity date"))


# --- parameters -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CRLParameters:
    """Everything in a CRL except its entries and signature; checked when built."""

    issuer_name: bytes  # DER Name, byte-for-byte the subject of the CA certificate
    authority_key_id: bytes  # the CA certificate's subjectKeyIdentifier
    crl_number: int
    this_update: datetime
    next_update: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.issuer_name, bytes):
            raise CRLError("issuer_name must be the DER encoding of a Name, as bytes.")
        try:
            name = asn1_x509.Name.load(self.issuer_name, strict=True)
            name.native  # parses every attribute
            rdn_count = len(name.chosen)
        except (ValueError, TypeError) as exc:
            raise CRLError("issuer_name is not a DER-encoded Name.") from exc
        if rdn_count == 0:
            raise CRLError("issuer_name must not be empty (RFC 5280 §5.1.2.3).")
        if not isinstance(self.authority_key_id, bytes) or not self.authority_key_id:
            raise CRLError("authority_key_id must be non-empty bytes.")
        if isinstance(self.crl_number, bool) or not isinstance(self.crl_number, int):
            raise CRLError("crl_number must be an integer.")
        if not 0 <= self.crl_number < CRL_NUMBER_LIMIT:
            raise CRLError("crl_number must be at least 0 and fit in 20 octets (below 2**159).")
        this_update = _utc_fields(self.this_update, "this_update")
        next_update = _utc_fields(self.next_update, "next_update")
        if next_update.replace(microsecond=0) <= this_update.replace(microsecond=0):
            raise CRLError("next_update must be at least one second after this_update.")

    @classmethod
    def for_issuer(
        cls,
        ca_certificate: x509.Certificate,
        crl_number: int,
        this_update: datetime,
        next_update: datetime,
    ) -> CRLParameters:
        """Issuer name and key identifier read from the issuing CA's certificate."""
        tbs = asn1_x509.TbsCertificate.load(ca_certificate.tbs_certificate_bytes)
        try:
            ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            key_id = ski.value.digest
        except x509.ExtensionNotFound:
            key_id = x509.SubjectKeyIdentifier.from_public_key(ca_certificate.public_key()).digest
        return cls(tbs["subject"].dump(), key_id, crl_number, this_update, next_update)


@dataclass(frozen=True)
class CRLSummary:
    """What :func:`write_crl` wrote."""

    entry_count: int
    size: int  # octets of DER
    sha256: str  # hex digest of the DER, computed as it was written


# --- encoding ---------------------------------------------------------------------------------

def _reason_error(reason: object) -> CRLError:
    if reason == Reason.remove_from_crl:
        return CRLError("reason removeFromCRL belongs in delta CRLs only (RFC 5280 §5.3.1).")
    return CRLError(f"unknown reason code {reason!r}.")


def _encode_entries(entries: Iterable[tuple], body: bytearray) -> int:
    """Append one DER revokedCertificates element per entry to ``body``; return the count.

    The hot loop: table lookups and byte concatenation only, no object kept per entry.
    """
    sequence_header = _SEQUENCE_HEADER
    integer_header = _INTEGER_HEADER
    reason_alone = _REASON_EXTENSION
    reason_wrapped = _REASON_EXTENSIONS
    times: dict[datetime, bytes] = {}
    invalidities: dict[datetime, bytes] = {}
    count = 0
    try:
        for serial, revoked_at, reason, invalid_at in entries:
            if serial <= 0:
                raise CRLError(f"serial number {serial} is not positive.")
            size = (serial.bit_length() + 8) >> 3
            if size > MAX_SERIAL_OCTETS:
                raise CRLError("serial number is longer than 20 octets.")
            when = times.get(revoked_at)
            if when is None:
                when = _time(revoked_at, "revocation date")
                if len(times) >= _TIME_CACHE_SIZE:
                    times.clear()
                times[revoked_at] = when
            if invalid_at is None:
                extensions = reason_wrapped.get(reason)
                if extensions is None:
                    raise _reason_error(reason)
            else:
                extension = reason_alone.get(reason)
                if extension is None:
                    raise _reason_error(reason)
                invalidity = invalidities.get(invalid_at)
                if invalidity is None:
                    invalidity = _invalidity_extension(invalid_at)
                    if len(invalidities) >= _TIME_CACHE_SIZE:
                        invalidities.clear()
                    invalidities[invalid_at] = invalidity
                extension += invalidity
                extensions = sequence_header[len(extension)] + extension
            content = integer_header[size] + serial.to_bytes(size, "big") + when + extensions
            body += sequence_header[len(content)]
            body += content
            count += 1
    except CRLError as exc:
        raise CRLError(f"entry {count + 1}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise CRLError(
            f"entry {count + 1} is not a (serial, revocation date, reason, invalidity date) "
            "tuple of int, aware datetime, int or None, aware datetime or None."
        ) from exc
    return count


def _crl_extensions(params: CRLParameters) -> bytes:
    aki = _extension(_OID_AUTHORITY_KEY_ID, der.tlv(0x30, der.tlv(0x80, params.authority_key_id)))
    crl_number = _extension(_OID_CRL_NUMBER, _der_integer(params.crl_number))
    return der.tlv(0xA0, der.tlv(0x30, aki + crl_number))


def _signed_pieces(
    params: CRLParameters, entries: Iterable[tuple], signer: KeySigner
) -> tuple[list[bytes | memoryview], int]:
    """The DER CertificateList as a list of pieces to write or join, and the entry count."""
    algorithm = signer.algorithm.algorithm_identifier
    head = b"".join(
        (
            _VERSION_V2,
            algorithm,
            params.issuer_name,
            _time(params.this_update, "this_update"),
            _time(params.next_update, "next_update"),
        )
    )
    body = bytearray()
    count = _encode_entries(entries, body)
    # RFC 5280 §5.1.2.6: with no entry, revokedCertificates is absent, not an empty SEQUENCE.
    revoked_header = b"\x30" + der.length(len(body)) if count else b""
    tail = _crl_extensions(params)
    tbs_length = len(head) + len(revoked_header) + len(body) + len(tail)
    tbs_header = b"\x30" + der.length(tbs_length)
    tbs = [tbs_header, head, revoked_header, memoryview(body), tail]

    digest = signer.hasher()
    for piece in tbs:
        digest.update(piece)
    signature = der.tlv(0x03, b"\x00" + signer.sign_digest(digest.digest()))

    total = len(tbs_header) + tbs_length + len(algorithm) + len(signature)
    return [b"\x30" + der.length(total), *tbs, algorithm, signature], count


def build_crl(
    params: CRLParameters,
    entries: Iterable[tuple[int, datetime, int | None, datetime | None]],
    signer: KeySigner,
) -> bytes:
    """Encode and sign a v2 CRL; ``entries`` is consumed once, as it arrives."""
    pieces, _ = _signed_pieces(params, entries, signer)
    return b"".join(pieces)


def write_crl(
    params: CRLParameters,
    entries: Iterable[tuple[int, datetime, int | None, datetime | None]],
    signer: KeySigner,
    out: BinaryIO,
) -> CRLSummary:
    """Like :func:`build_crl`, but writes the DER to ``out`` without a second copy in memory."""
    pieces, count = _signed_pieces(params, entries, signer)
    size, digest = 0, hashlib.sha256()
    for piece in pieces:
        out.write(piece)
        digest.update(piece)
        size += len(piece)
    return CRLSummary(entry_count=count, size=size, sha256=digest.hexdigest())
