"""Entities (identity checks, parents, scope) and the convention d'adhésion."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.errors import Forbidden, IllegalTransition, InvalidInput
from ra.instance import Instance
from ra.models import AuditEvent, ConventionStatus, EntityKind, Role
from ra.services.entities import (
    EntityInput, approve_convention, create_entity, entity_list_query, read_convention_document,
    reject_convention, submit_convention, update_entity,
)
from ra.services.inputs import FieldErrors
from tests.ra.order_setup import (
    ORDER_DAY, document_rows, make_scene, pdf_bytes, png_bytes, quick_account, vault_files,
)
from tests.ra.web import make_entity, unique_siren


def entity_input(**overrides: object) -> EntityInput:
    siren = unique_siren()
    values: dict[str, object] = dict(name="COMMUNE DE PLOUGASTEL-DAOULAS", kind="commune", siren=siren,
                                     departement="29")
    values.update(overrides)
    return EntityInput(**values)  # type: ignore[arg-type]


def last_audit(session: Session, action: str, object_id: int) -> AuditEvent:
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == action,
                                                    AuditEvent.object_id == str(object_id))
                           .order_by(AuditEvent.seq.desc()).limit(1))
    assert event is not None, action
    return event


# --- entities --------------------------------------------------------------------------------------

def test_operator_creates_an_entity_with_checked_identifiers(db_session: Session) -> None:
    operator = quick_account(db_session, Role.OPERATOR)
    epci = make_entity(db_session, kind=EntityKind.EPCI)
    siren = unique_siren()
    entity = create_entity(db_session, operator, entity_input(
        name="  COMMUNE  DE  LANDERNEAU ", siren=f"{siren[:3]} {siren[3:6]} {siren[6:]}", parent_id=epci.id))
    assert (entity.name, entity.siren, entity.parent_id) == ("COMMUNE DE LANDERNEAU", siren, epci.id)
    details = json.loads(last_audit(db_session, "entity.create", entity.id).details)
    assert details["siren"] == siren and details["kind"] == "commune"


def _siret_for(siren: str) -> str:
    from tests.ra.web import luhn_complete

    return luhn_complete(siren + "0001")


@pytest.mark.parametrize(("overrides", "field"), [
    ({"name": "C" * 65}, "name"),
    ({"name": "MAIRIE, CN=Evil+O=X"}, "name"),
    ({"name": ""}, "name"),
    ({"siren": "123456789"}, "siren"),  # fails its Luhn key
    ({"siren": "12345678"}, "siren"),
    ({"siret": "12345678901234"}, "siret"),
    ({"siret": "SIRET_OF_ANOTHER"}, "siret"),
    ({"departement": "2C"}, "departement"),
    ({"departement": "100"}, "departement"),
    ({"kind": "mairie"}, "kind"),
    ({"status": "dissoute"}, "status"),
])
def test_entity_input_is_refused_field_by_field(db_session: Session, overrides: dict[str, str], field: str) -> None:
    operator = quick_account(db_session, Role.OPERATOR)
    if overrides.get("siret") == "SIRET_OF_ANOTHER":
        overrides = {"siret": _siret_for(unique_siren())}
    with pytest.raises(FieldErrors) as caught:
        create_entity(db_session, operator, entity_input(**overrides))
    assert set(caught.value.errors) == {field}


def test_siret_must_start_with_the_siren_and_siren_is_unique(db_session: Session) -> None:
    operator = quick_account(db_session, Role.OPERATOR)
    siren = unique_siren()
    entity = create_entity(db_session, operator, entity_input(siren=siren, siret=_siret_for(siren)))
    assert entity.siret and entity.siret.startswith(siren)
    with pytest.raises(FieldErrors) as caught:
        create_entity(db_session, operator, entity_input(siren=siren))
    assert "existe déjà" in caught.value.errors["siren"]


@pytest.mark.parametrize(("kind", "parent_kind", "accepted"), [
    (EntityKind.COMMUNE, EntityKind.EPCI, True),
    (EntityKind.COMMUNE, EntityKind.COMMUNE, False),
    (EntityKind.CCAS, EntityKind.COMMUNE, True),
    (EntityKind.CCAS, EntityKind.EPCI, False),
    (EntityKind.EPCI, EntityKind.EPCI, False),
    (EntityKind.ENTREPRISE, EntityKind.EPCI, False),
])
def test_parent_must_fit_the_kind(db_session: Session, kind: EntityKind, parent_kind: EntityKind,
                                  accepted: bool) -> None:
    operator = quick_account(db_session, Role.OPERATOR)
    parent = make_entity(db_session, kind=parent_kind)
    data = entity_input(kind=str(kind), parent_id=parent.id)
    if accepted:
        assert create_entity(db_session, operator, data).parent_id == parent.id
        return
    with pytest.raises(FieldErrors) as caught:
        create_entity(db_session, operator, data)
    assert "parent_id" in caught.value.errors


@pytest.mark.parametrize("role", [Role.MC, Role.AED, Role.AUDITOR])
def test_only_operators_manage_entities(db_session: Session, role: Role) -> None:
    scene = make_scene(db_session)
    actor = {Role.MC: scene.accounts["mc_in"], Role.AED: scene.accounts["aed_in"],
             Role.AUDITOR: scene.accounts["auditor"]}[role]
    with pytest.raises(Forbidden):
        create_entity(db_session, actor, entity_input())
    with pytest.raises(Forbidden):
        update_entity(db_session, actor, scene.commune.id, entity_input(siren=scene.commune.siren))


def test_update_records_each_change_and_keeps_members_valid(db_session: Session) -> None:
    scene = make_scene(db_session)
    commune = scene.commune
    update_entity(db_session, scene.operator, commune.id, entity_input(
        name="COMMUNE NOUVELLE DE TEST", siren=commune.siren, departement="22", parent_id=scene.epci.id))
    changes = json.loads(last_audit(db_session, "entity.update", commune.id).details)
    assert changes["name"][1] == "COMMUNE NOUVELLE DE TEST" and "siren" not in changes
    with pytest.raises(FieldErrors) as caught:  # an EPCI with member communes cannot become a commune
        update_entity(db_session, scene.operator, scene.epci.id, entity_input(
            name=scene.epci.name, siren=scene.epci.siren, departement="22"))
    assert "kind" in caught.value.errors


def test_entity_list_is_scoped_and_filtered(db_session: Session) -> None:
    scene = make_scene(db_session)
    ccas = make_entity(db_session, "CCAS DE TEST", kind=EntityKind.CCAS, parent=scene.commune)

    def listed(role: str, **filters: str) -> set[int]:
        return {e.id for e in db_session.scalars(entity_list_query(scene.accounts[role], **filters))}

    assert listed("mc_in") == {scene.commune.id}
    assert {scene.epci.id, scene.commune.id, ccas.id} <= listed("aed_in")
    assert scene.other.id not in listed("aed_in")
    assert {scene.commune.id, scene.other.id} <= listed("auditor")
    assert listed("aed_in", kind="ccas") == {ccas.id}
    assert listed("operator", text=scene.commune.siren) == {scene.commune.id}
    assert listed("operator", text=scene.commune.name.lower()) == {scene.commune.id}


# --- convention d'adhésion -------------------------------------------------------------------------

def _submit(pki: Instance, session: Session, actor, entity, **overrides):  # type: ignore[no-untyped-def]
    values = dict(vault=pki.vault, territory=pki.settings.territory, data=pdf_bytes("Convention"),
                  filename="convention.pdf", signed_on=ORDER_DAY - timedelta(days=2), today=ORDER_DAY)
    values.update(overrides)
    return submit_convention(session, actor, entity.id, **values)


def test_convention_is_submitted_then_approved_once_and_never_replaced(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session, convention=False)
    convention = _submit(pki, db_session, scene.accounts["aed_in"], scene.commune)
    assert convention.status == ConventionStatus.PENDING and convention.submitted_by_id == scene.accounts["aed_in"].id
    approve_convention(db_session, scene.operator, scene.commune.id)
    assert convention.status == ConventionStatus.APPROVED and convention.decided_by_id == scene.operator.id
    with pytest.raises(IllegalTransition):
        approve_convention(db_session, scene.operator, scene.commune.id)
    files, documents = vault_files(pki.vault), document_rows(db_session)
    with pytest.raises(IllegalTransition) as caught:
        _submit(pki, db_session, scene.accounts["mc_in"], scene.commune)
    assert "ne peut pas être remplacée" in str(caught.value)
    assert vault_files(pki.vault) == files and document_rows(db_session) == documents


def test_rejected_convention_is_replaced_by_a_new_submission(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session, convention=False)
    first = _submit(pki, db_session, scene.accounts["mc_in"], scene.commune)
    first_document = first.document_id
    with pytest.raises(FieldErrors):
        reject_convention(db_session, scene.operator, scene.commune.id, "")
    reject_convention(db_session, scene.operator, scene.commune.id, "Signature du maire absente.")
    assert first.status == ConventionStatus.REJECTED and first.decision_note == "Signature du maire absente."
    again = _submit(pki, db_session, scene.accounts["mc_in"], scene.commune, data=png_bytes(), filename="c.png")
    assert again.id == first.id and again.document_id != first_document
    assert again.status == ConventionStatus.PENDING and again.decision_note is None
    details = json.loads(last_audit(db_session, "convention.submit", again.id).details)
    assert details["replaces"] == first_document


@pytest.mark.parametrize("departement", ["75", "44", "2A"])
def test_only_entities_of_the_territory_sign_a_convention(pki: Instance, db_session: Session,
                                                          departement: str) -> None:
    scene = make_scene(db_session, convention=False)
    scene.commune.departement = departement
    files, documents = vault_files(pki.vault), document_rows(db_session)
    with pytest.raises(InvalidInput) as caught:
        _submit(pki, db_session, scene.operator, scene.commune)
    assert "22, 29, 35, 56" in str(caught.value)
    assert scene.commune.convention is None
    assert vault_files(pki.vault) == files and document_rows(db_session) == documents


@pytest.mark.parametrize(("signed_on", "word"), [(None, "obligatoire"), (ORDER_DAY + timedelta(days=1), "futur")])
def test_convention_needs_its_signature_date(pki: Instance, db_session: Session, signed_on: date | None,
                                            word: str) -> None:
    scene = make_scene(db_session, convention=False)
    with pytest.raises(FieldErrors) as caught:
        _submit(pki, db_session, scene.accounts["mc_in"], scene.commune, signed_on=signed_on)
    assert word in caught.value.errors["signed_on"]


def test_convention_file_is_checked_and_its_reads_audited(pki: Instance, db_session: Session) -> None:
    scene = make_scene(db_session, convention=False)
    files, documents = vault_files(pki.vault), document_rows(db_session)
    with pytest.raises(InvalidInput):
        _submit(pki, db_session, scene.accounts["mc_in"], scene.commune, data=b"PK\x03\x04 not a pdf",
                filename="convention.pdf")
    assert vault_files(pki.vault) == files and document_rows(db_session) == documents
    content = pdf_bytes("Convention signee")
    _submit(pki, db_session, scene.accounts["mc_in"], scene.commune, data=content)
    document, data = read_convention_document(db_session, scene.accounts["auditor"], pki.vault, scene.commune.id)
    assert data == content
    assert last_audit(db_session, "document.read", document.id).actor == scene.accounts["auditor"].email
