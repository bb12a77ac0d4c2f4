"""CA operators' staff administration: accounts, training dates, designations, activation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ra.blueprints.account import commit_upload
from ra.blueprints.common import DesignationForm, attachment, choices, translated
from ra.errors import Forbidden, NotFound, RAError
from ra.instance import current_instance
from ra.labels import N_, ROLE_LABELS
from ra.models import DesignationStatus, EntityKind, Role, StaffAccount
from ra.pagination import paginate
from ra.permissions import Action, require
from ra.services import staff as service
from ra.web import actor, db

bp = Blueprint("staff", __name__, url_prefix="/comptes")

_REQUIRED = DataRequired(message="Ce champ est obligatoire.")
DESIGNATION_FILTER = [(DesignationStatus.NONE.value, N_("Aucune")), (DesignationStatus.PENDING.value, N_("En attente")),
                      (DesignationStatus.APPROVED.value, N_("Approuvée")),
                      (DesignationStatus.REJECTED.value, N_("Refusée"))]


def _optional_id(value: Any) -> int | None:
    """A select's value as an entity id; anything else is None (the service then says what is missing)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class AccountForm(FlaskForm):
    email = EmailField("Adresse électronique (identifiant de connexion)", validators=[_REQUIRED, Length(max=254)])
    full_name = StringField("Nom complet", validators=[_REQUIRED, Length(max=200)])
    role = SelectField("Rôle", choices=choices(ROLE_LABELS.items()), validators=[_REQUIRED])
    entity_id = SelectField("Entité du mandataire (MC)", coerce=_optional_id, validate_choice=False)
    epci_id = SelectField("EPCI dont l'AED sert les communes membres (AED)", coerce=_optional_id,
                          validate_choice=False)
    scope_entity_ids = SelectMultipleField("Et/ou entités nommément désignées (AED)", coerce=_optional_id,
                                           validate_choice=False)
    training_date = DateField("Date de formation (MC, AED)", validators=[Optional()])


class TrainingForm(FlaskForm):
    training_date = DateField("Date de formation", validators=[Optional()])


class DecisionForm(FlaskForm):
    decision = SelectField("Décision", choices=choices([("approve", "Approuver"), ("reject", "Refuser")]),
                           validators=[_REQUIRED])
    note = StringField("Motif ou commentaire (facultatif)", validators=[Length(max=500)])


@bp.get("")
@login_required
def index():  # type: ignore[no-untyped-def]
    args = request.args
    filters = service.StaffFilters(role=args.get("role", ""), designation=args.get("designation", ""),
                                   text=args.get("q", ""), active=args.get("active", ""))
    page = paginate(db(), service.staff_query(actor(), filters))
    bar = [
        ("q", gettext("Nom ou adresse"), None, filters.text),
        ("role", gettext("Rôle"), translated(ROLE_LABELS.items()), filters.role),
        ("designation", gettext("Désignation"), translated(DESIGNATION_FILTER), filters.designation),
        ("active", gettext("État"), translated([("1", N_("Actif")), ("0", N_("Désactivé"))]), filters.active),
    ]
    return render_template("staff/index.html", page=page, bar=bar)


def _fill_choices(form: AccountForm) -> None:
    entities = service.entity_choices(db(), actor())
    labelled = [(e.id, f"{e.name} ({e.siren})") for e in entities]
    epcis = [(e.id, f"{e.name} ({e.siren})") for e in entities if e.kind == EntityKind.EPCI]
    form.entity_id.choices = choices([(0, "—"), *labelled])
    form.epci_id.choices = choices([(0, "—"), *epcis])
    form.scope_entity_ids.choices = choices(labelled)


@bp.route("/nouveau", methods=["GET", "POST"])
@login_required
def create():  # type: ignore[no-untyped-def]
    require(actor(), Action.MANAGE_ACCOUNTS)
    form = AccountForm()
    _fill_choices(form)
    if not form.validate_on_submit():
        return render_template("staff/create.html", form=form), 400 if request.method == "POST" else 200
    try:
        account, password = service.create_staff_account(db(), actor(), service.StaffRequest(
            email=form.email.data or "", full_name=form.full_name.data or "", role=form.role.data or "",
            entity_id=form.entity_id.data, epci_id=form.epci_id.data,
            scope_entity_ids=tuple(i for i in (form.scope_entity_ids.data or []) if i is not None),
            training_date=form.training_date.data,
        ))
    except RAError as exc:
        db().rollback()
        flash(str(exc), "error")
        return render_template("staff/create.html", form=form), 400
    db().commit()
    # The temporary password appears in this response only (no redirect, no flash, no log).
    return render_template("staff/created.html", account=account, password=password)


def _render_show(account_id: int, status: int = 200, **forms: Any):  # type: ignore[no-untyped-def]
    account = service.get_account(db(), actor(), account_id)
    return render_template(
        "staff/show.html", account=account, decider=db().get(StaffAccount, account.designation_decided_by_id)
        if account.designation_decided_by_id else None,
        training_form=forms.get("training_form") or TrainingForm(formdata=None, training_date=account.training_date),
        designation_form=forms.get("designation_form") or DesignationForm(formdata=None),
        decision_form=forms.get("decision_form") or DecisionForm(formdata=None),
        roles=Role,
    ), status


@bp.get("/<int:account_id>")
@login_required
def show(account_id: int):  # type: ignore[no-untyped-def]
    return _render_show(account_id)


def _done(account_id: int, message: str):  # type: ignore[no-untyped-def]
    flash(message, "success")
    return redirect(url_for("staff.show", account_id=account_id))


def _failed(account_id: int, exc: RAError, **forms: Any):  # type: ignore[no-untyped-def]
    db().rollback()
    if isinstance(exc, (Forbidden, NotFound)):
        raise exc  # the error page: nothing to re-render
    flash(str(exc), "error")
    return _render_show(account_id, exc.http_status if exc.http_status in (400, 409) else 400, **forms)


@bp.post("/<int:account_id>/formation")
@login_required
def training(account_id: int):  # type: ignore[no-untyped-def]
    require(actor(), Action.MANAGE_ACCOUNTS)
    form = TrainingForm()
    if not form.validate_on_submit():
        return _render_show(account_id, 400, training_form=form)
    try:
        service.set_training_date(db(), actor(), account_id, form.training_date.data)
    except RAError as exc:
        return _failed(account_id, exc, training_form=form)
    db().commit()
    return _done(account_id, "Date de formation enregistrée.")


@bp.post("/<int:account_id>/designation")
@login_required
def upload(account_id: int):  # type: ignore[no-untyped-def]
    account = service.get_account(db(), actor(), account_id)
    form = DesignationForm()
    if not form.validate_on_submit():
        return _render_show(account_id, 400, designation_form=form)
    file = form.document.data
    try:
        document = service.upload_designation(db(), actor(), account, file.read(), file.filename or "",
                                              current_instance().vault)
    except RAError as exc:
        return _failed(account_id, exc, designation_form=form)
    commit_upload(document.vault_id)
    return _done(account_id, "Désignation déposée : elle attend votre décision.")


@bp.get("/<int:account_id>/designation")
@login_required
def designation_document(account_id: int):  # type: ignore[no-untyped-def]
    document, data = service.read_designation(db(), actor(), account_id, current_instance().vault)
    db().commit()  # the read is audited
    return attachment(document, data)


@bp.post("/<int:account_id>/designation/decision")
@login_required
def decide(account_id: int):  # type: ignore[no-untyped-def]
    require(actor(), Action.APPROVE_DESIGNATIONS)
    form = DecisionForm()
    if not form.validate_on_submit():
        return _render_show(account_id, 400, decision_form=form)
    approve = form.decision.data == "approve"
    try:
        service.decide_designation(db(), actor(), account_id, approve=approve, note=form.note.data or "")
    except RAError as exc:
        return _failed(account_id, exc, decision_form=form)
    db().commit()
    return _done(account_id, "Désignation approuvée." if approve else "Désignation refusée.")


@bp.post("/<int:account_id>/activation")
@login_required
def activation(account_id: int):  # type: ignore[no-untyped-def]
    require(actor(), Action.MANAGE_ACCOUNTS)
    active = request.form.get("active") == "1"
    try:
        service.set_active(db(), actor(), account_id, active=active)
    except RAError as exc:
        return _failed(account_id, exc)
    db().commit()
    return _done(account_id, "Compte réactivé." if active else "Compte désactivé : il ne peut plus se connecter.")


@bp.post("/<int:account_id>/acces")
@login_required
def reset(account_id: int):  # type: ignore[no-untyped-def]
    """New temporary password and a second factor to re-enrol (lost phone, forgotten password)."""
    require(actor(), Action.MANAGE_ACCOUNTS)
    try:
        account, password = service.reset_access(db(), actor(), account_id)
    except RAError as exc:
        return _failed(account_id, exc)
    db().commit()
    return render_template("staff/created.html", account=account, password=password, reset=True)
