"""The entity and order screens through a logged-in browser: the permission matrix, the wizard,
uploads, audited downloads, read-only auditors and out-of-scope 404s."""

from __future__ import annotations

import html as html_module
import io
from datetime import date, timedelta
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from ra.documents.sniff import MAX_DOCUMENT_BYTES
from ra.fieldcrypt import FieldCipher
from ra.instance import Instance
from ra.models import (
    AuditEvent, Convention, ConventionStatus, DocumentKind, DossierDocument, Entity, EntityKind, Holder, Order,
    OrderState, ReviewStatus, Role,
)
from ra.services.entities import approve_convention, submit_convention
from tests.ra.order_setup import (
    EXPECTED, FORBIDDEN, NOT_FOUND, OK, ROLES, Scene, accept_dossier, document_rows, fill_dossier, jpeg_bytes,
    make_scene, pdf_bytes, place_order, png_bytes, upload, vault_files,
)
from tests.ra.web import Browser, Person, csrf_token, make_account, unique_siren

TODAY = date.today()
STATUS = {OK: 302, FORBIDDEN: 403, NOT_FOUND: 404}
Setup = Callable[..., tuple[Scene, Person]]


def person_for(session: Session, cipher: FieldCipher, scene: Scene, role: str) -> Person:
    """A real login account playing ``role`` with respect to the scene's commune."""
    kwargs: dict[str, Any] = {
        "mc_in": dict(role=Role.MC, entity=scene.commune), "mc_out": dict(role=Role.MC, entity=scene.other),
        "aed_in": dict(role=Role.AED, epci=scene.epci), "aed_out": dict(role=Role.AED, epci=scene.other_epci),
        "operator": dict(role=Role.OPERATOR), "auditor": dict(role=Role.AUDITOR),
        "mc_unqualified": dict(role=Role.MC, entity=scene.commune, qualified=False),
    }[role]
    return make_account(session, cipher, kwargs.pop("role"), **kwargs)


def text(response: TestResponse) -> str:
    """The page as a reader sees it (entities unescaped)."""
    return html_module.unescape(response.get_data(as_text=True))


def fresh(session: Session) -> Session:
    """End the test's transaction and forget loaded values: the next reads see what the app wrote."""
    session.rollback()
    session.expire_all()
    return session


def post(browser: Browser, url: str, data: dict[str, Any]) -> TestResponse:
    """POST with the session's CSRF token (taken from the home page, as any page carries it)."""
    token = csrf_token(text(browser.get("/")))
    return browser.client.post(url, data={"csrf_token": token, **data})


def order_form(entity: Entity, **overrides: str) -> dict[str, str]:
    values = {"entity_id": str(entity.id), "surname": "Le Gall", "given_names": "Soizic",
              "email": f"soizic.le-gall.{unique_siren()}@example.fr", "title": "Adjointe au maire",
              "profile": "rgs2-entite-double", "token_choice": "new", "reused_token_serial": ""}
    values.update(overrides)
    return values


def pdf_upload(content: bytes | None = None, name: str = "piece.pdf", when: date | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"file": (io.BytesIO(pdf_bytes() if content is None else content), name)}
    if when is not None:
        data["document_date"] = when.isoformat()
    return data


@pytest.fixture
def setup(db_session: Session, cipher: FieldCipher, browser: Browser) -> Setup:
    """(scene, logged-in browser) for a role; the scene's commune starts without a convention."""
    def build(role: str, *, convention: bool = False) -> tuple[Scene, Person]:
        scene = make_scene(db_session, convention=convention)
        person = person_for(db_session, cipher, scene, role)
        db_session.commit()
        assert browser.login(person).status_code == 302
        return scene, person
    return build


# --- the permission matrix, through the screens ------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix_through_the_screens(pki: Instance, db_session: Session, browser: Browser, setup: Setup,
                                               role: str) -> None:
    scene, _person = setup(role)
    op, vault, territory = scene.operator, pki.vault, pki.settings.territory
    commune_id = scene.commune.id  # plain ids: touching an expired object would open a transaction
    form = order_form(scene.commune)
    expect = {action: outcomes[role] for action, outcomes in EXPECTED.items()}

    def check(action: str, response: TestResponse, ok_status: int = 302) -> bool:
        wanted = ok_status if expect[action] == OK else STATUS[expect[action]]
        assert response.status_code == wanted, f"{role} → {action}: {response.status_code}"
        return expect[action] == OK

    def read(query: Any) -> Any:
        """What the database holds now, read in a transaction closed before the next request."""
        value = fresh(db_session).scalar(query)
        db_session.rollback()
        return value

    def convention_status() -> str | None:
        return read(select(Convention.status).where(Convention.entity_id == commune_id))

    # convention: submit, then approve (done by the CA's operator when the role may not)
    done = check("submit_convention", post(browser, f"/entites/{commune_id}/convention",
                                           {**pdf_upload(name="convention.pdf"),
                                            "signed_on": (TODAY - timedelta(days=1)).isoformat()}))
    assert (convention_status() == ConventionStatus.PENDING) == done
    if not done:
        submit_convention(db_session, op, commune_id, vault=vault, territory=territory, data=pdf_bytes(),
                          filename="convention.pdf", signed_on=TODAY)
        db_session.commit()
    done = check("approve_convention", post(browser, f"/entites/{commune_id}/convention/decision",
                                            {"decision": "approve", "note": ""}))
    assert (convention_status() == ConventionStatus.APPROVED) == done
    if not done:
        approve_convention(db_session, op, commune_id)
        db_session.commit()

    # orders
    done = check("create_order", post(browser, "/commandes/nouvelle", {**form, "step": "confirm"}))
    assert (read(select(func.count()).select_from(Holder).where(Holder.email == form["email"])) == 1) == done

    order = place_order(db_session, op, scene.commune, today=TODAY)
    db_session.commit()
    order_id = order.id
    page = browser.get(f"/commandes/{order_id}")
    assert page.status_code == (404 if expect["read_document"] == NOT_FOUND else 200)
    done = check("upload", post(browser, f"/commandes/{order_id}/pieces/holder_id", pdf_upload()))
    assert (read(select(func.count()).select_from(DossierDocument)
                 .where(DossierDocument.order_id == order_id)) == 1) == done

    order = fresh(db_session).get(Order, order_id)
    row_id = upload(db_session, vault, op, order, DocumentKind.LEGAL_REP_ID, today=TODAY).id
    db_session.commit()
    check("read_document", browser.get(f"/commandes/{order_id}/pieces/{row_id}/fichier"), ok_status=200)
    done = check("review", post(browser, f"/commandes/{order_id}/pieces/{row_id}/examen",
                                {"decision": "accept", "note": ""}))
    assert (read(select(DossierDocument.review_status).where(DossierDocument.id == row_id))
            == ReviewStatus.ACCEPTED) == done
    done = check("cancel", post(browser, f"/commandes/{order_id}/annulation", {"reason": "Doublon."}))
    assert (read(select(Order.state).where(Order.id == order_id)) == OrderState.CANCELLED) == done

    ready = place_order(db_session, op, scene.commune, today=TODAY)
    fill_dossier(db_session, vault, op, ready, today=TODAY)
    accept_dossier(db_session, op, ready)
    db_session.commit()
    ready_id = ready.id
    done = check("approve", post(browser, f"/commandes/{ready_id}/approbation", {}))
    assert (read(select(Order.state).where(Order.id == ready_id)) == OrderState.APPROVED) == done


# --- the wizard ----------------------------------------------------------------------------------------

def test_wizard_shows_errors_next_to_fields_and_creates_nothing_before_confirmation(
        db_session: Session, browser: Browser, setup: Setup) -> None:
    scene, _ = setup("mc_in", convention=True)
    page = browser.get("/commandes/nouvelle")
    assert page.status_code == 200 and scene.commune.name in text(page)
    bad = order_form(scene.commune, surname="Le Gall, O=Evil", email="soizic@", profile="")
    response = post(browser, "/commandes/nouvelle", {**bad, "step": "check"})
    html = text(response)
    assert response.status_code == 400
    assert html.count('class="champ en-erreur"') == 3
    assert "Nom invalide" in html and "Adresse électronique invalide." in html and "Choisissez un profil" in html
    assert 'value="Le Gall, O=Evil"' in html  # what was typed is kept

    good = order_form(scene.commune)
    confirm = post(browser, "/commandes/nouvelle", {**good, "step": "check"})
    assert confirm.status_code == 200 and "Confirmer la commande" in text(confirm)
    assert "Soizic LE GALL" in text(confirm)
    assert db_session.scalar(select(func.count()).select_from(Holder).where(Holder.email == good["email"])) == 0
    db_session.rollback()

    created = post(browser, "/commandes/nouvelle", {**good, "step": "confirm"})
    assert created.status_code == 302
    order = db_session.scalar(select(Order).join(Holder).where(Holder.email == good["email"]))
    assert order is not None and created.location.endswith(f"/commandes/{order.id}")
    order_id, reference = order.id, order.reference
    db_session.rollback()
    shown = text(browser.get(f"/commandes/{order_id}"))
    assert reference in shown and "Pièce manquante" in shown


def test_wizard_offers_only_entities_with_an_approved_convention(db_session: Session, browser: Browser,
                                                                 setup: Setup) -> None:
    scene, _ = setup("aed_in")  # the commune has no convention
    html = text(browser.get("/commandes/nouvelle"))
    assert scene.commune.name not in html
    response = post(browser, "/commandes/nouvelle", {**order_form(scene.commune), "step": "confirm"})
    assert response.status_code == 400 and "convention d'adhésion" in text(response)


# --- uploads and downloads -----------------------------------------------------------------------------

BAD_UPLOADS = {
    "oversize": lambda: (pdf_bytes() + b"\n" * MAX_DOCUMENT_BYTES)[:MAX_DOCUMENT_BYTES + 1],
    "wrong type": lambda: b"<html><body>pas une carte</body></html>",
    "empty": lambda: b"",
    "polyglot": lambda: jpeg_bytes() + pdf_bytes(),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_refused_upload_shows_why_and_stores_nothing(pki: Instance, db_session: Session, browser: Browser,
                                                     setup: Setup, case: str) -> None:
    scene, person = setup("mc_in", convention=True)
    order_id = place_order(db_session, person.account, scene.commune, today=TODAY).id
    db_session.commit()
    files, documents = vault_files(pki.vault), document_rows(db_session)
    db_session.rollback()
    response = post(browser, f"/commandes/{order_id}/pieces/holder_id", pdf_upload(BAD_UPLOADS[case](), "cni.pdf"))
    assert response.status_code == 400
    assert 'class="erreur"' in text(response)
    assert vault_files(pki.vault) == files and document_rows(db_session) == documents
    db_session.rollback()


def test_dated_piece_errors_show_next_to_the_date(db_session: Session, browser: Browser, setup: Setup) -> None:
    scene, person = setup("mc_in", convention=True)
    order = place_order(db_session, person.account, scene.commune, today=TODAY)
    db_session.commit()
    response = post(browser, f"/commandes/{order.id}/pieces/request", pdf_upload(when=TODAY - timedelta(days=200)))
    html = text(response)
    assert response.status_code == 400 and "moins de 3 mois" in html and 'id="date-request"' in html
    undated = post(browser, f"/commandes/{order.id}/pieces/request", pdf_upload())
    assert undated.status_code == 400 and "la date du document est obligatoire" in text(undated)
    fine = post(browser, f"/commandes/{order.id}/pieces/request", pdf_upload(when=TODAY))
    assert fine.status_code == 302


def test_download_is_an_audited_uncached_attachment(pki: Instance, db_session: Session, browser: Browser,
                                                    setup: Setup) -> None:
    scene, person = setup("auditor", convention=True)
    order = place_order(db_session, scene.operator, scene.commune, today=TODAY)
    content = png_bytes()
    row = upload(db_session, pki.vault, scene.operator, order, DocumentKind.HOLDER_ID, data=content,
                 filename="carte identité.png", today=TODAY)
    db_session.commit()
    response = browser.get(f"/commandes/{order.id}/pieces/{row.id}/fichier")
    assert response.status_code == 200 and response.data == content
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "identit" in response.headers["Content-Disposition"]
    reads = list(db_session.scalars(select(AuditEvent.actor).where(
        AuditEvent.action == "document.read", AuditEvent.object_id == str(row.document_id))))
    assert reads == [person.email]
    db_session.rollback()


# --- read-only auditors, out-of-scope 404s, lists --------------------------------------------------------

def test_auditor_sees_pages_without_any_form(pki: Instance, db_session: Session, browser: Browser,
                                             setup: Setup) -> None:
    scene, _ = setup("auditor", convention=True)
    order = place_order(db_session, scene.operator, scene.commune, today=TODAY)
    fill_dossier(db_session, pki.vault, scene.operator, order, today=TODAY)
    db_session.commit()
    for url in (f"/commandes/{order.id}", f"/entites/{scene.commune.id}", f"/commandes/?q={order.reference}",
                f"/entites/?q={scene.commune.siren}"):
        html = text(browser.get(url))
        assert order.reference in html or scene.commune.name in html, url
        assert html.count('method="post"') == 1, url  # the logout button only
    assert "/fichier" in text(browser.get(f"/commandes/{order.id}"))
    assert browser.get("/commandes/nouvelle").status_code == 403


def test_out_of_scope_ids_are_404(db_session: Session, browser: Browser, setup: Setup) -> None:
    scene, _ = setup("mc_out", convention=True)
    order = place_order(db_session, scene.operator, scene.commune, today=TODAY)
    db_session.commit()
    entity_url = f"/entites/{scene.commune.id}"
    for url in (f"/commandes/{order.id}", entity_url, f"{entity_url}/convention/document", "/commandes/999999999",
                "/entites/999999999"):
        assert browser.get(url).status_code == 404, url
    listing = text(browser.get("/commandes/?q=" + order.reference))
    assert f'href="/commandes/{order.id}"' not in listing and "Aucune commande ne correspond." in listing


def test_lists_filter_and_stay_in_scope(db_session: Session, browser: Browser, setup: Setup) -> None:
    scene, _ = setup("aed_in", convention=True)
    mine = place_order(db_session, scene.operator, scene.commune, today=TODAY, surname="Kerbrat")
    theirs = place_order(db_session, scene.operator, scene.other, today=TODAY, surname="Kerbrat")
    mine_cancelled = place_order(db_session, scene.operator, scene.commune, today=TODAY, surname="Kerbrat")
    mine_cancelled.state = OrderState.CANCELLED
    db_session.commit()
    html = text(browser.get("/commandes/?q=kerbrat"))
    assert mine.reference in html and mine_cancelled.reference in html and theirs.reference not in html
    html = text(browser.get("/commandes/?q=kerbrat&etat=draft"))
    assert mine.reference in html and mine_cancelled.reference not in html
    html = text(browser.get(f"/commandes/?entite={scene.commune.id}"))
    assert mine.reference in html
    entities = text(browser.get("/entites/?type=epci"))
    assert scene.epci.name in entities and scene.commune.name not in entities and scene.other_epci.name not in entities


def test_entity_names_in_the_filter_are_escaped_text(db_session: Session, browser: Browser, setup: Setup) -> None:
    scene, _ = setup("aed_in")
    scene.commune.name = "<b>SYNDICAT</b> 100% EAU"  # markup and a % sign, as stored data may hold
    db_session.commit()
    response = browser.get("/commandes/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "&lt;b&gt;SYNDICAT&lt;/b&gt; 100% EAU" in page and "<b>SYNDICAT" not in page


def test_cancel_without_reason_shows_the_error_and_keeps_the_order(db_session: Session, browser: Browser,
                                                                   setup: Setup) -> None:
    scene, person = setup("mc_in", convention=True)
    order = place_order(db_session, person.account, scene.commune, today=TODAY)
    db_session.commit()
    response = post(browser, f"/commandes/{order.id}/annulation", {"reason": " "})
    assert response.status_code == 400 and "Le motif de l'annulation est obligatoire." in text(response)
    assert fresh(db_session).get(Order, order.id).state == OrderState.DRAFT  # type: ignore[union-attr]
    db_session.rollback()


# --- entities ----------------------------------------------------------------------------------------------

def test_operator_creates_an_entity_through_the_form(db_session: Session, browser: Browser, setup: Setup) -> None:
    scene, _ = setup("operator")
    siren = unique_siren()
    bad = post(browser, "/entites/nouvelle", {"name": "MAIRIE=X", "kind": "commune", "siren": "123456789",
                                              "departement": "99", "parent_id": str(scene.commune.id),
                                              "status": "active"})
    html = text(bad)
    assert bad.status_code == 400 and html.count('class="champ en-erreur"') == 4
    good = post(browser, "/entites/nouvelle", {"name": "COMMUNE DE PLOUHA", "kind": "commune", "siren": siren,
                                               "departement": "22", "parent_id": str(scene.epci.id),
                                               "status": "active", "siret": ""})
    assert good.status_code == 302
    entity = db_session.scalar(select(Entity).where(Entity.siren == siren))
    assert entity is not None and entity.parent_id == scene.epci.id and entity.kind == EntityKind.COMMUNE
    entity_id = entity.id
    db_session.rollback()
    page = text(browser.get(f"/entites/{entity_id}"))
    assert "Déposer la convention signée" in page and "Modifier l'entité" in page


@pytest.mark.parametrize("role", ["mc_in", "aed_in", "auditor"])
def test_only_operators_reach_the_entity_form(browser: Browser, setup: Setup, role: str) -> None:
    scene, _ = setup(role)
    assert browser.get("/entites/nouvelle").status_code == 403
    assert browser.get(f"/entites/{scene.commune.id}/modifier").status_code == 403


def test_entity_outside_the_territory_is_told_it_cannot_sign(db_session: Session, browser: Browser,
                                                             setup: Setup) -> None:
    scene, _ = setup("mc_in")
    scene.commune.departement = "75"
    db_session.commit()
    html = text(browser.get(f"/entites/{scene.commune.id}"))
    assert "22, 29, 35, 56" in html and "Déposer la convention signée" not in html
    response = post(browser, f"/entites/{scene.commune.id}/convention",
                    {**pdf_upload(name="convention.pdf"), "signed_on": TODAY.isoformat()})
    assert response.status_code == 400
    assert fresh(db_session).get(Entity, scene.commune.id).convention is None  # type: ignore[union-attr]
    db_session.rollback()
