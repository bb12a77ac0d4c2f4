"""Entities: list, page (identity, members, convention, orders), operator's create/edit form."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from ra.blueprints.common import (
    attachment, choices, form_date, int_or_none, may, show_errors, translated, uploaded_bytes,
)
from ra.errors import IllegalTransition, InvalidInput
from ra.instance import current_instance
from ra.labels import ENTITY_KIND_LABELS
from ra.models import ConventionStatus, Entity, EntityStatus
from ra.pagination import paginate
from ra.permissions import Action, in_scope, require
from ra.services import entities as service
from ra.services.orders import entity_orders
from ra.web import actor, db

bp = Blueprint("entities", __name__, url_prefix="/entites")

STATUS_CHOICES = [(EntityStatus.ACTIVE, "Active"), (EntityStatus.CLOSED, "Fermée")]


class EntityForm(FlaskForm):
    name = StringField("Nom officiel (tel qu'il figurera dans les certificats)")
    kind = SelectField("Type d'entité", choices=choices(ENTITY_KIND_LABELS.items()),
                       validate_choice=False)
    siren = StringField("SIREN")
    siret = StringField("SIRET (facultatif)")
    departement = StringField("Département")
    parent_id = SelectField("Rattachement (l'EPCI d'une commune, la commune d'un CCAS)", validate_choice=False)
    status = SelectField("Statut", choices=choices(STATUS_CHOICES), validate_choice=False)


class ConventionForm(FlaskForm):
    file = FileField("Convention signée (PDF, JPEG ou PNG, 10 Mo au plus)")
    signed_on = DateField("Date de signature", validators=[Optional()])


class DecisionForm(FlaskForm):
    note = TextAreaField("Motif (obligatoire pour un refus)")


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    args = request.args
    stmt = service.entity_list_query(actor(), kind=args.get("type"), departement=args.get("departement"),
                                     text=args.get("q"))
    filters = [("q", gettext("Nom ou SIREN"), None, args.get("q")),
               ("type", gettext("Type"), translated(ENTITY_KIND_LABELS.items()), args.get("type")),
               ("departement", gettext("Département"), None, args.get("departement"))]
    return render_template("entities/index.html", page=paginate(db(), stmt), filters=filters,
                           can_manage=may(Action.MANAGE_ACCOUNTS))


def _entity_form(entity: Entity | None = None) -> EntityForm:
    form = EntityForm(obj=entity) if entity is not None and request.method == "GET" else EntityForm()
    form.parent_id.choices = choices([("", "— aucun —")] + [
        (e.id, f"{e.name} ({ENTITY_KIND_LABELS.get(str(e.kind), e.kind)})")
        for e in service.parent_choices(db()) if entity is None or e.id != entity.id])
    if entity is not None and request.method == "GET":
        form.parent_id.data = str(entity.parent_id or "")
    return form


def _entity_input(form: EntityForm) -> service.EntityInput:
    return service.EntityInput(
        name=form.name.data or "", kind=form.kind.data or "", siren=form.siren.data or "",
        siret=form.siret.data or None, departement=form.departement.data or "",
        parent_id=int_or_none(form.parent_id.data), status=form.status.data or "")


@bp.route("/nouvelle", methods=["GET", "POST"])
@login_required
def create():  # type: ignore[no-untyped-def]
    require(actor(), Action.MANAGE_ACCOUNTS)
    form = _entity_form()
    if form.validate_on_submit():
        try:
            entity = service.create_entity(db(), actor(), _entity_input(form))
        except InvalidInput as exc:
            show_errors(form, exc, default_field="name")
        else:
            db().commit()
            flash(f"Entité « {entity.name} » créée.", "success")
            return redirect(url_for("entities.show", entity_id=entity.id))
    status = 400 if request.method == "POST" else 200
    return render_template("entities/form.html", form=form, entity=None), status


@bp.route("/<int:entity_id>/modifier", methods=["GET", "POST"])
@login_required
def edit(entity_id: int):  # type: ignore[no-untyped-def]
    require(actor(), Action.MANAGE_ACCOUNTS)
    entity = service.get_entity(db(), actor(), entity_id)
    form = _entity_form(entity)
    if form.validate_on_submit():
        try:
            service.update_entity(db(), actor(), entity_id, _entity_input(form))
        except InvalidInput as exc:
            show_errors(form, exc, default_field="name")
        else:
            db().commit()
            flash("Entité modifiée.", "success")
            return redirect(url_for("entities.show", entity_id=entity_id))
    status = 400 if request.method == "POST" else 200
    return render_template("entities/form.html", form=form, entity=entity), status


@bp.get("/<int:entity_id>")
@login_required
def show(entity_id: int, convention_form: ConventionForm | None = None,  # type: ignore[no-untyped-def]
         status: int = 200):
    entity = service.get_entity(db(), actor(), entity_id)
    territory = current_instance().settings.territory
    convention = entity.convention
    can_edit = may(Action.EDIT_ORDERS)
    can_decide = may(Action.APPROVE_DESIGNATIONS)
    return render_template(
        "entities/show.html", entity=entity, convention=convention,
        members=service.member_entities(db(), actor(), entity),
        parent_visible=entity.parent_id is not None and _visible(entity.parent_id),
        orders=entity_orders(db(), actor(), entity.id),
        convention_problem=service.convention_problem(entity, territory),
        convention_form=(convention_form or ConventionForm()) if can_edit else None,
        decision_form=DecisionForm() if can_decide and convention is not None
        and convention.status == ConventionStatus.PENDING else None,
        can_order=can_edit and service.has_approved_convention(entity) and entity.status == EntityStatus.ACTIVE,
        can_manage=may(Action.MANAGE_ACCOUNTS),
    ), status


def _visible(entity_id: int) -> bool:
    return in_scope(db(), actor(), entity_id)


@bp.post("/<int:entity_id>/convention")
@login_required
def submit_convention(entity_id: int):  # type: ignore[no-untyped-def]
    form = ConventionForm()
    if not form.validate_on_submit():
        return show(entity_id, convention_form=form, status=400)
    instance = current_instance()
    try:
        data, filename = uploaded_bytes(form.file.data)
        service.submit_convention(db(), actor(), entity_id, vault=instance.vault,
                                  territory=instance.settings.territory, data=data, filename=filename,
                                  signed_on=form_date(form.signed_on.data))
    except IllegalTransition as exc:
        flash(str(exc), "error")
        return redirect(url_for("entities.show", entity_id=entity_id))
    except InvalidInput as exc:
        db().rollback()
        show_errors(form, exc, default_field="file")
        return show(entity_id, convention_form=form, status=400)
    db().commit()
    flash("Convention déposée : elle attend l'approbation de l'AC.", "success")
    return redirect(url_for("entities.show", entity_id=entity_id))


@bp.post("/<int:entity_id>/convention/decision")
@login_required
def decide_convention(entity_id: int):  # type: ignore[no-untyped-def]
    form = DecisionForm()
    if not form.validate_on_submit():
        flash("Le formulaire a expiré : recommencez.", "error")
        return redirect(url_for("entities.show", entity_id=entity_id))
    try:
        if request.form.get("decision") == "approve":
            service.approve_convention(db(), actor(), entity_id)
            message = "Convention approuvée : l'entité peut commander."
        else:
            service.reject_convention(db(), actor(), entity_id, form.note.data)
            message = "Convention refusée."
    except (IllegalTransition, InvalidInput) as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        db().commit()
        flash(message, "success")
    return redirect(url_for("entities.show", entity_id=entity_id))


@bp.get("/<int:entity_id>/convention/document")
@login_required
def convention_document(entity_id: int):  # type: ignore[no-untyped-def]
    document, data = service.read_convention_document(db(), actor(), current_instance().vault, entity_id)
    db().commit()  # the read is audited before the file leaves
    return attachment(document, data)
