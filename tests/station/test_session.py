"""A whole delivery session at the station, on SoftHSM tokens and the real back-office over HTTP.

Three holders at today's session: Marie comes with nothing (a blank token), Yann brings back the
token that holds his previous certificate (reuse: it is wiped), Gwenola did not come (no
face-to-face: the station refuses her). Then what must hold outside guichet: OpenSC, OpenSSL,
pkilint, a signature by the token's key, the PDF, the revocation code's hash.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.token import KeySpec, Token
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import (
    AuditEvent, Certificate, CertificateState, Order, OrderState, TokenEvent, TokenState, UsbToken,
)
from ra.services.enrolment import SO_PIN_PURPOSE, normalise_code
from ra.station.enrolment import enrol
from ra.station.receipt import grouped
from tests.conftest import PKCS11_MODULE
from tests.lint_cli import etsi_errors
from tests.station.desk import (
    HOLDER_PIN, add_order, certificates_of, cli_server_args, open_desk, order_row, run_cli, station,
    token_objects,
)

CODE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")
PATH = re.compile(r"Procès-verbal de remise : (\S+\.pdf)")


def initialised_count() -> int:
    return len(Token.list_tokens(PKCS11_MODULE))  # SoftHSM always shows one more, blank, slot


def test_a_whole_delivery_session(pki: Instance, db_session: Session, cipher: FieldCipher, server: str,
                                  tmp_path: Path) -> None:
    desk = open_desk(db_session, cipher)
    previous = add_order(db_session, cipher, desk, given="Yann", surname="Le Bihan")
    absent = add_order(db_session, cipher, desk, given="Gwenola", surname="Morvan", checked=False)
    marie = add_order(db_session, cipher, desk, given="Marie", surname="Dubois")
    # Yann's token already holds a certificate (delivered on it earlier) when he comes to renew it.
    old = enrol(station(server, desk.api_token), previous.reference, blank=True,
                key_spec=KeySpec.parse("ec-p256"), receipt_dir=tmp_path)
    yann_token = old.receipt.token_serial
    yann = add_order(db_session, cipher, desk, holder_id=previous.holder_id, reused_serial=yann_token)
    args = cli_server_args(server, desk.api_token)

    listing = run_cli(*args[:4])
    assert listing.exit_code == 0, listing.output
    assert marie.reference in listing.output and yann.reference in listing.output
    assert absent.reference not in listing.output and "Morvan".upper() not in listing.output

    initialised = initialised_count()
    by_reference = run_cli("enrol", absent.reference, "--blank", *args)
    assert by_reference.exit_code == 1 and "n'est pas à remettre par vous aujourd'hui" in by_reference.output
    by_number = run_cli("enrol", str(absent.id), "--blank", *args)
    assert by_number.exit_code == 1 and "face-à-face" in by_number.output  # the back-office's reason
    assert initialised_count() == initialised and order_row(pki, absent.id).state == OrderState.SCHEDULED

    # Marie: a blank token, the default RSA-3072 key; her first PIN is a sequence, refused.
    done = run_cli("enrol", marie.reference, "--blank", "--receipt-dir", str(tmp_path / "pv"), *args,
                   input=f"123456\n123456\n{HOLDER_PIN}\n{HOLDER_PIN}\n")
    assert done.exit_code == 0, done.output
    assert "suite" in done.output and HOLDER_PIN not in done.output
    delivered_once(pki, done.output, marie.id)
    marie_cert = certificates_of(pki, marie.id)[0]
    marie_token = token_of(pki, marie_cert)
    with pki.factory() as session:
        escrow = session.scalar(select(UsbToken.so_pin_escrow).where(UsbToken.serial == marie_token))
    so_pin = cipher.decrypt(escrow, purpose=SO_PIN_PURPOSE)  # type: ignore[arg-type]
    with Token.open(PKCS11_MODULE, serial=marie_token).session(so_pin=so_pin):
        pass  # the escrowed SO PIN is the token's
    assert so_pin not in done.output and audit_mentions(pki, so_pin) == 0
    pdf = Path(PATH.search(done.output).group(1))  # type: ignore[union-attr]
    assert pdf == tmp_path / "pv" / f"pv-remise-{marie.reference}.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert marie.holder in text and grouped(marie_cert.serial) in text
    assert "Le porteur" in text and "L'opérateur" in text and marie_token in text

    # Yann: his own token again, an EC key this time; the old key and certificate are wiped.
    old_id = old.key_id.hex()
    assert ("private_key", old_id) in token_objects(yann_token, HOLDER_PIN)
    again = run_cli("enrol", yann.reference, "--token-serial", yann_token, "--key", "ec-p256",
                    "--receipt-dir", str(tmp_path / "pv"), *args,
                    input="Gz8!yann\nGz8!yann\n")
    assert again.exit_code == 0, again.output
    delivered_once(pki, again.output, yann.id)
    objects = token_objects(yann_token, "Gz8!yann")
    assert not [o for o in objects if o[1] == old_id]
    keys = {i for c, i in objects if c == "private_key"}
    assert len(keys) == 1 and {("private_key", *keys), ("public_key", *keys), ("certificate", *keys)} <= set(objects)
    previous_cert = certificates_of(pki, previous.id)[0]  # its key is gone: superseded at once
    with pki.factory() as session:
        row = session.get(Certificate, previous_cert.id)
        assert row is not None and row.revoked_at is not None and row.revocation_reason == 4

    for serial, pin in ((marie_token, HOLDER_PIN), (yann_token, "Gz8!yann")):
        holder_cert, chain = certificate_and_chain(serial)
        with pki.factory() as session:
            record = session.scalar(select(Certificate).where(Certificate.serial == format(holder_cert.serial_number, "x")))
        assert record is not None and record.der == holder_cert.public_bytes(serialization.Encoding.DER)
        outside_checks(serial, pin, holder_cert, chain, tmp_path / serial)
    assert audit_mentions(pki, HOLDER_PIN) == 0 and audit_mentions(pki, "Gz8!yann") == 0


def delivered_once(pki: Instance, output: str, order_id: int) -> str:
    """The order delivered with one certificate, the code shown once and stored as its argon2 hash."""
    codes = CODE.findall(output)
    assert len(codes) == 1 and output.count(codes[0]) == 1, output
    certs = certificates_of(pki, order_id)
    assert len(certs) == 1 and certs[0].state == CertificateState.ISSUED
    assert order_row(pki, order_id).state == OrderState.DELIVERED
    assert certs[0].revocation_code_hash and codes[0] not in certs[0].revocation_code_hash
    assert PasswordHasher().verify(certs[0].revocation_code_hash, normalise_code(codes[0]))
    assert audit_mentions(pki, normalise_code(codes[0])) == 0 and audit_mentions(pki, codes[0]) == 0
    assert token_of(pki, certs[0])
    return codes[0]


def token_of(pki: Instance, cert: Certificate) -> str:
    """The token the certificate was delivered on, active, with its history."""
    with pki.factory() as session:
        order = session.get(Order, cert.order_id)
        token = session.get(UsbToken, order.token_id)  # type: ignore[union-attr]
        assert token is not None and token.state == TokenState.ACTIVE and token.so_pin_escrow
        events = session.scalars(select(TokenEvent.to_state).where(TokenEvent.token_id == token.id)).all()
        assert events[-2:] == ["initialised", "active"]
        return token.serial


def audit_mentions(pki: Instance, secret: str) -> int:
    with pki.factory() as session:
        rows = session.scalars(select(AuditEvent)).all()
    return sum(1 for row in rows if secret in str(row.details))


def certificate_and_chain(serial: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    with Token.open(PKCS11_MODULE, serial=serial).session(rw=False) as session:
        found = [x509.load_der_x509_certificate(der) for _obj, der in session.certificates()]
    holders = [c for c in found if not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca]
    assert len(holders) == 1 and len(found) == 3
    return holders[0], [c for c in found if c is not holders[0]]


def outside_checks(serial: str, pin: str, cert: x509.Certificate, chain: list[x509.Certificate], work: Path) -> None:
    """OpenSC lists key, public key and certificate under one ID; OpenSSL, pkilint, a signature agree."""
    work.mkdir(parents=True)
    token = Token.open(PKCS11_MODULE, serial=serial)
    listing = subprocess.run(
        ["pkcs11-tool", "--module", PKCS11_MODULE, "--token-label", token.label, "--login", "--pin", pin,
         "--list-objects"], capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert listing.returncode == 0, listing.stderr
    blocks = re.split(r"\n(?=\S)", listing.stdout.strip())
    ids = {kind: re.search(r"ID:\s+([0-9a-f]+)", block).group(1)  # type: ignore[union-attr]
           for block in blocks for kind in ("Private Key", "Public Key") if block.startswith(kind)}
    cert_ids = [re.search(r"ID:\s+([0-9a-f]+)", b).group(1) for b in blocks if b.startswith("Certificate")]  # type: ignore[union-attr]
    assert ids["Private Key"] == ids["Public Key"] and ids["Private Key"] in cert_ids and len(cert_ids) == 3

    root = next(c for c in chain if c.issuer == c.subject)
    issuing = next(c for c in chain if c is not root)
    for name, item in (("leaf", cert), ("root", root), ("issuing", issuing)):
        (work / f"{name}.pem").write_bytes(item.public_bytes(serialization.Encoding.PEM))
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(work / "root.pem"), "-untrusted",
                             str(work / "issuing.pem"), str(work / "leaf.pem")], capture_output=True, text=True)
    assert verify.returncode == 0 and "OK" in verify.stdout, verify.stdout + verify.stderr
    assert etsi_errors(work / "leaf.pem") == []

    message = f"procès-verbal signé sur le support {serial}".encode()
    with token.session(user_pin=pin) as session:
        key_id = bytes.fromhex(ids["Private Key"])
        key = session.private_key(key_id=key_id)
        attributes = session.key_attributes(key_id=key_id)
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    assert attributes == {"local": True, "sensitive": True, "extractable": False, "always_sensitive": True,
                          "never_extractable": True}
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        assert public.key_size == 3072
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
