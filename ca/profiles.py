"""RGS** entité certificate profiles, the holder's subject, and the checks on a request.

The subject is built from the RA's validated data (:class:`HolderSubject`), never from the
CSR: the CSR only proves possession of the key it carries.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca.errors import RequestError

# --- identifiers of the SIRENE register ----------------------------------------------------

LA_POSTE_SIREN = "356000000"
LA_POSTE_HEAD_OFFICE_SIRET = "35600000000048"


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` (ASCII digits only, at least one) passes the Luhn check."""
    if not digits or not (digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def check_siren(siren: str) -> str:
    """Return ``siren`` if it is 9 ASCII digits passing the Luhn check, else raise RequestError."""
    if not isinstance(siren, str) or len(siren) != 9 or not (siren.isascii() and siren.isdigit()):
        raise RequestError(f"the SIREN must be 9 digits, not {siren!r}")
    if not luhn_valid(siren):
        raise RequestError(f"the SIREN {siren} fails its check digit (Luhn)")
    return siren


def check_siret(siret: str) -> str:
    """Return ``siret`` if it is a valid 14-digit SIRET, else raise RequestError.

    La Poste's establishments (SIREN 356000000, head office excepted) are numbered so that
    the sum of the 14 digits is a multiple of 5 instead of passing the Luhn check.
    """
    if not isinstance(siret, str) or len(siret) != 14 or not (siret.isascii() and siret.isdigit()):
        raise RequestError(f"the SIRET must be 14 digits, not {siret!r}")
    check_siren(siret[:9])
    if siret.startswith(LA_POSTE_SIREN) and siret != LA_POSTE_HEAD_OFFICE_SIRET:
        valid = sum(int(c) for c in siret) % 5 == 0
    else:
        valid = luhn_valid(siret)
    if not valid:
        raise RequestError(f"the SIRET {siret} fails its check digit")
    return siret


# --- the holder's subject -------------------------------------------------------------------

# X.520 / RFC 5280 upper bounds that pkilint's ASN.1 decoding enforces (pyasn1_alt_modules
# rfc5280): ub-organization-name, ub-common-name, ub-title = 64. givenName and surname are
# X520name (ub-name = 32768): the bound that binds them is the CN "<given> <SURNAME>" <= 64.
UB_ORGANIZATION_NAME = 64
UB_COMMON_NAME = 64
UB_TITLE = 64
MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit; the local part is at most 64

_LETTER = "A-Za-zÀ-ÖØ-öø-ÿŒœŸ"
# Names as on an ID document: letter runs joined by one space, hyphen or apostrophe.
# No comma, digit, '=' or '+': "DUBOIS, O=Evil" is refused outright.
_PERSON_NAME_RE = re.compile(rf"[{_LETTER}]+(?:[ '’-][{_LETTER}]+)*")
# Official entity names and titles also carry digits and some punctuation; a comma is
# accepted because the value always stays one attribute value.
_FREE_TEXT_RE = re.compile(rf"[{_LETTER}0-9(](?:[{_LETTER}0-9 '’.,()&/-]*[{_LETTER}0-9.)])?")
_EMAIL_RE = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


def _check_text(field: str, value: object, pattern: re.Pattern[str], upper_bound: int) -> None:
    if not isinstance(value, str) or not value:
        raise RequestError(f"the {field} must be a non-empty string")
    if len(value) > upper_bound:
        raise RequestError(f"the {field} is {len(value)} characters long, at most {upper_bound} allowed")
    if not pattern.fullmatch(value) or "  " in value:
        raise RequestError(f"the {field} {value!r} contains characters or punctuation not allowed")


@dataclass(frozen=True, kw_only=True)
class HolderSubject:
    """The holder and entity named in a certificate, as validated by the RA."""

    organization: str  # official name of the entité
    siren: str
    siret: str | None = None
    given_names: str  # as on the ID document, e.g. "Anne-Marie Jeanne"
    surname: str
    email: str
    title: str | None = None

    def __post_init__(self) -> None:
        _check_text("organization name", self.organization, _FREE_TEXT_RE, UB_ORGANIZATION_NAME)
        check_siren(self.siren)
        if self.siret is not None:
            check_siret(self.siret)
            if not self.siret.startswith(self.siren):
                raise RequestError(f"the SIRET {self.siret} does not start with the SIREN {self.siren}")
        _check_text("given names", self.given_names, _PERSON_NAME_RE, UB_COMMON_NAME)
        _check_text("surname", self.surname, _PERSON_NAME_RE, UB_COMMON_NAME)
        if len(self.common_name) > UB_COMMON_NAME:
            raise RequestError(
                f"the common name {self.common_name!r} is {len(self.common_name)} characters long, "
                f"at most {UB_COMMON_NAME} allowed"
            )
        check_email(self.email)
        if self.title is not None:
            _check_text("title", self.title, _FREE_TEXT_RE, UB_TITLE)

    @property
    def common_name(self) -> str:
        return f"{self.given_names} {self.surname.upper()}"

    @property
    def organizational_unit(self) -> str:
        """``0002 <SIRET or SIREN>``: ISO 6523 ICD 0002 is the SIRENE register."""
        return f"0002 {self.siret or self.siren}"

    @property
    def organization_identifier(self) -> str:
        return f"NTRFR-{self.siren}"

    def to_name(self) -> x509.Name:
        """The certificate subject: C (PrintableString), then UTF8String attributes."""
        attributes = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, self.organization_identifier),
            x509.NameAttribute(NameOID.GIVEN_NAME, self.given_names),
            x509.NameAttribute(NameOID.SURNAME, self.surname),
            x509.NameAttribute(NameOID.COMMON_NAME, self.common_name),
        ]
        if self.title is not None:
            attributes.append(x509.NameAttribute(NameOID.TITLE, self.title))
        return x509.Name(attributes)


def check_email(email: object) -> str:
    """Return ``email`` if it is an ASCII addr-spec (dot-atom local part, DNS domain)."""
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH:
        raise RequestError(f"the email address must be a string of at most {MAX_EMAIL_LENGTH} characters")
    match = _EMAIL_RE.fullmatch(email)
    if match is None or len(match["local"]) > 64:
        raise RequestError(f"the email address {email!r} is not a valid address")
    return email


# --- profiles -------------------------------------------------------------------------------

class Usage(enum.Enum):
    DOUBLE = "double"
    AUTHENTICATION = "authentication"
    SIGNATURE = "signature"


MAX_VALIDITY = dt.timedelta(days=1096)  # 3 years, a leap day included


@dataclass(frozen=True)
class Profile:
    """A holder certificate profile: everything but the key usage bits is DESIGN.md's table."""

    name: str
    usage: Usage
    label_fr: str
    digital_signature: bool
    non_repudiation: bool
    key_encipherment: bool = False  # never set by an RGS** entité profile; lint refuses it
    max_validity: dt.timedelta = MAX_VALIDITY

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a profile needs a name")
        if not (self.digital_signature or self.non_repudiation or self.key_encipherment):
            raise ValueError(f"profile {self.name} sets no key usage bit")
        if not dt.timedelta(0) < self.max_validity:
            raise ValueError(f"profile {self.name} has a non-positive maximum validity")

    def key_usage(self) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=self.digital_signature,
            content_commitment=self.non_repudiation,
            key_encipherment=self.key_encipherment,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("rgs2-entite-double", Usage.DOUBLE,
                "RGS** entité, double usage (authentification et signature)", True, True),
        Profile("rgs2-entite-authentification", Usage.AUTHENTICATION,
                "RGS** entité, authentification", True, False),
        Profile("rgs2-entite-signature", Usage.SIGNATURE,
                "RGS** entité, signature", False, True),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise RequestError(f"unknown certificate profile {name!r}") from None


# --- CSR and public key checks --------------------------------------------------------------

EXTENSION_REQUEST_OID = "1.2.840.113549.1.9.14"  # PKCS#9 extensionRequest
RSA_2048_LAST_NOT_AFTER = dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1)


def check_public_key(public_key: object, *, not_after: dt.datetime) -> None:
    """Refuse a holder key the RGS** rules do not allow for a certificate ending at ``not_after``."""
    if not_after.tzinfo is None or not_after.utcoffset() is None:
        raise ValueError("not_after must be a timezone-aware datetime")
    if isinstance(public_key, rsa.RSAPublicKey):
        minimum = 2048 if not_after <= RSA_2048_LAST_NOT_AFTER else 3072
        if public_key.key_size < minimum:
            raise RequestError(
                f"RSA key of {public_key.key_size} bits refused: at least {minimum} bits for a "
                f"certificate ending {not_after:%Y-%m-%d}"
            )
        exponent = public_key.public_numbers().e
        if exponent != 65537:
            raise RequestError(f"RSA key with public exponent {exponent} refused: 65537 required")
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ALLOWED_CURVES):
            raise RequestError(
                f"EC key on curve {public_key.curve.name} ({public_key.curve.key_size} bits) refused: "
                "P-256 or P-384 only"
            )
    else:
        raise RequestError(f"{type(public_key).__name__} key refused: RSA or ECDSA P-256/P-384 only")


def parse_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Load a PEM or DER PKCS#10 request and check it is a bare proof of possession.

    The signature must verify, and the request must carry no attribute at all (no
    extensionRequest: the profile decides every extension). The key must be one the profile
    could accept for some validity (RSA >= 2048, e = 65537, P-256/P-384); the date-dependent
    RSA size is :func:`check_public_key`'s business.
    """
    if not isinstance(data, bytes):
        raise RequestError("the CSR must be given as bytes")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
        public_key = csr.public_key()
        signature_valid = csr.is_signature_valid
        # asn1crypto lists attribute types whatever their values (cryptography refuses some).
        info = asn1_csr.CertificationRequest.load(csr.public_bytes(Encoding.DER))
        attribute_oids = [a["type"].dotted for a in info["certification_request_info"]["attributes"]]
    except (ValueError, TypeError) as exc:
        raise RequestError(f"the CSR cannot be read as a PKCS#10 request ({exc})") from None
    except UnsupportedAlgorithm as exc:
        raise RequestError(f"the CSR uses an unsupported key or signature algorithm ({exc})") from None
    check_public_key(public_key, not_after=RSA_2048_LAST_NOT_AFTER)
    if not signature_valid:
        raise RequestError("the CSR signature does not verify: no proof of possession of the key")
    if EXTENSION_REQUEST_OID in attribute_oids:
        raise RequestError("the CSR requests extensions: the profile sets every extension")
    if attribute_oids:
        raise RequestError(f"the CSR carries attributes ({', '.join(attribute_oids)}): none is accepted")
    return csr
