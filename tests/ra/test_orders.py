"""Orders: the transition table, creation rules, approval, cancellation, and who may do what."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.errors import Forbidden, IllegalTransition, NotFound
from ra.instance import Instance
from ra.labels import STATE_LABELS
from ra.models import (
    ConventionStatus, DocumentKind, EntityStatus, Holder, Order, OrderState, TokenState, UsbToken,
)
from ra.services.dossier import read_dossier_document, review_document
from ra.services.entities import approve_convention, submit_convention
from ra.services.inputs import FieldErrors
from ra.services.orders import (
    ACTION_LABELS, DOSSIER_OPEN, TRANSITIONS, OrderAction, approve_order, can, cancel_order, create_order,
    next_state, order_list_query,
)
from tests.ra.order_setup import (
    CONVENTION_ACTIONS, EXPECTED, FORBIDDEN, NOT_FOUND, OK, ORDER_DAY, ROLES, Scene, accept_dossier,
    fill_dossier, holder_input, make_scene, order_events, pdf_bytes, place_order, upload,
)


# --- the transition table ----------------------------------------------------------------------

@pytest.mark.parametrize(("state", "action"), list(itertools.product(OrderState, OrderAction)))
def test_every_state_and_action_follows_the_table(state: OrderState, action: OrderAction) -> None:
    target = TRANSITIONS[state].get(action)
    if target is not None:
        assert next_state(state, action) == target
        return
    with pytest.raises(IllegalTransition) as caught:
        next_state(state, action)
    assert STATE_LABELS[state] in str(caught.value) and ACTION_LABELS[action] in str(caught.value)


def test_cancel_is_possible_in_every_state_before_issued_and_only_there() -> None:
    before_issued = {OrderState.DRAFT, OrderState.DOSSIER_COMPLETE, OrderState.APPROVED, OrderState.SCHEDULED,
                     OrderState.IDENTITY_VERIFIED}
    assert {s for s in OrderState if can(s, OrderAction.CANCEL)} == before_issued
    assert TRANSITIONS[OrderState.DELIVERED] == {} and TRANSITIONS[OrderState.CANCELLED] == {}


SERVICE_ACTIONS = ("approve", "cancel", "upload", "review")


def _illegal(state: OrderState, action: str) -> bool:
    if action in ("upload", "review"):
        return state not in DOSSIER_OPEN
    return not can(state, OrderAction(action))


@pytest.mark.parametrize(("state", "action"), [
    (s, a) for s, a in itertools.product(OrderState, SERVICE_ACTIONS) if _illegal(s, a)])
def test_services_refuse_every_illegal_transition(pki: Instance, db_session: Session, state: OrderState,
                                                  action: str) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.operator, scene.commune)
    row = upload(db_session, pki.vault, scene.operator, order, DocumentKind.HOLDER_ID)
    order.state = state
    db_session.flush()
    calls: dict[str, Callable[[], object]] = {
        "approve": lambda: approve_order(db_session, scene.operator, order.id),
        "cancel": lambda: cancel_order(db_session, scene.operator, order.id, "Motif de test."),
        "upload": lambda: upload(db_session, pki.vault, scene.operator, order, DocumentKind.TERMS_OF_USE),
        "review": lambda: review_document(db_session, scene.operator, order.id, row.id, accept=True),
    }
    with pytest.raises(IllegalTransition) as caught:
        calls[action]()
    assert STATE_LABELS[state] in str(caught.value)
    assert order.state == state


# --- creation ------------------------------------------------------------------------------------

def test_order_is_created_as_a_draft_with_a_reference_and_an_audit_row(db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.accounts["mc_in"], scene.commune)
    assert re.fullmatch(r"C-2026-\d{6}", order.reference)
    assert order.state == OrderState.DRAFT and order.ordered_on == ORDER_DAY
    assert order.holder.display_name == "Marie DUBOIS" and order.created_by_id == scene.accounts["mc_in"].id
    assert order_events(db_session, order) == ["order.create"]


@pytest.mark.parametrize("convention", [None, ConventionStatus.PENDING, ConventionStatus.REJECTED])
def test_no_order_before_the_convention_is_approved(db_session: Session, convention: ConventionStatus | None) -> None:
    scene = make_scene(db_session)
    if convention is None:
        db_session.delete(scene.commune.convention)
        db_session.flush()
        db_session.expire(scene.commune)
    else:
        scene.commune.convention.status = convention
    before = db_session.scalar(select(func.count()).select_from(Order))
    with pytest.raises(FieldErrors) as caught:
        place_order(db_session, scene.operator, scene.commune)
    assert "convention" in caught.value.errors["entity_id"]
    assert db_session.scalar(select(func.count()).select_from(Order)) == before


def test_closed_entity_cannot_order(db_session: Session) -> None:
    scene = make_scene(db_session)
    scene.commune.status = EntityStatus.CLOSED
    with pytest.raises(FieldErrors) as caught:
        place_order(db_session, scene.operator, scene.commune)
    assert "fermée" in caught.value.errors["entity_id"]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"surname": "Dubois, O=Evil"}, "surname"),
    ({"surname": ""}, "surname"),
    ({"given_names": "Marie2"}, "given_names"),
    ({"given_names": "Marie-Christine Anne-Sophie Bernadette", "surname": "De La Tour Du Pin Chambly-Lauragais"},
     "given_names"),  # "<given> <SURNAME>" over 64 characters: the CN would not fit
    ({"email": "marie.dubois@"}, "email"),
    ({"title": "T" * 65}, "title"),
    ({"profile": "rgs2-individu"}, "profile"),
    ({"token_choice": "software"}, "token_choice"),
])
def test_holder_and_choices_are_checked_as_the_certificate_needs_them(
        db_session: Session, overrides: dict[str, str], field: str) -> None:
    scene = make_scene(db_session)
    holders = db_session.scalar(select(func.count()).select_from(Holder))
    with pytest.raises(FieldErrors) as caught:
        place_order(db_session, scene.operator, scene.commune, **overrides)
    assert field in caught.value.errors
    assert db_session.scalar(select(func.count()).select_from(Holder)) == holders


def test_a_person_keeps_one_holder_row_across_entities(db_session: Session) -> None:
    scene = make_scene(db_session)
    first = place_order(db_session, scene.operator, scene.commune, email="anne.le-goff@example.fr")
    second = place_order(db_session, scene.operator, scene.other, email="Anne.Le-Goff@example.fr ")
    assert second.holder_id == first.holder_id and second.entity_id != first.entity_id
    other_title = place_order(db_session, scene.operator, scene.other, email="anne.le-goff@example.fr",
                              title="Maire")
    assert other_title.holder_id != first.holder_id  # each order keeps the title it was placed with
    assert first.holder.title == "Secrétaire de mairie"


def test_token_reuse_needs_an_active_or_initialised_token_of_that_person(db_session: Session) -> None:
    scene = make_scene(db_session)
    first = place_order(db_session, scene.operator, scene.commune, email="yann.morvan@example.fr",
                        surname="Morvan", given_names="Yann")
    serial = f"TK-{first.id}"
    token = UsbToken(serial=serial, model="SafeNet 5110", state=TokenState.ACTIVE, holder_id=first.holder_id,
                     entity_id=scene.commune.id)
    db_session.add(token)
    db_session.flush()
    same_person = dict(email="yann.morvan@example.fr", surname="Morvan", given_names="Yann", token_choice="reuse")
    reuse = place_order(db_session, scene.operator, scene.commune, reused_token_serial=serial, **same_person)
    assert reuse.reused_token_id == token.id
    with pytest.raises(FieldErrors) as caught:  # somebody else's token
        place_order(db_session, scene.operator, scene.commune, token_choice="reuse", reused_token_serial=serial)
    assert "reused_token_serial" in caught.value.errors
    token.state = TokenState.LOST
    with pytest.raises(FieldErrors):
        place_order(db_session, scene.operator, scene.commune, reused_token_serial=serial, **same_person)
    with pytest.raises(FieldErrors):  # reuse without saying which token
        place_order(db_session, scene.operator, scene.commune, **same_person)


# --- approval and cancellation ---------------------------------------------------------------------

def test_operator_approves_a_complete_dossier_once_every_piece_is_accepted(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.accounts["aed_in"], scene.commune)
    rows = fill_dossier(db_session, pki.vault, scene.accounts["aed_in"], order)
    assert order.state == OrderState.DOSSIER_COMPLETE
    review_document(db_session, scene.operator, order.id, rows[0].id, accept=True)
    with pytest.raises(IllegalTransition) as caught:
        approve_order(db_session, scene.operator, order.id)
    assert "restent à examiner" in str(caught.value) and order.state == OrderState.DOSSIER_COMPLETE
    accept_dossier(db_session, scene.operator, order)
    approve_order(db_session, scene.operator, order.id)
    assert order.state == OrderState.APPROVED
    assert order_events(db_session, order)[-1] == "order.approve"


def test_cancel_needs_a_reason_and_keeps_it(db_session: Session) -> None:
    scene = make_scene(db_session)
    order = place_order(db_session, scene.accounts["mc_in"], scene.commune)
    with pytest.raises(FieldErrors) as caught:
        cancel_order(db_session, scene.accounts["mc_in"], order.id, "   ")
    assert "reason" in caught.value.errors and order.state == OrderState.DRAFT
    order.state = OrderState.SCHEDULED
    cancel_order(db_session, scene.accounts["mc_in"], order.id, "Le porteur a quitté la collectivité.")
    assert order.state == OrderState.CANCELLED
    assert order.cancelled_reason == "Le porteur a quitté la collectivité."
    assert order_events(db_session, order)[-1] == "order.cancel"


def test_orders_list_shows_only_the_actors_scope(db_session: Session) -> None:
    scene = make_scene(db_session)
    mine = place_order(db_session, scene.operator, scene.commune, surname="Le Bihan")
    theirs = place_order(db_session, scene.operator, scene.other, surname="Le Bihan")

    def listed(role: str, **filters: object) -> set[int]:
        return {o.id for o in db_session.scalars(order_list_query(scene.accounts[role], **filters))}

    assert mine.id in listed("mc_in") and theirs.id not in listed("mc_in")
    assert mine.id in listed("aed_in") and theirs.id not in listed("aed_in")
    assert {mine.id, theirs.id} <= listed("auditor", text="le bihan")
    assert mine.id not in listed("operator", state="approved")
    assert listed("operator", text=mine.reference) == {mine.id}


# --- the permission matrix, through the services --------------------------------------------------

def _run(action: str, session: Session, pki: Instance, scene: Scene, role: str) -> None:
    actor, op = scene.accounts[role], scene.operator
    vault, territory = pki.vault, pki.settings.territory
    if action == "create_order":
        create_order(session, actor, holder_input(scene.commune), today=ORDER_DAY)
    elif action in CONVENTION_ACTIONS:
        who = actor if action == "submit_convention" else op
        submit_convention(session, who, scene.commune.id, vault=vault, territory=territory, data=pdf_bytes(),
                          filename="convention.pdf", signed_on=ORDER_DAY - timedelta(days=3), today=ORDER_DAY)
        if action == "approve_convention":
            approve_convention(session, actor, scene.commune.id)
    else:
        order = place_order(session, op, scene.commune)
        if action == "upload":
            upload(session, vault, actor, order, DocumentKind.HOLDER_ID)
        elif action == "cancel":
            cancel_order(session, actor, order.id, "Commande en double.")
        elif action == "read_document":
            row = upload(session, vault, op, order, DocumentKind.HOLDER_ID)
            read_dossier_document(session, actor, vault, order.id, row.id)
        elif action == "review":
            row = upload(session, vault, op, order, DocumentKind.HOLDER_ID)
            review_document(session, actor, order.id, row.id, accept=False, note="Illisible.")
        elif action == "approve":
            fill_dossier(session, vault, op, order)
            accept_dossier(session, op, order)
            approve_order(session, actor, order.id)


@pytest.mark.parametrize(("action", "role"), list(itertools.product(EXPECTED, ROLES)))
def test_permission_matrix_through_services(pki: Instance, db_session: Session, action: str, role: str) -> None:
    scene = make_scene(db_session, convention=action not in CONVENTION_ACTIONS)
    try:
        _run(action, db_session, pki, scene, role)
        outcome = OK
    except NotFound:
        outcome = NOT_FOUND
    except Forbidden:
        outcome = FORBIDDEN
    assert outcome == EXPECTED[action][role], f"{role} → {action}"
