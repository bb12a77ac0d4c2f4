"""Orders: list, wizard (entity → holder → profile and token → confirmation), order page with
its dossier (upload, review, audited downloads), approval and cancellation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, EmailField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from ca.profiles import PROFILES
from ra.blueprints.common import (
    attachment, choices, form_date, int_or_none, may, show_errors, translated, uploaded_bytes,
)
from ra.errors import IllegalTransition, InvalidInput
from ra.instance import current_instance
from ra.labels import PROFILE_LABELS, STATE_LABELS
from ra.models import DocumentKind, Order, OrderState
from ra.pagination import paginate
from ra.permissions import Action, require
from ra.services import dossier, orders as service
from ra.services.dossier_rules import not_accepted
from ra.services.entities import entity_choices
from ra.web import actor, db

bp = Blueprint("orders", __name__, url_prefix="/commandes")

TOKEN_CHOICES = [("new", "Nouveau support"),
                 ("reuse", "Réutiliser un support du porteur (actif ou initialisé), effacé avant l'enrôlement")]
DEFAULT_PROFILE = "rgs2-entite-double"


class OrderForm(FlaskForm):
    entity_id = SelectField("Entité (convention d'adhésion approuvée)", validate_choice=False)
    surname = StringField("Nom, tel qu'il figure sur la pièce d'identité")
    given_names = StringField("Prénoms, tels qu'ils figurent sur la pièce d'identité")
    email = EmailField("Adresse électronique du porteur")
    title = StringField("Fonction (facultatif ; figure dans le certificat)")
    profile = RadioField("Profil du certificat", validate_choice=False)
    token_choice = RadioField("Support", choices=choices(TOKEN_CHOICES), validate_choice=False)
    reused_token_serial = StringField("Numéro de série du support à réutiliser")


class UploadForm(FlaskForm):
    file = FileField("Fichier (PDF, JPEG ou PNG, 10 Mo au plus)")
    document_date = DateField("Date du document", validators=[Optional()])


class ReviewForm(FlaskForm):
    note = StringField("Note (obligatoire pour un refus)")


class CancelForm(FlaskForm):
    reason = TextAreaField("Motif de l'annulation")


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    args = request.args
    stmt = service.order_list_query(actor(), state=args.get("etat"), entity_id=int_or_none(args.get("entite")),
                                    text=args.get("q"))
    states = translated((str(s), STATE_LABELS[str(s)]) for s in OrderState)
    entities = [(str(i), name) for i, name in entity_choices(db(), actor())]
    filters = [("q", gettext("Porteur ou référence"), None, args.get("q")),
               ("etat", gettext("État"), states, args.get("etat")),
               ("entite", gettext("Entité"), entities, args.get("entite"))]  # names, not translated
    return render_template("orders/index.html", page=paginate(db(), stmt), filters=filters,
                           can_create=may(Action.EDIT_ORDERS))


def _order_form() -> OrderForm:
    form = OrderForm()
    form.entity_id.choices = choices([("", "— choisir —")] + [
        (e.id, f"{e.name} ({e.siren})") for e in service.orderable_entities(db(), actor())])
    form.profile.choices = choices((name, PROFILE_LABELS.get(name, p.label_fr)) for name, p in PROFILES.items())
    if request.method == "GET":
        form.entity_id.data = request.args.get("entite", "")
        form.profile.data = DEFAULT_PROFILE
        form.token_choice.data = "new"
    return form


def _new_order(form: OrderForm) -> service.NewOrder:
    return service.NewOrder(
        entity_id=int_or_none(form.entity_id.data), surname=form.surname.data or "",
        given_names=form.given_names.data or "", email=form.email.data or "", title=form.title.data or None,
        profile=form.profile.data or "", token_choice=form.token_choice.data or "",
        reused_token_serial=form.reused_token_serial.data or None)


@bp.route("/nouvelle", methods=["GET", "POST"])
@login_required
def create():  # type: ignore[no-untyped-def]
    """One form in sections; a valid POST shows the confirmation, which alone creates the order."""
    require(actor(), Action.EDIT_ORDERS)
    form = _order_form()
    step = request.form.get("step", "check")
    if form.validate_on_submit() and step != "edit":
        try:
            if step == "confirm":
                order = service.create_order(db(), actor(), _new_order(form))
                db().commit()
                flash(f"Commande {order.reference} créée : déposez maintenant les pièces du dossier.", "success")
                return redirect(url_for("orders.show", order_id=order.id))
            checked = service.check_order(db(), actor(), _new_order(form))
        except InvalidInput as exc:
            db().rollback()
            show_errors(form, exc, default_field="entity_id")
        else:
            return render_template("orders/confirm.html", form=form, checked=checked,
                                   profile_label=PROFILE_LABELS.get(checked.profile, checked.profile))
    status = 400 if request.method == "POST" and form.errors else 200
    return render_template("orders/new.html", form=form), status


def _page(order: Order, *, upload: tuple[str, UploadForm] | None = None,
          cancel_form: CancelForm | None = None, status: int = 200) -> Any:
    can_edit, can_review = may(Action.EDIT_ORDERS), may(Action.APPROVE_DESIGNATIONS)
    dossier_open = order.state in service.DOSSIER_OPEN
    lines = dossier.dossier_lines(order)
    uploads = {}
    if can_edit and dossier_open:
        for line in lines:
            uploads[str(line.kind)] = upload[1] if upload and upload[0] == line.kind else UploadForm(formdata=None)
    return render_template(
        "orders/show.html", order=order, lines=lines,
        missing=dossier.missing_items(order), token=service.reused_token(db(), order),
        profile_label=PROFILE_LABELS.get(order.profile, order.profile), uploads=uploads,
        review_form=ReviewForm(formdata=None) if can_review and dossier_open else None,
        can_approve=can_review and service.can(order.state, service.OrderAction.APPROVE),
        waiting=not_accepted(order) if can_review else [],
        cancel_form=(cancel_form or CancelForm(formdata=None))
        if can_edit and service.can(order.state, service.OrderAction.CANCEL) else None,
    ), status


@bp.get("/<int:order_id>")
@login_required
def show(order_id: int):  # type: ignore[no-untyped-def]
    return _page(service.order_for(db(), actor(), order_id))


@bp.post("/<int:order_id>/pieces/<kind>")
@login_required
def upload(order_id: int, kind: str):  # type: ignore[no-untyped-def]
    form = UploadForm()
    if kind not in set(DocumentKind):
        abort(404)
    try:
        if not form.validate_on_submit():  # an unreadable date: WTForms says so next to the field
            return _page(service.order_for(db(), actor(), order_id, Action.EDIT_ORDERS), upload=(kind, form),
                         status=400)
        data, filename = uploaded_bytes(form.file.data)
        dossier.upload_document(db(), actor(), order_id, vault=current_instance().vault, kind=kind,
                                data=data, filename=filename, document_date=form_date(form.document_date.data))
    except IllegalTransition as exc:
        db().rollback()
        flash(str(exc), "error")
    except InvalidInput as exc:
        db().rollback()
        order = service.order_for(db(), actor(), order_id, Action.EDIT_ORDERS)
        show_errors(form, exc, default_field="file")
        return _page(order, upload=(kind, form), status=400)
    else:
        db().commit()
        flash("Pièce déposée.", "success")
    return redirect(url_for("orders.show", order_id=order_id))


@bp.post("/<int:order_id>/pieces/<int:row_id>/examen")
@login_required
def review(order_id: int, row_id: int):  # type: ignore[no-untyped-def]
    form = ReviewForm()
    form.validate_on_submit()
    accept = request.form.get("decision") == "accept"
    try:
        dossier.review_document(db(), actor(), order_id, row_id, accept=accept, note=form.note.data)
    except (IllegalTransition, InvalidInput) as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        db().commit()
        flash("Pièce acceptée." if accept else "Pièce refusée.", "success")
    return redirect(url_for("orders.show", order_id=order_id))


@bp.get("/<int:order_id>/pieces/<int:row_id>/fichier")
@login_required
def document(order_id: int, row_id: int):  # type: ignore[no-untyped-def]
    stored, data = dossier.read_dossier_document(db(), actor(), current_instance().vault, order_id, row_id)
    db().commit()  # the read is audited before the file leaves
    return attachment(stored, data)


@bp.post("/<int:order_id>/approbation")
@login_required
def approve(order_id: int):  # type: ignore[no-untyped-def]
    try:
        order = service.approve_order(db(), actor(), order_id)
    except IllegalTransition as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        db().commit()
        flash(f"Commande {order.reference} approuvée : elle peut être planifiée pour une remise.", "success")
    return redirect(url_for("orders.show", order_id=order_id))


@bp.post("/<int:order_id>/annulation")
@login_required
def cancel(order_id: int):  # type: ignore[no-untyped-def]
    form = CancelForm()
    form.validate_on_submit()
    try:
        order = service.cancel_order(db(), actor(), order_id, form.reason.data)
    except IllegalTransition as exc:
        db().rollback()
        flash(str(exc), "error")
    except InvalidInput as exc:
        db().rollback()
        show_errors(form, exc, default_field="reason")
        return _page(service.order_for(db(), actor(), order_id), cancel_form=form, status=400)
    else:
        db().commit()
        flash(f"Commande {order.reference} annulée.", "success")
    return redirect(url_for("orders.show", order_id=order_id))
