"""The station's HTTP endpoints, through the real app with bearer tokens."""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from datetime import date, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ra.config import ISSUING_SLUG, ROOT_SLUG
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import AuditEvent, Certificate, CertificateState, Order, OrderState, Role
from ra.services.accounts import create_api_token
from ra.services.crl import publish_crl
from ra.services.enrolment import normalise_code
from tests.ra.enrolment_setup import Ready, csr_pem, make_session, new_serial, ready_order, record_check
from tests.ra.web import Person, make_account, make_entity


def bearer_for(session: Session, person: Person) -> dict[str, str]:
    _token, clear = create_api_token(session, person.account, "poste de remise", actor="test")
    return {"Authorization": f"Bearer {clear}"}


@pytest.fixture
def ready(db_session: Session, cipher: FieldCipher) -> Ready:
    prepared = ready_order(db_session, cipher)
    db_session.commit()
    return prepared


@pytest.fixture
def station(app: Flask, db_session: Session, ready: Ready) -> Station:
    headers = bearer_for(db_session, ready.operator)
    db_session.commit()
    return Station(app.test_client(), headers, ready)


class Station:
    """What the delivery station sends, for one order."""

    def __init__(self, client: FlaskClient, headers: dict[str, str], ready: Ready) -> None:
        self.client, self.headers, self.ready = client, headers, ready
        self.serial = new_serial()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.csr = csr_pem(self.key).decode()

    @property
    def order_path(self) -> str:
        return f"/api/v1/orders/{self.ready.order.id}"

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body, headers=headers or self.headers)

    def register(self, **overrides: Any) -> Any:
        body = {"serial": self.serial, "model": "SoftHSM v2", "so_pin": "so-" + secrets.token_hex(6), **overrides}
        return self.post(f"{self.order_path}/token", body)

    def submit(self, csr: str | None = None, headers: dict[str, str] | None = None) -> Any:
        return self.post(f"{self.order_path}/certificate", {"csr": csr or self.csr}, headers)

    def confirm(self, serial: str | None = None) -> Any:
        return self.post(f"{self.order_path}/delivery", {"token_serial": serial or self.serial})


def certificate_rows(pki: Instance, order_id: int) -> list[Certificate]:
    with pki.factory() as session:
        return list(session.scalars(select(Certificate).where(Certificate.order_id == order_id)
                                    .where(Certificate.state != CertificateState.FAILED)))


def test_without_a_token_the_station_gets_401(station: Station) -> None:
    assert station.submit(headers={"Authorization": "Bearer nope"}).status_code == 401
    assert station.client.get("/api/v1/station/today").status_code == 401


def test_today_lists_the_holder(station: Station) -> None:
    response = station.client.get("/api/v1/station/today", headers=station.headers)
    assert response.status_code == 200
    [item] = response.get_json()
    assert item["order_id"] == station.ready.order.id and item["reference"] == station.ready.order.reference
    assert item["state"] == "identity_verified" and item["holder"] == "Annaïg LE GOFF"


def test_whole_enrolment_over_the_api(station: Station, pki: Instance) -> None:
    registered = station.register()
    assert registered.status_code == 201, registered.get_json()
    assert registered.get_json() == {"serial": station.serial, "state": "initialised"}

    issued = station.submit()
    assert issued.status_code == 201, issued.get_json()
    body = issued.get_json()
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    issuing, root = (x509.load_pem_x509_certificate(p.encode()) for p in body["chain"])
    cert.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)
    assert format(cert.serial_number, "x") == body["serial"] and body["order_state"] == "issued"
    assert cert.public_key().public_numbers() == station.key.public_key().public_numbers()
    assert (pki.settings.publication_dir / f"{ROOT_SLUG}.crt").read_bytes() == root.public_bytes(Encoding.DER)

    again = station.submit()  # the answer was lost: the same certificate, never two
    assert again.status_code == 201 and again.get_json()["serial"] == body["serial"]
    assert len(certificate_rows(pki, station.ready.order.id)) == 1
    other = station.submit(csr_pem().decode())
    assert other.status_code == 409 and other.get_json()["error"] == "illegal_transition"

    delivered = station.confirm()
    assert delivered.status_code == 201
    payload = delivered.get_json()
    code, receipt = payload["revocation_code"], payload["receipt"]
    assert receipt["certificate_serial"] == body["serial"] and receipt["token_serial"] == station.serial
    assert receipt["operator"] == station.ready.operator.account.full_name
    assert receipt["site_address"] == station.ready.delivery.site_address
    with pki.factory() as session:
        order = session.get(Order, station.ready.order.id)
        stored = session.scalars(select(Certificate).where(Certificate.serial == body["serial"])).one()
        leaks = session.scalar(select(func.count()).select_from(AuditEvent).where(or_(
            AuditEvent.details.contains(normalise_code(code)), AuditEvent.details.contains(code))))
    assert order is not None and order.state == OrderState.DELIVERED
    assert PasswordHasher().verify(stored.revocation_code_hash or "", normalise_code(code))
    assert leaks == 0

    twice = station.confirm()
    assert twice.status_code == 409 and "revocation_code" not in twice.get_json()
    status = station.client.get(f"/api/v1/tokens/{station.serial}", headers=station.headers).get_json()
    assert status["state"] == "active" and [c["status"] for c in status["certificates"]] == ["valid"]


@pytest.mark.parametrize("body,status", [
    ({"serial": "", "model": "m", "so_pin": "123456"}, 400),
    ({"serial": "x" * 65, "model": "m", "so_pin": "123456"}, 400),
    ({"model": "m", "so_pin": "123456"}, 400),
    ({"serial": "abc", "model": "m", "so_pin": "12345"}, 400),  # too short to be an SO PIN
    ({"serial": "abc", "model": "m"}, 400),  # a new token's SO PIN must be escrowed
    ({"serial": "abc", "model": "m", "so_pin": "123456", "pin": "000000"}, 400),  # no other field
])
def test_register_refuses_bad_input(station: Station, pki: Instance, body: dict[str, Any], status: int) -> None:
    response = station.post(f"{station.order_path}/token", body)
    assert response.status_code == status and set(response.get_json()) == {"error", "message"}
    with pki.factory() as session:
        assert session.get(Order, station.ready.order.id).token_id is None  # type: ignore[union-attr]


def test_garbage_csr_is_400(station: Station, pki: Instance) -> None:
    station.register()
    response = station.submit("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    assert response.status_code == 400 and response.get_json()["message"]
    assert certificate_rows(pki, station.ready.order.id) == []


def _someone(role: Role, same_entity: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
    def build(db: Session, cipher: FieldCipher, r: Ready) -> Person:
        entity = r.entity if same_entity else (make_entity(db) if role in (Role.MC,) else None)
        return make_account(db, cipher, role, **({"entity": entity} if entity else {}), **kwargs)
    return build


def _as_operator(db: Session, cipher: FieldCipher, r: Ready) -> Person:
    return r.operator


def _yesterday(db: Session, cipher: FieldCipher, r: Ready) -> Person:
    r.delivery.session_date = date.today() - timedelta(days=1)
    return r.operator


def _checked_by_colleague(db: Session, cipher: FieldCipher, r: Ready) -> Person:
    colleague = make_account(db, cipher, Role.MC, entity=r.entity)
    record_check(db, cipher, r.order, r.delivery, colleague.account)
    return r.operator


def _moved_to_colleagues_session(db: Session, cipher: FieldCipher, r: Ready) -> Person:
    colleague = make_account(db, cipher, Role.MC, entity=r.entity)
    delivery = make_session(db, colleague.account)
    r.order.delivery_session_id = delivery.id
    record_check(db, cipher, r.order, delivery, colleague.account)
    return r.operator


REFUSED = {
    "out-of-scope-mc": (_someone(Role.MC), 404),
    "auditor": (_someone(Role.AUDITOR), 403),
    "ca-operator": (_someone(Role.OPERATOR), 403),
    "mc-of-the-entity-not-operator": (_someone(Role.MC, same_entity=True), 403),
    "session-of-yesterday": (_yesterday, 409),
    "face-to-face-by-a-colleague": (_checked_by_colleague, 409),
    "session-of-a-colleague": (_moved_to_colleagues_session, 403),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_submit_refused_with_the_right_status(station: Station, pki: Instance, db_session: Session,
                                              cipher: FieldCipher, case: str) -> None:
    assert station.register().status_code == 201
    arrange, status = REFUSED[case]
    person = arrange(db_session, cipher, station.ready)
    headers = bearer_for(db_session, person)
    db_session.commit()
    response = station.submit(headers=headers)
    assert response.status_code == status, response.get_json()
    assert set(response.get_json()) == {"error", "message"}
    assert certificate_rows(pki, station.ready.order.id) == []


@pytest.mark.parametrize("state", sorted(set(OrderState) - {OrderState.IDENTITY_VERIFIED}))
def test_submit_refused_unless_identity_verified(station: Station, pki: Instance, state: OrderState) -> None:
    assert station.register().status_code == 201
    with pki.factory() as session:
        session.get(Order, station.ready.order.id).state = state  # type: ignore[union-attr]
        session.commit()
    response = station.submit()
    assert response.status_code == 409
    assert certificate_rows(pki, station.ready.order.id) == []


def test_submit_refused_before_the_token_is_registered(station: Station, pki: Instance) -> None:
    response = station.submit()
    assert response.status_code == 409 and "support" in response.get_json()["message"]
    assert certificate_rows(pki, station.ready.order.id) == []


# --- two submissions at once, over a real HTTP server ---------------------------------------------

def post_json(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("same_csr", [True, False], ids=["same-csr", "two-csrs"])
def test_two_concurrent_submissions_make_one_certificate(station: Station, server: str, pki: Instance,
                                                         same_csr: bool) -> None:
    assert station.register().status_code == 201
    csrs = [station.csr, station.csr if same_csr else csr_pem().decode()]
    barrier = threading.Barrier(2)
    results: list[tuple[int, dict[str, Any]]] = []

    def send(csr: str) -> None:
        barrier.wait()
        results.append(post_json(f"{server}{station.order_path}/certificate", {"csr": csr}, station.headers))

    threads = [threading.Thread(target=send, args=(csr,)) for csr in csrs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    statuses = sorted(status for status, _ in results)
    assert len(results) == 2 and statuses[0] == 201 and statuses[1] in (201, 409), results
    serials = {body["serial"] for status, body in results if status == 201}
    [cert] = certificate_rows(pki, station.ready.order.id)
    assert serials == {cert.serial} and cert.state == CertificateState.ISSUED
    with pki.factory() as session:
        order = session.get(Order, station.ready.order.id)
        assert order is not None and (order.state, order.certificate_id) == (OrderState.ISSUED, cert.id)


# --- the escrowed SO PIN and token events -------------------------------------------------------

def test_so_pin_endpoint_is_scoped_and_audited(station: Station, pki: Instance, db_session: Session,
                                               cipher: FieldCipher) -> None:
    assert station.register(so_pin="escrow-me-1234").status_code == 201
    path = f"/api/v1/tokens/{station.serial}/so-pin"
    response = station.client.get(path, headers=station.headers)
    assert response.status_code == 200 and response.get_json() == {"so_pin": "escrow-me-1234"}
    outsider = bearer_for(db_session, make_account(db_session, cipher, Role.MC, entity=make_entity(db_session)))
    auditor = bearer_for(db_session, make_account(db_session, cipher, Role.AUDITOR))
    db_session.commit()
    assert station.client.get(path, headers=outsider).status_code == 404
    assert station.client.get(path, headers=auditor).status_code == 403
    assert station.client.get("/api/v1/tokens/unknown/so-pin", headers=station.headers).status_code == 404
    with pki.factory() as session:
        reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "token.so_pin_read",
                                                         AuditEvent.object_id == station.serial)).all()
        leaks = session.scalar(select(func.count()).select_from(AuditEvent)
                               .where(AuditEvent.details.contains("escrow-me-1234")))
    assert [r.actor for r in reads] == [station.ready.operator.email] and leaks == 0


def test_token_status_follows_the_token_screens_rule(station: Station, db_session: Session,
                                                   cipher: FieldCipher) -> None:
    assert station.register().status_code == 201
    path = f"/api/v1/tokens/{station.serial}"
    outsider = bearer_for(db_session, make_account(db_session, cipher, Role.MC, entity=make_entity(db_session)))
    auditor = bearer_for(db_session, make_account(db_session, cipher, Role.AUDITOR))
    db_session.commit()
    assert station.client.get(path, headers=station.headers).get_json()["state"] == "initialised"
    assert station.client.get(path, headers=auditor).status_code == 200  # auditors see every token
    assert station.client.get(path, headers=outsider).status_code == 404  # out of scope: not found
    assert station.client.get("/api/v1/tokens/unknown", headers=station.headers).status_code == 404


def test_token_declared_lost_over_the_api_is_revoked_in_the_next_crl(station: Station, pki: Instance) -> None:
    station.register()
    serial = station.submit().get_json()["serial"]
    station.confirm()
    path = f"/api/v1/tokens/{station.serial}/state"
    assert station.post(path, {"state": "blank"}).status_code == 400  # not an event one may record
    blocked = station.post(path, {"state": "blocked", "note": "PIN bloqué"})
    assert blocked.status_code == 200 and blocked.get_json()["state"] == "blocked"
    lost = station.post(path, {"state": "lost", "note": "perdu"})
    assert lost.status_code == 200
    assert lost.get_json()["state"] == "lost" and lost.get_json()["certificates"][0]["status"] == "revoked"
    assert station.post(path, {"state": "active"}).status_code == 409
    with pki.factory() as session:
        cert = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        assert cert.revoked_at is not None and cert.revocation_reason == 1
    publish_crl(pki.factory, pki.ca, ISSUING_SLUG, actor="test", publication_dir=pki.settings.publication_dir,
                next_update_hours=24)
    crl = x509.load_der_x509_crl((pki.settings.publication_dir / f"{ISSUING_SLUG}.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
