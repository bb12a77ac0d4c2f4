"""Unblocking a holder's PIN with the escrowed SO PIN, and looking at a token.

SoftHSM never blocks a PIN by itself: the test sets CKF_USER_PIN_LOCKED in the token's file,
the state a real token's firmware reaches after too many wrong PINs.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pkcs11 import TokenFlag
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca import errors
from ca.token import KeySpec, Token
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import TokenEvent, TokenState, UsbToken
from ra.station.enrolment import enrol
from ra.station.errors import TokenProblem
from ra.station.unblock import unblock
from tests.conftest import PKCS11_MODULE, set_softhsm_token_flags
from tests.station.desk import (
    HOLDER_PIN, NEW_PIN, add_order, cli_server_args, open_desk, run_cli, station, token_objects,
)


def token_history(pki: Instance, serial: str) -> tuple[str, list[str]]:
    with pki.factory() as session:
        token = session.scalar(select(UsbToken).where(UsbToken.serial == serial))
        assert token is not None
        return str(token.state), list(session.scalars(
            select(TokenEvent.to_state).where(TokenEvent.token_id == token.id).order_by(TokenEvent.id)))


def test_a_blocked_pin_is_reset_by_the_operator_in_scope(pki: Instance, db_session: Session, cipher: FieldCipher,
                                                         server: str, tmp_path: Path) -> None:
    desk = open_desk(db_session, cipher)
    order = add_order(db_session, cipher, desk, given="Soizic", surname="Le Roux")
    done = enrol(station(server, desk.api_token), order.reference, blank=True, key_spec=KeySpec.parse("ec-p256"),
                 receipt_dir=tmp_path)
    serial, key_id = done.receipt.token_serial, done.key_id.hex()
    before = token_objects(serial, HOLDER_PIN)

    not_blocked = run_cli("unblock", "--token-serial", serial, *cli_server_args(server, desk.api_token))
    assert not_blocked.exit_code == 1 and "n'est pas bloqué" in not_blocked.output

    set_softhsm_token_flags(SimpleNamespace(serial=serial), TokenFlag.USER_PIN_LOCKED)  # type: ignore[arg-type]
    assert Token.open(PKCS11_MODULE, serial=serial).user_pin_locked
    elsewhere = open_desk(db_session, cipher)
    outside = run_cli("unblock", "--token-serial", serial, *cli_server_args(server, elsewhere.api_token),
                      input=f"{NEW_PIN}\n{NEW_PIN}\n")
    assert outside.exit_code == 1 and "HTTP 404" in outside.output
    assert Token.open(PKCS11_MODULE, serial=serial).user_pin_locked

    with pytest.raises(TokenProblem, match="reste bloqué") as refused:  # three PINs the policy refuses
        unblock(station(server, desk.api_token, pin="111111"), serial)
    assert "guichet station unblock" in refused.value.advice
    assert Token.open(PKCS11_MODULE, serial=serial).user_pin_locked

    unblocked = run_cli("unblock", "--token-serial", serial, *cli_server_args(server, desk.api_token),
                        input=f"111111\n111111\n{NEW_PIN}\n{NEW_PIN}\n")
    assert unblocked.exit_code == 0, unblocked.output
    assert "débloqué" in unblocked.output and "un seul caractère" in unblocked.output
    assert NEW_PIN not in unblocked.output
    assert not Token.open(PKCS11_MODULE, serial=serial).user_pin_locked
    assert token_objects(serial, NEW_PIN) == before  # the key and the certificates stay
    assert ("private_key", key_id) in before
    with pytest.raises(errors.PinIncorrect), Token.open(PKCS11_MODULE, serial=serial).session(user_pin=HOLDER_PIN):
        pass
    state, history = token_history(pki, serial)
    assert state == TokenState.ACTIVE and history[-3:] == ["active", "blocked", "active"]


def test_check_shows_the_objects_and_the_back_office_status(pki: Instance, db_session: Session,
                                                            cipher: FieldCipher, server: str, tmp_path: Path) -> None:
    desk = open_desk(db_session, cipher)
    order = add_order(db_session, cipher, desk, given="Erwan", surname="Guillou")
    done = enrol(station(server, desk.api_token), order.reference, blank=True, key_spec=KeySpec.parse("ec-p256"),
                 receipt_dir=tmp_path)
    serial, key_id = done.receipt.token_serial, done.key_id.hex()

    public = run_cli("check", "--token-serial", serial, *cli_server_args(server, desk.api_token))
    assert public.exit_code == 0, public.output
    assert "public_key" in public.output and "private_key" not in public.output
    assert f"Certificat {done.receipt.certificate_serial} (au back-office : Valide)" in public.output
    assert public.output.count("(certificat d'AC)") == 2
    assert "support Actif" in public.output

    logged_in = run_cli("check", "--token-serial", serial, "--login", *cli_server_args(server, desk.api_token),
                        input=f"{HOLDER_PIN}\n")
    assert logged_in.exit_code == 0, logged_in.output
    lines = logged_in.output.splitlines()
    for kind in ("private_key", "public_key", "certificate"):  # one ID for the three
        assert [line for line in lines if kind in line and key_id in line], logged_in.output
    assert HOLDER_PIN not in logged_in.output

    elsewhere = open_desk(db_session, cipher)
    outside = run_cli("check", "--token-serial", serial, *cli_server_args(server, elsewhere.api_token))
    assert outside.exit_code == 0 and "hors de votre périmètre" in outside.output
    assert "Valide" not in outside.output
