"""What the station does when things go wrong, each failure made to happen for real.

- Token pulled out: PKCS#11 closes every session of a token that is removed (C_CloseAllSessions
  is what the module does for it); the test calls it on the token's slot between two steps. SoftHSM
  cannot lose a token directory without breaking every slot of the process until C_Finalize,
  which would also close the CA's own sessions: closing the sessions is the honest equivalent.
- Wrong SO PIN: the escrow holds another PIN than the token's.
- Network down after the CSR was sent: a TCP proxy forwards the request to the real server, lets
  it issue, and closes the station's connection before the answer.
- Server refusal: the back-office cancels the order (or gives the session to another operator)
  while the key is being generated.
- A key imported into the token (C_CreateObject) instead of generated there.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from asn1crypto.core import OctetString
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ca.token import KeySpec, Token, load_module
from ra.db import transaction
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import DeliverySession, Entity, Order, OrderState, Role, TokenState, UsbToken
from ra.services.enrolment import SO_PIN_PURPOSE, normalise_code
from ra.station.enrolment import Progress, enrol
from ra.station.errors import EnrolmentFailed, ServerRefusal
from tests.conftest import PKCS11_MODULE, TestToken
from tests.ra.web import make_account
from tests.station.desk import (
    HOLDER_PIN, Booked, Desk, add_order, certificates_of, cli_server_args, open_desk, order_row, run_cli,
    station, token_objects,
)
from tests.station.proxy import CuttingProxy

EC = KeySpec.parse("ec-p256")


def pull_out(serial: str) -> None:
    """The token leaves the reader: the module closes every session on its slot."""
    slot = next(s for s in load_module(PKCS11_MODULE).get_slots(token_present=True)
                if bytes(s.get_token().serial).decode().strip() == serial)
    close_all = ctypes.CDLL(PKCS11_MODULE).C_CloseAllSessions
    close_all.argtypes, close_all.restype = [ctypes.c_ulong], ctypes.c_ulong
    assert close_all(slot.slot_id) == 0


def pull_out_at(step: str):  # type: ignore[no-untyped-def]
    def checkpoint(name: str, progress: Progress) -> None:
        if name == step:
            assert progress.token_serial
            pull_out(progress.token_serial)

    return checkpoint


def one_order(db_session: Session, cipher: FieldCipher) -> tuple[Desk, Booked]:
    desk = open_desk(db_session, cipher)
    return desk, add_order(db_session, cipher, desk, given="Loïc", surname="Tanguy")


def no_key_left(serial: str) -> bool:
    return not [o for o in token_objects(serial, HOLDER_PIN) if o[0] in ("private_key", "public_key")]


# python-pkcs11 finalises its object search on the session the removal closed: a warning, no error.
PULLED_OUT = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@PULLED_OUT
def test_token_pulled_out_before_the_request_then_enrolled_again(pki: Instance, db_session: Session,
                                                                  cipher: FieldCipher, server: str,
                                                                  tmp_path: Path) -> None:
    desk, order = one_order(db_session, cipher)
    with pytest.raises(EnrolmentFailed) as failed:
        enrol(station(server, desk.api_token, checkpoint=pull_out_at("key_generated")), order.reference,
              blank=True, key_spec=EC, receipt_dir=tmp_path)
    message, advice = str(failed.value), failed.value.advice
    assert "Support retiré à l'étape 3" in message and "clé générée a été effacée" in message
    assert "Réinsérez le support" in advice and f"guichet station enrol {order.reference} --token-serial" in advice
    serial = advice.split("--token-serial ")[1].split(" ")[0]
    assert no_key_left(serial) and certificates_of(pki, order.id) == []
    assert order_row(pki, order.id).state == OrderState.IDENTITY_VERIFIED

    done = enrol(station(server, desk.api_token), order.reference, token_serial=serial, key_spec=EC,
                 receipt_dir=tmp_path)  # the token is wiped with its escrowed SO PIN and enrolled
    assert done.receipt.token_serial == serial and not done.resumed
    assert [c.serial for c in certificates_of(pki, order.id)] == [done.receipt.certificate_serial]


@PULLED_OUT
def test_token_pulled_out_after_issuance_then_the_same_certificate_written(
        pki: Instance, db_session: Session, cipher: FieldCipher, server: str, tmp_path: Path) -> None:
    desk, order = one_order(db_session, cipher)
    with pytest.raises(EnrolmentFailed) as failed:
        enrol(station(server, desk.api_token, checkpoint=pull_out_at("certificate_issued")), order.reference,
              blank=True, key_spec=EC, receipt_dir=tmp_path)
    assert "Support retiré à l'étape 5" in str(failed.value)
    assert "certificat déjà émis" in failed.value.advice and "retape son code PIN" in failed.value.advice
    issued = certificates_of(pki, order.id)
    assert len(issued) == 1 and order_row(pki, order.id).state == OrderState.ISSUED

    serial = failed.value.advice.split("--token-serial ")[1].split(" ")[0]
    with pytest.raises(EnrolmentFailed, match="Code PIN du porteur refusé"):
        enrol(station(server, desk.api_token, pin="Faux-pin7"), order.reference, token_serial=serial,
              receipt_dir=tmp_path)
    done = enrol(station(server, desk.api_token), order.reference, token_serial=serial, receipt_dir=tmp_path)
    assert done.resumed and done.receipt.certificate_serial == issued[0].serial
    assert [c.serial for c in certificates_of(pki, order.id)] == [issued[0].serial]
    assert order_row(pki, order.id).state == OrderState.DELIVERED
    assert ("certificate", done.key_id.hex()) in token_objects(serial, HOLDER_PIN)


def test_wrong_escrowed_so_pin_changes_nothing(pki: Instance, db_session: Session, cipher: FieldCipher,
                                               server: str, token: TestToken, tmp_path: Path) -> None:
    desk = open_desk(db_session, cipher)
    first = add_order(db_session, cipher, desk, given="Nolwenn", surname="Le Gall")
    with Token.open(PKCS11_MODULE, serial=token.serial).session(user_pin=token.pin) as session:
        session.generate_key_pair(EC, label="ancienne clé", key_id=b"\x0a\x0b")
    db_session.add(UsbToken(serial=token.serial, model="SoftHSM v2", state=TokenState.ACTIVE,
                            entity_id=desk.entity_id, holder_id=first.holder_id,
                            so_pin_escrow=cipher.encrypt("Pas-le-bon-PIN-42", purpose=SO_PIN_PURPOSE)))
    db_session.commit()
    order = add_order(db_session, cipher, desk, holder_id=first.holder_id, reused_serial=token.serial)

    with pytest.raises(EnrolmentFailed) as failed:
        enrol(station(server, desk.api_token), order.reference, key_spec=EC, receipt_dir=tmp_path)
    assert "code PIN administrateur séquestré" in str(failed.value) and "refusé" in str(failed.value)
    assert "N'insistez pas" in failed.value.advice and "Pas-le-bon" not in str(failed.value) + failed.value.advice
    with Token.open(PKCS11_MODULE, serial=token.serial).session(user_pin=token.pin) as session:
        assert ("private_key", "0a0b") in [(o.object_class, o.id_hex) for o in session.objects()]
    with pki.factory() as session:
        assert session.scalar(select(UsbToken.state).where(UsbToken.serial == token.serial)) == TokenState.ACTIVE
    assert order_row(pki, order.id).state == OrderState.IDENTITY_VERIFIED and certificates_of(pki, order.id) == []


def test_network_down_after_the_request_was_sent(pki: Instance, db_session: Session, cipher: FieldCipher,
                                                 proxy: CuttingProxy, tmp_path: Path) -> None:
    desk, order = one_order(db_session, cipher)
    proxy.cut_next.append("/certificate")
    done = enrol(station(proxy.url, desk.api_token), order.reference, blank=True, key_spec=EC,
                 receipt_dir=tmp_path)
    sent = [e for e in proxy.exchanges if "/certificate" in e.request_line]
    assert [e.cut for e in sent] == [True, False] and sent[0].body == sent[1].body  # the same CSR, again
    certs = certificates_of(pki, order.id)
    assert [c.serial for c in certs] == [done.receipt.certificate_serial]
    assert order_row(pki, order.id).state == OrderState.DELIVERED
    assert not any(HOLDER_PIN.encode() in e.body for e in proxy.exchanges)  # the PIN never leaves the station


def test_network_down_for_good_keeps_the_key_and_the_next_run_finishes(
        pki: Instance, db_session: Session, cipher: FieldCipher, proxy: CuttingProxy, tmp_path: Path) -> None:
    desk, order = one_order(db_session, cipher)
    proxy.cut_next.extend(["/certificate"] * 3)
    with pytest.raises(EnrolmentFailed) as failed:
        enrol(station(proxy.url, desk.api_token, attempts=3), order.reference, blank=True, key_spec=EC,
              receipt_dir=tmp_path)
    assert "coupée" in str(failed.value) and "peut-être été émis" in failed.value.advice
    serial = failed.value.advice.split("--token-serial ")[1].split(" ")[0]
    issued = certificates_of(pki, order.id)
    assert len(issued) == 1 and not no_key_left(serial)

    done = enrol(station(proxy.url, desk.api_token), order.reference, token_serial=serial, receipt_dir=tmp_path)
    assert done.resumed and [c.serial for c in certificates_of(pki, order.id)] == [issued[0].serial]


def test_delivery_answer_lost_then_a_new_revocation_code_reaches_the_holder(
        pki: Instance, db_session: Session, cipher: FieldCipher, proxy: CuttingProxy, tmp_path: Path) -> None:
    desk, order = one_order(db_session, cipher)
    proxy.cut_next.append("/delivery ")  # the confirmation, not the new code
    done = enrol(station(proxy.url, desk.api_token), order.reference, blank=True, key_spec=EC,
                 receipt_dir=tmp_path)
    deliveries = [e for e in proxy.exchanges if "/delivery" in e.request_line]
    assert [(e.request_line.split()[1].rsplit("/", 1)[-1], e.cut) for e in deliveries] == [
        ("delivery", True), ("revocation-code", False)]
    assert order_row(pki, order.id).state == OrderState.DELIVERED
    [cert] = certificates_of(pki, order.id)
    assert PasswordHasher().verify(cert.revocation_code_hash, normalise_code(done.revocation_code))
    assert done.receipt_path is not None and done.receipt_path.exists()


@pytest.mark.parametrize("change", ["order cancelled", "session given to another operator"])
def test_server_refusal_deletes_the_generated_key(pki: Instance, db_session: Session, cipher: FieldCipher,
                                                  server: str, tmp_path: Path, change: str) -> None:
    desk, order = one_order(db_session, cipher)
    colleague_id = make_account(db_session, cipher, Role.MC, entity=db_session.get(Entity, desk.entity_id)).account.id
    db_session.commit()

    def meanwhile(name: str, progress: Progress) -> None:
        if name != "key_generated":
            return
        with transaction(pki.factory) as session:
            if change == "order cancelled":
                session.execute(update(Order).where(Order.id == order.id).values(
                    state=OrderState.CANCELLED, cancelled_reason="doublon"))
            else:
                session.execute(update(DeliverySession).where(DeliverySession.id == desk.delivery_id)
                                .values(operator_id=colleague_id))

    with pytest.raises(EnrolmentFailed) as failed:
        enrol(station(server, desk.api_token, checkpoint=meanwhile), order.reference, blank=True, key_spec=EC,
              receipt_dir=tmp_path)
    message = str(failed.value)
    assert "Étape 4" in message and "La clé générée a été effacée du support." in message
    assert ("émission impossible" if change == "order cancelled" else "Seul l'opérateur de la session") in message
    assert certificates_of(pki, order.id) == []
    with pki.factory() as session:
        token_serial = session.scalar(select(UsbToken.serial).join(Order, Order.token_id == UsbToken.id)
                                      .where(Order.id == order.id))
    assert token_serial and no_key_left(token_serial)


def import_key_instead(progress: Progress, *, protected: bool) -> None:
    """Swap the generated key for one made in software and written with C_CreateObject."""
    assert progress.token_serial and progress.key_id
    software = ec.generate_private_key(ec.SECP256R1())
    params = encode_named_curve_parameters("secp256r1")
    with Token.open(PKCS11_MODULE, serial=progress.token_serial).session(user_pin=HOLDER_PIN) as session:
        session.delete_objects(key_id=progress.key_id)
        raw = session._session  # C_CreateObject is not something ca.token offers, on purpose
        raw.create_object({
            Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC, Attribute.TOKEN: True,
            Attribute.PRIVATE: True, Attribute.SENSITIVE: protected, Attribute.EXTRACTABLE: not protected,
            Attribute.SIGN: True, Attribute.ID: progress.key_id, Attribute.LABEL: "importée",
            Attribute.EC_PARAMS: params,
            Attribute.VALUE: software.private_numbers().private_value.to_bytes(32, "big"),
        })
        raw.create_object({
            Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC, Attribute.TOKEN: True,
            Attribute.VERIFY: True, Attribute.ID: progress.key_id, Attribute.LABEL: "importée",
            Attribute.EC_PARAMS: params, Attribute.EC_POINT: _ec_point(software.public_key()),
        })


def _ec_point(public: ec.EllipticCurvePublicKey) -> bytes:
    return OctetString(public.public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)).dump()


@pytest.mark.parametrize("protected", [True, False], ids=["imported-then-protected", "imported-extractable"])
def test_a_key_not_generated_on_the_token_is_refused(pki: Instance, db_session: Session, cipher: FieldCipher,
                                                     proxy: CuttingProxy, tmp_path: Path, protected: bool) -> None:
    desk, order = one_order(db_session, cipher)

    def swap(name: str, progress: Progress) -> None:
        if name == "key_generated":
            import_key_instead(progress, protected=protected)

    with pytest.raises(EnrolmentFailed) as failed:
        enrol(station(proxy.url, desk.api_token, checkpoint=swap), order.reference, blank=True, key_spec=EC,
              receipt_dir=tmp_path)
    message = str(failed.value)
    assert "CKA_LOCAL faux" in message and "effacée" in message
    assert ("CKA_SENSITIVE faux" in message and "CKA_EXTRACTABLE vrai" in message) is not protected
    assert not [e for e in proxy.exchanges if "/certificate" in e.request_line]  # no CSR ever sent
    assert certificates_of(pki, order.id) == [] and order_row(pki, order.id).state == OrderState.IDENTITY_VERIFIED
    with pki.factory() as session:
        token_serial = session.scalar(select(UsbToken.serial).join(Order, Order.token_id == UsbToken.id)
                                      .where(Order.id == order.id))
    assert token_serial and no_key_left(token_serial)


def test_operators_outside_the_order_are_refused_by_the_server(pki: Instance, db_session: Session,
                                                               cipher: FieldCipher, server: str) -> None:
    desk, order = one_order(db_session, cipher)
    elsewhere = open_desk(db_session, cipher)  # an MC of another entity, with its own session today
    colleague = open_desk(db_session, cipher, entity=db_session.get(Entity, desk.entity_id))  # same entity, not this session
    initialised = len(Token.list_tokens(PKCS11_MODULE))

    outside = run_cli("enrol", str(order.id), "--blank", *cli_server_args(server, elsewhere.api_token))
    assert outside.exit_code == 1
    assert "HTTP 404" in outside.output and "introuvable" in outside.output
    assert "périmètre" in outside.output
    by_reference = run_cli("enrol", order.reference, "--blank", *cli_server_args(server, elsewhere.api_token))
    assert by_reference.exit_code == 1 and "n'est pas à remettre par vous" in by_reference.output

    other = run_cli("enrol", str(order.id), "--blank", *cli_server_args(server, colleague.api_token))
    assert other.exit_code == 1 and "HTTP 403" in other.output and "Seul l'opérateur de la session" in other.output
    assert len(Token.list_tokens(PKCS11_MODULE)) == initialised  # no token was touched
    assert order_row(pki, order.id).state == OrderState.IDENTITY_VERIFIED


def test_unreachable_back_office_and_a_bad_api_token(server: str) -> None:
    down = run_cli("--url", "http://127.0.0.1:9", "--api-token", "gch_x")
    assert down.exit_code == 1 and "Back-office injoignable" in down.output and "--url" in down.output
    refused = run_cli("--url", server, "--api-token", "gch_not-a-token")
    assert refused.exit_code == 1 and "HTTP 401" in refused.output and "jeton" in refused.output.lower()
    with pytest.raises(ServerRefusal):
        station(server, "gch_not-a-token").client.today()
