"""A person's journey in Chromium: login → order → dossier → session → face-to-face."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pyotp
from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.db import utcnow
from ra.fieldcrypt import FieldCipher
from ra.models import DocumentKind, Order, OrderState, Role
from tests.ra.web import Person, make_account, make_entity


def pdf_file(folder: Path, name: str) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(0, 10, f"Piece de test : {name}")
    path = folder / f"{name}.pdf"
    path.write_bytes(bytes(pdf.output()))
    return path


class Desk:
    """What a person does in the browser, in the domain's words."""

    def __init__(self, page, base: str, shots) -> None:  # type: ignore[no-untyped-def]
        self.page, self.base, self.shots = page, base, shots
        self._steps: dict[str, int] = {}

    def code(self, person: Person) -> str:
        step = int(utcnow().timestamp() // 30)
        last = self._steps.get(person.email, -10)
        step = max(step, last + 1)  # never the same code twice for one account
        self._steps[person.email] = step
        return pyotp.TOTP(person.totp_seed).at(step * 30)

    def login(self, person: Person) -> None:
        page = self.page
        page.goto(f"{self.base}/connexion")
        page.fill("input[name=email]", person.email)
        page.fill("input[name=password]", person.password)
        page.fill("input[name=code]", self.code(person))
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.base}/")

    def logout(self) -> None:
        self.page.click("text=Se déconnecter")
        self.page.wait_for_url(re.compile(r".*/connexion"))


def test_order_to_face_to_face_in_chromium(
    server: str, browser_page, shots, db_session: Session, cipher: FieldCipher, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    commune = make_entity(db_session, "COMMUNE DE KERNAVAL")
    mc = make_account(db_session, cipher, Role.MC, entity=commune, name="Jeanne Mandataire")
    operator = make_account(db_session, cipher, Role.OPERATOR, name="Alain Operateur")
    db_session.commit()
    page, desk = browser_page, Desk(browser_page, server, shots)

    # 1. The MC logs in and orders a certificate for a holder of her commune.
    desk.login(mc)
    shots(page, "accueil-mandataire")
    page.goto(f"{server}/commandes/nouvelle")
    page.select_option("select[name=entity_id]", str(commune.id))
    page.fill("input[name=surname]", "Kerjean")
    page.fill("input[name=given_names]", "Armelle")
    page.fill("input[name=email]", "armelle.kerjean@kernaval.example.fr")
    page.fill("input[name=title]", "Secrétaire de mairie")
    page.check("input[name=token_choice][value=new]")
    shots(page, "commande-saisie")
    page.click("button[value=check]")
    shots(page, "commande-verification")
    page.click("button[value=confirm]")
    page.wait_for_url(re.compile(r".*/commandes/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    assert "Brouillon" in page.inner_text("main")

    # 2. She uploads the five papers of the dossier.
    for kind in DocumentKind:
        page.set_input_files(f"#file-{kind}", str(pdf_file(tmp_path, str(kind))))
        if page.locator(f"#date-{kind}").count():
            page.fill(f"#date-{kind}", (date.today() - timedelta(days=10)).isoformat())
        page.locator(f"form[action$='/pieces/{kind}'] button[type=submit]").click()
        page.wait_for_load_state()
    shots(page, "dossier-complet")
    assert "Dossier complet" in page.inner_text("main")
    desk.logout()

    # 3. The CA operator reviews every paper and approves the order.
    desk.login(operator)
    page.goto(f"{server}/commandes/{order_id}")
    for row in range(len(DocumentKind)):  # each paper in turn (rows keep their order)
        with page.expect_navigation():
            page.locator("button[value=accept]").nth(row).click()
    shots(page, "pieces-acceptees")
    page.click("text=Approuver la commande")
    page.wait_for_load_state()
    shots(page, "commande-approuvee")
    assert "Approuvée" in page.inner_text("main")
    desk.logout()

    # 4. The MC plans today's delivery session and adds the order.
    desk.login(mc)
    page.goto(f"{server}/sessions/nouvelle")
    page.fill("input[name=session_date]", date.today().isoformat())
    page.fill("[name=site_address]", "2 rue de la Mairie, 22100 Kernaval")
    page.locator("button[type=submit]", has_text="Enregistrer").click()
    page.wait_for_url(re.compile(r".*/sessions/\d+/planification$"))  # straight to planning
    session_id = int(page.url.rsplit("/", 2)[1])
    page.check(f"#commande-{order_id}")
    shots(page, "session-planification")
    page.click("text=Ajouter les commandes cochées")
    page.wait_for_load_state()

    # 5. On the day, the face-to-face with the holder's identity card.
    page.goto(f"{server}/sessions/{session_id}/jour")
    form = page.locator(f"form[action$='/commandes/{order_id}/face-a-face']")
    form.locator("input[name$=in_person]").check()
    form.locator("select[name$=document_type]").select_option("cni")
    form.locator("input[name$=document_number]").fill("X4RTBPFW4")
    form.locator("input[name$=document_expiry]").fill((date.today() + timedelta(days=700)).isoformat())
    form.locator("select[name$=issuing_country]").select_option("FRA")
    form.locator("input[name$=names_match]").check()
    shots(page, "face-a-face-saisie")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    shots(page, "face-a-face-enregistre")
    assert "Identité vérifiée" in page.inner_text("main")

    db_session.expire_all()
    order = db_session.scalar(select(Order).where(Order.id == order_id))
    assert order is not None and order.state == OrderState.IDENTITY_VERIFIED
    assert order.holder.surname.upper() == "KERJEAN"
    db_session.rollback()
