"""The holder's token at the station: choosing it, naming it, checking its key, writing the chain.

Token errors of :mod:`ca.token` (English, for logs) become :class:`TokenProblem` with a French
message here; a token that no longer answers is reported as pulled out (« support retiré »).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ca import errors
from ca.token import Token, TokenObject, TokenSession, list_tokens
from ra.station.errors import TokenPulledOut, TokenProblem

LABEL_BYTES = 32  # CK_TOKEN_INFO.label
SO_PIN_ALPHABET = string.ascii_letters + string.digits


def token_label(holder: str) -> str:
    """The holder's name as a token label: at most 32 bytes of UTF-8, cut on a character."""
    label = " ".join(holder.split())
    while len(label.encode("utf-8")) > LABEL_BYTES:
        label = label[:-1]
    return label.rstrip() or "porteur"


def key_label(holder: str, reference: str) -> str:
    return f"{' '.join(holder.split())} {reference}"[:64]


def new_so_pin() -> str:
    """A random SO PIN (16 letters and digits, about 95 bits): escrowed, never shown."""
    return "".join(secrets.choice(SO_PIN_ALPHABET) for _ in range(16))


def new_key_id() -> bytes:
    return secrets.token_bytes(16)


def describe(token: Token) -> str:
    return f"support « {token.label or 'vierge'} » (n° {token.serial or 'non encore attribué'})"


def _present(module: str, serial: str) -> bool:
    try:
        Token.open(module, serial=serial)
    except errors.TokenError:
        return False
    return True


def token_problem(exc: errors.TokenError, *, module: str, serial: str | None, doing: str) -> TokenProblem:
    """The French report of a token error met while ``doing`` something; PINs are never in it."""
    if isinstance(exc, errors.TokenRemoved) or (
        type(exc) is errors.TokenError and serial and not _present(module, serial)
    ):
        return TokenPulledOut(f"Support retiré pendant l'opération ({doing}).")
    messages: dict[type[errors.TokenError], str] = {
        errors.PinIncorrect: "Code PIN refusé par le support",
        errors.PinLocked: "Code PIN bloqué sur le support",
        errors.PinPolicyError: "Le support refuse ce code PIN (longueur ou caractères)",
        errors.TokenNotFound: "Support introuvable",
        errors.KeyNotFound: "Objet introuvable sur le support",
        errors.MechanismUnsupported: "Le support ne sait pas faire cette opération",
        errors.ModuleNotLoadable: "Module PKCS#11 inutilisable",
    }
    text = next((m for kind, m in messages.items() if isinstance(exc, kind)), "Erreur du support")
    return TokenProblem(f"{text} ({doing}) : {exc}.")


@contextmanager
def token_errors(module: str, serial: str | None, doing: str) -> Iterator[None]:
    """Turn ``ca.errors.TokenError`` raised inside into the station's French ``TokenProblem``."""
    try:
        yield
    except errors.TokenError as exc:
        raise token_problem(exc, module=module, serial=serial, doing=doing) from exc


def choose_token(module: str, *, serial: str | None, blank: bool) -> Token:
    """The token given by serial, or with ``blank`` the one uninitialised token present."""
    with token_errors(module, serial, "recherche du support"):
        if serial:
            try:
                return Token.open(module, serial=serial)
            except errors.TokenNotFound:
                raise TokenProblem(f"Aucun support n° {serial} n'est branché.",
                                   advice="Branchez le support du porteur, ou vérifiez --token-serial.") from None
        if not blank:
            raise TokenProblem("Indiquez le support : --token-serial NUMÉRO, ou --blank pour le support vierge branché.")
        blanks = [t for t in list_tokens(module, include_blank=True) if not t.initialized]
    if len(blanks) != 1:
        problem = "Aucun support vierge n'est branché." if not blanks else \
            f"{len(blanks)} supports vierges sont branchés : impossible de savoir lequel utiliser."
        raise TokenProblem(problem, advice="Ne laissez branché que le support du porteur, ou donnez --token-serial.")
    return blanks[0]


def verify_so_pin(token: Token, so_pin: str, module: str) -> None:
    """Log in as SO and out again: a wrong escrowed SO PIN is found before anything changes."""
    try:
        with token.session(so_pin=so_pin):
            pass
    except errors.PinIncorrect:
        raise TokenProblem(
            f"Le code PIN administrateur séquestré au back-office est refusé par le {describe(token)}.",
            advice="N'insistez pas (le support se bloquerait) : rien n'a été modifié. Prenez un support neuf "
                   "(la commande doit alors prévoir un nouveau support) et signalez ce support à l'AC.",
        ) from None
    except errors.PinLocked:
        raise TokenProblem(f"Le code PIN administrateur du {describe(token)} est bloqué.",
                           advice="Ce support ne peut plus être réinitialisé : prenez un support neuf.") from None
    except errors.TokenError as exc:
        raise token_problem(exc, module=module, serial=token.serial, doing="contrôle du PIN administrateur") from exc


def check_key_kept_on_token(session: TokenSession, key_id: bytes) -> None:
    """Refuse a key not generated on the token, or one that could leave it (CKA_LOCAL, SENSITIVE, EXTRACTABLE)."""
    attributes = session.key_attributes(key_id=key_id)
    problems = []
    if not attributes["local"]:
        problems.append("elle n'a pas été générée sur le support (CKA_LOCAL faux)")
    if not attributes["sensitive"]:
        problems.append("elle n'est pas protégée en lecture (CKA_SENSITIVE faux)")
    if attributes["extractable"]:
        problems.append("elle peut être extraite du support (CKA_EXTRACTABLE vrai)")
    if problems:
        raise TokenProblem(f"Clé {key_id.hex()} refusée : " + " ; ".join(problems) + ".",
                           advice="Aucune demande de certificat n'a été envoyée. Utilisez un autre support.")


def _ca_id(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA1())  # noqa: S303 - an identifier, not a signature
        digest.update(spki)
        return digest.finalize()


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()[:64]


def write_certificates(session: TokenSession, certificate_pem: str, chain_pems: tuple[str, ...], *,
                       label: str, key_id: bytes) -> None:
    """The holder's certificate under its key's ID and label, then each CA certificate under its own."""
    present = {obj.id_hex for obj, _der in session.certificates()}
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    if key_id.hex() not in present:
        session.store_certificate(cert.public_bytes(serialization.Encoding.DER), label=label, key_id=key_id)
    for pem in chain_pems:
        ca_cert = x509.load_pem_x509_certificate(pem.encode())
        ca_id = _ca_id(ca_cert)
        if ca_id.hex() not in present:
            session.store_certificate(ca_cert.public_bytes(serialization.Encoding.DER),
                                      label=_common_name(ca_cert)[:64], key_id=ca_id)


_SHORT_NAMES = {x509.NameOID.SURNAME: "SN", x509.NameOID.GIVEN_NAME: "GN",
                x509.NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier", x509.NameOID.TITLE: "title"}


@dataclass(frozen=True)
class CertificateOnToken:
    label: str
    id_hex: str
    subject: str
    serial: str  # lowercase hex, as the back-office writes it
    not_before: str
    not_after: str
    is_ca: bool


def certificates_on(session: TokenSession) -> list[CertificateOnToken]:
    found = []
    for obj, der in session.certificates():
        cert = x509.load_der_x509_certificate(der)
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        found.append(CertificateOnToken(obj.label, obj.id_hex, cert.subject.rfc4514_string(_SHORT_NAMES),
                                        format(cert.serial_number, "x"), cert.not_valid_before_utc.isoformat(),
                                        cert.not_valid_after_utc.isoformat(), is_ca))
    return found


def private_key_ids(objects: list[TokenObject]) -> list[bytes]:
    return [bytes.fromhex(o.id_hex) for o in objects if o.object_class == "private_key"]
