"""The delivery-session screens through a logged-in browser: list and filters, planning, the
delivery-day screen with the face-to-face form, the invoice block, and who may see or do what
(out of scope: 404; CA operators and auditors: read-only, 403 on every write)."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.db import utcnow
from ra.fieldcrypt import FieldCipher
from ra.models import Authority, Certificate, CertificateState, DeliverySession, Order, OrderState, SessionStatus
from tests.ra.session_setup import World, make_delivery, make_order, make_world
from tests.ra.web import Browser, Person

TODAY = date.today()


def _login(browser: Browser, person: Person) -> None:
    # Browser.totp_code tries the previous 30 s step first; when the step turns during the
    # request, the server no longer accepts it: the next attempt uses a later step.
    response = browser.login(person)
    if response.status_code == 401:
        response = browser.login(person)
    assert response.status_code == 302


def _fresh(db: Session) -> Session:
    """A short-lived session to read what the app committed (the test's own session keeps no
    transaction open while the app writes: SQLite serialises writers)."""
    return Session(db.get_bind())


def _order(db: Session, order_id: int) -> tuple[OrderState, int | None, bool]:
    """(state, session id, absent) as committed."""
    with _fresh(db) as fresh:
        order = fresh.get_one(Order, order_id)
        return OrderState(order.state), order.delivery_session_id, order.absent


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def _face_to_face(order_id: int, **overrides: str) -> dict[str, str]:
    data = {"in_person": "y", "document_type": "cni", "document_number": "K7HD2PQ91",
            "document_expiry": (TODAY + timedelta(days=700)).isoformat(), "issuing_country": "FRA",
            "names_match": "y"}
    data.update(overrides)
    return {f"o{order_id}-{k}": v for k, v in data.items() if v is not None}


@pytest.fixture
def world(db_session: Session, cipher: FieldCipher) -> World:
    w = make_world(db_session, cipher)
    for who in ("mc", "mc_outside", "aed", "aed_elsewhere", "operator", "auditor"):
        getattr(w, who)  # create every account before the commit
    db_session.commit()
    return w


def test_mc_plans_a_session_and_finds_it_in_the_list(browser: Browser, db_session: Session, world: World) -> None:
    _login(browser, world.mc)
    place = f"Salle du conseil {secrets.token_hex(4)}"
    day = TODAY + timedelta(days=9)
    response = browser.submit("/sessions/nouvelle", {"session_date": day.isoformat(), "site_address": place,
                                                     "place": "cci"})
    assert response.status_code == 302 and "/planification" in response.headers["Location"]
    with _fresh(db_session) as fresh:
        delivery = fresh.scalar(select(DeliverySession).where(DeliverySession.site_address == place))
        assert delivery is not None and delivery.operator_id == world.mc.account.id and delivery.on_site is False
    assert place in _text(browser.get(f"/sessions?q={place[-8:]}"))
    assert place in _text(browser.get(f"/sessions?statut=planned&du={day.isoformat()}&au={day.isoformat()}"))
    assert place not in _text(browser.get(f"/sessions?q={place[-8:]}&statut=closed"))
    assert place not in _text(browser.get(f"/sessions?q={place[-8:]}&du={(day + timedelta(days=1)).isoformat()}"))
    assert browser.get("/sessions?du=pas-une-date").status_code == 200  # ignored, with a warning


def test_a_session_in_the_past_is_refused(browser: Browser, db_session: Session, world: World) -> None:
    _login(browser, world.mc)
    place = f"Mairie annexe {secrets.token_hex(4)}"
    response = browser.submit("/sessions/nouvelle", {"session_date": (TODAY - timedelta(days=1)).isoformat(),
                                                     "site_address": place, "place": "site"})
    assert response.status_code == 400 and "passé" in _text(response)
    with _fresh(db_session) as fresh:
        assert fresh.scalar(select(DeliverySession).where(DeliverySession.site_address == place)) is None


def test_planning_lists_orders_in_scope_and_adds_them(browser: Browser, db_session: Session, world: World) -> None:
    delivery = make_delivery(db_session, world.aed.account, day=TODAY + timedelta(days=4))
    mine = make_order(db_session, world.commune, world.aed.account)
    ccas = make_order(db_session, world.ccas, world.aed.account)
    foreign = make_order(db_session, world.outside, world.mc_outside.account)
    db_session.commit()
    _login(browser, world.aed)
    page = _text(browser.get(f"/sessions/{delivery.id}/planification"))
    assert mine.reference in page and ccas.reference in page and foreign.reference not in page
    assert 'name="order_ids"' in page and "data-long" in page
    url = f"/sessions/{delivery.id}/planification"
    response = browser.submit(url, {"order_ids": [str(foreign.id)]}, action=f"/sessions/{delivery.id}/commandes")
    assert response.status_code == 404  # an order out of scope does not exist for this AED
    assert _order(db_session, foreign.id)[0] == OrderState.APPROVED
    response = browser.submit(url, {"order_ids": [str(mine.id), str(ccas.id)]},
                              action=f"/sessions/{delivery.id}/commandes")
    assert response.status_code == 302
    assert _order(db_session, mine.id)[:2] == (OrderState.SCHEDULED, delivery.id)
    assert _order(db_session, ccas.id)[:2] == (OrderState.SCHEDULED, delivery.id)
    response = browser.submit(f"/sessions/{delivery.id}", {},
                              action=f"/sessions/{delivery.id}/commandes/{ccas.id}/retirer")
    assert response.status_code == 302 and _order(db_session, ccas.id)[:2] == (OrderState.APPROVED, None)


def test_adding_a_non_approved_order_is_refused_with_a_message(browser: Browser, db_session: Session,
                                                               world: World) -> None:
    delivery = make_delivery(db_session, world.mc.account, day=TODAY + timedelta(days=4))
    draft = make_order(db_session, world.commune, world.mc.account, state=OrderState.DRAFT)
    db_session.commit()
    _login(browser, world.mc)
    url = f"/sessions/{delivery.id}/planification"
    response = browser.submit(url, {"order_ids": [str(draft.id)]}, action=f"/sessions/{delivery.id}/commandes")
    assert response.status_code == 302
    assert "Brouillon" in _text(browser.get(response.headers["Location"]))
    assert _order(db_session, draft.id)[0] == OrderState.DRAFT


def test_delivery_day_records_the_face_to_face(browser: Browser, db_session: Session, world: World) -> None:
    delivery = make_delivery(db_session, world.mc.account)
    order = make_order(db_session, world.commune, world.aed.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    _login(browser, world.mc)
    url = f"/sessions/{delivery.id}/jour"
    page = _text(browser.get(url))
    assert f'name="o{order.id}-document_number"' in page and "rafraîchir" in page
    assert "les nom et prénoms correspondent à la commande" in page.lower()
    assert page.index('value="FRA"') < page.index('value="DEU"')  # France first
    assert "Face-à-face à faire" in page
    response = browser.submit(url, _face_to_face(order.id),
                              action=f"/sessions/{delivery.id}/commandes/{order.id}/face-a-face")
    assert response.status_code == 302
    assert _order(db_session, order.id)[0] == OrderState.IDENTITY_VERIFIED
    page = _text(browser.get(url))
    assert "En attente de l&#39;enrôlement du support" in page or "En attente de l'enrôlement du support" in page
    assert "K7HD2PQ91" not in page


@pytest.mark.parametrize(("overrides", "message"), [
    ({"names_match": None}, "nouvelle commande"),
    ({"document_expiry": (TODAY - timedelta(days=1)).isoformat()}, "a expiré"),
    ({"issuing_country": "XYZ"}, "Pays de délivrance inconnu"),
    ({"document_number": ""}, "obligatoire"),
])
def test_face_to_face_refusals_say_why(browser: Browser, db_session: Session, world: World,
                                       overrides: dict[str, str | None], message: str) -> None:
    delivery = make_delivery(db_session, world.mc.account)
    order = make_order(db_session, world.commune, world.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    _login(browser, world.mc)
    url = f"/sessions/{delivery.id}/jour"
    response = browser.submit(url, _face_to_face(order.id, **overrides),  # type: ignore[arg-type]
                              action=f"/sessions/{delivery.id}/commandes/{order.id}/face-a-face")
    assert response.status_code == 400 and message in _text(response)
    assert _order(db_session, order.id)[0] == OrderState.SCHEDULED


def test_absent_holder_is_shown_and_can_be_moved(browser: Browser, db_session: Session, world: World) -> None:
    delivery = make_delivery(db_session, world.mc.account)
    later = make_delivery(db_session, world.mc.account, day=TODAY + timedelta(days=8))
    order = make_order(db_session, world.commune, world.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    _login(browser, world.mc)
    url = f"/sessions/{delivery.id}/jour"
    assert browser.submit(url, {}, action=f"/sessions/{delivery.id}/commandes/{order.id}/absent").status_code == 302
    assert _order(db_session, order.id) == (OrderState.SCHEDULED, delivery.id, True)
    assert "Absent" in _text(browser.get(url))
    response = browser.submit(f"/sessions/{delivery.id}", {"target_session_id": str(later.id)},
                              action=f"/sessions/{delivery.id}/commandes/{order.id}/deplacer")
    assert response.status_code == 302
    assert _order(db_session, order.id) == (OrderState.SCHEDULED, later.id, False)


def test_delivered_order_shows_its_certificate_serial(browser: Browser, db_session: Session, world: World) -> None:
    delivery = make_delivery(db_session, world.mc.account)
    order = make_order(db_session, world.commune, world.mc.account, state=OrderState.DELIVERED, delivery=delivery)
    serial = secrets.token_hex(16)
    now = utcnow()
    cert = Certificate(authority_id=db_session.scalars(select(Authority.id)).first(), serial=serial,
                       state=CertificateState.ISSUED, profile="rgs2-entite-double", subject="CN=Test",
                       email="test@example.fr", public_key_der=b"\x30\x00", not_before=now,
                       not_after=now + timedelta(days=365), order_id=order.id)
    db_session.add(cert)
    db_session.flush()
    order.certificate_id = cert.id
    db_session.commit()
    _login(browser, world.mc)
    page = _text(browser.get(f"/sessions/{delivery.id}/jour"))
    assert "Remis" in page and serial in page


def test_session_page_shows_invoice_lines(browser: Browser, db_session: Session, world: World) -> None:
    delivery = make_delivery(db_session, world.mc.account)
    day = TODAY - timedelta(days=12)
    for _ in range(3):
        make_order(db_session, world.commune, world.mc.account, state=OrderState.IDENTITY_VERIFIED,
                   delivery=delivery, ordered_on=day)
    make_order(db_session, world.commune, world.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    _login(browser, world.mc)
    page = _text(browser.get(f"/sessions/{delivery.id}"))
    assert "Lignes de facturation" in page and world.commune.name in page
    assert "groupe de 3 certificats" in page
    assert "855,00\u00a0€" in page and "171,00\u00a0€" in page and "1\u202f026,00\u00a0€" in page


def test_a_broken_bpu_leaves_the_session_page_up_and_says_why(browser: Browser, db_session: Session, world: World,
                                                               monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "bpu.toml"
    broken.write_text("vat_percent = \n", encoding="utf-8")
    instance = browser.app.extensions["guichet"]
    monkeypatch.setattr(instance, "settings", dataclasses.replace(instance.settings, bpu_path=broken))
    delivery = make_delivery(db_session, world.mc.account)
    make_order(db_session, world.commune, world.mc.account, state=OrderState.IDENTITY_VERIFIED, delivery=delivery)
    db_session.commit()
    _login(browser, world.mc)
    response = browser.get(f"/sessions/{delivery.id}")
    assert response.status_code == 200
    page = _text(response)
    assert "Les lignes de facturation ne peuvent pas être calculées" in page and "not valid TOML" in page


def test_cancelling_through_the_page(browser: Browser, db_session: Session, world: World) -> None:
    delivery = make_delivery(db_session, world.mc.account, day=TODAY + timedelta(days=3))
    order = make_order(db_session, world.commune, world.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    _login(browser, world.mc)
    response = browser.submit(f"/sessions/{delivery.id}", {}, action=f"/sessions/{delivery.id}/annuler")
    assert response.status_code == 302
    assert _order(db_session, order.id)[:2] == (OrderState.APPROVED, None)
    with _fresh(db_session) as fresh:
        assert fresh.get_one(DeliverySession, delivery.id).status == SessionStatus.CANCELLED


def test_a_post_without_csrf_token_is_refused(browser: Browser, db_session: Session, world: World) -> None:
    delivery = make_delivery(db_session, world.mc.account, day=TODAY + timedelta(days=3))
    order = make_order(db_session, world.commune, world.mc.account)
    db_session.commit()
    _login(browser, world.mc)
    response = browser.client.post(f"/sessions/{delivery.id}/commandes", data={"order_ids": [str(order.id)]})
    assert response.status_code == 400
    assert _order(db_session, order.id)[0] == OrderState.APPROVED


# --- who sees and does what --------------------------------------------------------------------


def _writes(delivery_id: int, approved_id: int, scheduled_id: int) -> list[tuple[str, dict[str, object]]]:
    return [
        ("/sessions/nouvelle", {"session_date": TODAY.isoformat(), "site_address": "Quelque part", "place": "site"}),
        (f"/sessions/{delivery_id}/modifier", {"session_date": TODAY.isoformat(), "site_address": "Ailleurs",
                                               "place": "site"}),
        (f"/sessions/{delivery_id}/commandes", {"order_ids": [str(approved_id)]}),
        (f"/sessions/{delivery_id}/commandes/{scheduled_id}/retirer", {}),
        (f"/sessions/{delivery_id}/commandes/{scheduled_id}/absent", {}),
        (f"/sessions/{delivery_id}/commandes/{scheduled_id}/face-a-face", _face_to_face(scheduled_id)),
        (f"/sessions/{delivery_id}/annuler", {}),
        (f"/sessions/{delivery_id}/cloturer", {}),
    ]


@pytest.fixture
def planned(db_session: Session, world: World) -> tuple[DeliverySession, Order, Order]:
    """A session of today operated by the commune's MC, with one scheduled and one approved order."""
    delivery = make_delivery(db_session, world.mc.account, address=f"Mairie {secrets.token_hex(5)}")
    scheduled = make_order(db_session, world.commune, world.mc.account, state=OrderState.SCHEDULED,
                           delivery=delivery)
    approved = make_order(db_session, world.commune, world.mc.account)
    db_session.commit()
    return delivery, scheduled, approved


@pytest.mark.parametrize("who", ["operator", "auditor"])
def test_ca_staff_read_sessions_but_every_write_is_403(browser: Browser, db_session: Session, world: World,
                                                       planned: tuple[DeliverySession, Order, Order],
                                                       who: str) -> None:
    delivery, scheduled, approved = planned
    _login(browser, getattr(world, who))
    for page in ("/sessions", f"/sessions/{delivery.id}", f"/sessions/{delivery.id}/jour",
                 f"/sessions/{delivery.id}/planification"):
        response = browser.get(page)
        assert response.status_code == 200, page
    listing = _text(browser.get(f"/sessions?q={delivery.site_address}"))
    assert f'href="/sessions/{delivery.id}"' in listing
    day = _text(browser.get(f"/sessions/{delivery.id}/jour"))
    assert f"o{scheduled.id}-document_number" not in day and "Planifier une session" not in listing
    assert browser.get("/sessions/nouvelle").status_code == 403
    for url, data in _writes(delivery.id, approved.id, scheduled.id):
        response = browser.submit("/sessions", data, action=url)
        assert response.status_code == 403, url
    assert _order(db_session, scheduled.id) == (OrderState.SCHEDULED, delivery.id, False)
    assert _order(db_session, approved.id)[0] == OrderState.APPROVED


@pytest.mark.parametrize("who", ["mc_outside", "aed_elsewhere"])
def test_out_of_scope_sessions_are_404(browser: Browser, db_session: Session, world: World,
                                       planned: tuple[DeliverySession, Order, Order], who: str) -> None:
    delivery, scheduled, approved = planned
    _login(browser, getattr(world, who))
    for page in (f"/sessions/{delivery.id}", f"/sessions/{delivery.id}/jour",
                 f"/sessions/{delivery.id}/planification", f"/sessions/{delivery.id}/modifier"):
        assert browser.get(page).status_code == 404, page
    assert f'href="/sessions/{delivery.id}"' not in _text(browser.get(f"/sessions?q={delivery.site_address}"))
    for url, data in _writes(delivery.id, approved.id, scheduled.id)[1:]:
        assert browser.submit("/sessions", data, action=url).status_code == 404, url
    assert _order(db_session, scheduled.id) == (OrderState.SCHEDULED, delivery.id, False)


def test_aed_in_scope_sees_the_mc_session_read_only(browser: Browser, db_session: Session, world: World,
                                                    planned: tuple[DeliverySession, Order, Order]) -> None:
    delivery, scheduled, approved = planned
    _login(browser, world.aed)
    page = _text(browser.get(f"/sessions/{delivery.id}"))
    assert scheduled.reference in page and "Retirer" not in page
    assert f"o{scheduled.id}-document_number" not in _text(browser.get(f"/sessions/{delivery.id}/jour"))
    for url, data in _writes(delivery.id, approved.id, scheduled.id)[1:]:
        assert browser.submit("/sessions", data, action=url).status_code == 403, url
    assert _order(db_session, scheduled.id) == (OrderState.SCHEDULED, delivery.id, False)


def test_mc_own_session_and_an_out_of_scope_order_is_404(browser: Browser, db_session: Session, world: World,
                                                         planned: tuple[DeliverySession, Order, Order]) -> None:
    delivery, _, _ = planned
    foreign = make_order(db_session, world.outside, world.mc_outside.account)
    db_session.commit()
    _login(browser, world.mc)
    response = browser.submit("/sessions", {"order_ids": [str(foreign.id)]},
                              action=f"/sessions/{delivery.id}/commandes")
    assert response.status_code == 404
    response = browser.submit("/sessions", _face_to_face(foreign.id),
                              action=f"/sessions/{delivery.id}/commandes/{foreign.id}/face-a-face")
    assert response.status_code == 404
    assert _order(db_session, foreign.id) == (OrderState.APPROVED, None, False)


def test_editing_a_session_and_the_day_screen_before_the_day(browser: Browser, db_session: Session,
                                                              world: World) -> None:
    delivery = make_delivery(db_session, world.mc.account, day=TODAY + timedelta(days=6))
    order = make_order(db_session, world.commune, world.mc.account, state=OrderState.SCHEDULED, delivery=delivery)
    db_session.commit()
    _login(browser, world.mc)
    url = f"/sessions/{delivery.id}/modifier"
    assert delivery.site_address in _text(browser.get(url))
    place = f"Maison des services {secrets.token_hex(4)}"
    response = browser.submit(url, {"session_date": (TODAY + timedelta(days=7)).isoformat(), "site_address": place,
                                    "place": "cci"})
    assert response.status_code == 302
    with _fresh(db_session) as fresh:
        changed = fresh.get_one(DeliverySession, delivery.id)
        assert (changed.session_date, changed.site_address, changed.on_site) == (TODAY + timedelta(days=7), place,
                                                                                  False)
    day = _text(browser.get(f"/sessions/{delivery.id}/jour"))
    assert "ne s&#39;enregistre que le jour" in day or "ne s'enregistre que le jour" in day
    assert f"o{order.id}-document_number" not in day


def test_ids_out_of_range_are_404_not_500(browser: Browser, db_session: Session, world: World,
                                          planned: tuple[DeliverySession, Order, Order]) -> None:
    delivery, scheduled, _ = planned
    _login(browser, world.mc)
    huge = "9" * 25
    assert browser.get(f"/sessions/{huge}").status_code == 404
    assert browser.get(f"/sessions/{delivery.id}/planification?entite={huge}").status_code == 200
    response = browser.submit("/sessions", {"order_ids": [huge]}, action=f"/sessions/{delivery.id}/commandes")
    assert response.status_code == 404
    response = browser.submit("/sessions", _face_to_face(int(huge)),
                              action=f"/sessions/{delivery.id}/commandes/{huge}/face-a-face")
    assert response.status_code == 404
    assert _order(db_session, scheduled.id) == (OrderState.SCHEDULED, delivery.id, False)
