"""Delivery sessions: list, planning, the delivery-day screen (face-to-face) and the invoice lines.

Input and state errors are flashed on the page; out-of-scope objects are 404 and role refusals
403, through the application's error handler.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from ra.blueprints.session_forms import ActionForm, IdentityCheckForm, MoveForm, SessionForm
from ra.errors import IllegalTransition, InvalidInput
from ra.instance import current_instance
from ra.labels import STATE_LABELS
from ra.models import DeliverySession, OrderState, SessionStatus
from ra.pagination import paginate
from ra.permissions import Action, allowed, officer_problem, require
from ra.pricing import format_euros
from ra.services import identity, sessions as service
from ra.services.session_invoice import invoice_or_problem
from ra.web import actor, cipher, db

bp = Blueprint("sessions", __name__, url_prefix="/sessions")
bp.add_app_template_filter(format_euros, "euros")
USER_ERRORS = (InvalidInput, IllegalTransition)  # shown on the page; 403/404 go to the error page


def _date_arg(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        flash("Date de filtre invalide : elle est ignorée.", "warning")
        return None


def _may_plan() -> bool:
    user = actor()
    return allowed(user, Action.DELIVER) and officer_problem(user) is None


@bp.get("")
@login_required
def index():  # type: ignore[no-untyped-def]
    args = request.args
    filters = {"statut": args.get("statut", ""), "du": _date_arg("du"), "au": _date_arg("au"),
               "q": args.get("q", "")}
    page = paginate(db(), service.sessions_query(
        actor(), status=filters["statut"] or None, date_from=filters["du"], date_to=filters["au"],
        text=filters["q"]))
    counts = service.order_counts(db(), [s.id for s in page.items])
    statuses = [(s.value, STATE_LABELS[s.value]) for s in SessionStatus]
    return render_template("sessions/index.html", page=page, counts=counts, filters=filters,
                           statuses=statuses, may_plan=_may_plan())


@bp.route("/nouvelle", methods=["GET", "POST"])
@login_required
def create():  # type: ignore[no-untyped-def]
    require(actor(), Action.DELIVER)
    form = SessionForm()
    if not form.validate_on_submit():
        return render_template("sessions/form.html", form=form, delivery=None), _form_status()
    try:
        delivery = service.create_session(db(), actor(), session_date=form.session_date.data,
                                          site_address=form.site_address.data or "", on_site=form.on_site)
    except USER_ERRORS as exc:
        return _form_failed(form, None, exc)
    db().commit()
    flash("Session de remise créée : ajoutez-y les commandes approuvées.", "success")
    return redirect(url_for("sessions.plan", session_id=delivery.id))


@bp.route("/<int:session_id>/modifier", methods=["GET", "POST"])
@login_required
def edit(session_id: int):  # type: ignore[no-untyped-def]
    try:
        delivery = service.managed_session(db(), actor(), session_id)
    except IllegalTransition as exc:
        flash(str(exc), "error")
        return _back(session_id)
    form = SessionForm(obj=delivery if request.method == "GET" else None)
    if request.method == "GET":
        form.place.data = "site" if delivery.on_site else "cci"
    if not form.validate_on_submit():
        return render_template("sessions/form.html", form=form, delivery=delivery), _form_status()
    try:
        service.update_session(db(), actor(), session_id, session_date=form.session_date.data,
                               site_address=form.site_address.data or "", on_site=form.on_site)
    except USER_ERRORS as exc:
        return _form_failed(form, delivery, exc)
    db().commit()
    flash("Session de remise modifiée.", "success")
    return redirect(url_for("sessions.show", session_id=session_id))


def _form_status() -> int:
    return 400 if request.method == "POST" else 200


def _form_failed(form: SessionForm, delivery: DeliverySession | None, exc: Exception):  # type: ignore[no-untyped-def]
    db().rollback()
    flash(str(exc), "error")
    return render_template("sessions/form.html", form=form, delivery=delivery), 400


@bp.get("/<int:session_id>")
@login_required
def show(session_id: int):  # type: ignore[no-untyped-def]
    user = actor()
    delivery = service.get_session(db(), user, session_id)
    invoice, invoice_error = invoice_or_problem(db(), user, delivery, current_instance().settings.bpu_path)
    manage = service.can_manage(user, delivery)
    targets = service.other_planned_sessions(db(), user, delivery) if manage else []
    move_form = MoveForm(formdata=None)
    move_form.target_session_id.choices = [
        SelectChoice(str(s.id), f"{s.session_date:%d/%m/%Y} — {s.site_address}") for s in targets]
    orders = service.session_orders(db(), user, delivery)
    return render_template(
        "sessions/show.html", delivery=delivery, orders=orders, manage=manage, today=date.today(),
        cancellable=not any(o.state in service.FACE_TO_FACE_DONE for o in orders),
        invoice=invoice, invoice_error=invoice_error, move_form=move_form, targets=targets)


@bp.get("/<int:session_id>/planification")
@login_required
def plan(session_id: int):  # type: ignore[no-untyped-def]
    user = actor()
    delivery = service.get_session(db(), user, session_id)
    entity_id = request.args.get("entite", type=int)
    text = request.args.get("q", "")
    page = paginate(db(), service.candidate_orders(user, text=text, entity_id=entity_id))
    return render_template(
        "sessions/plan.html", delivery=delivery, page=page, manage=service.can_manage(user, delivery),
        entities=service.candidate_entities(db(), user), entity_id=entity_id, text=text,
        orders=service.session_orders(db(), user, delivery))


def _back(session_id: int, endpoint: str = "sessions.show") -> Response:
    return redirect(url_for(endpoint, session_id=session_id))


def _act(session_id: int, done: str, operation: Any, *, back: str = "sessions.show") -> Response:
    """Run one write operation behind a CSRF-checked button form, commit, flash, go back."""
    if not ActionForm().validate_on_submit():
        flash("Le formulaire a expiré : rechargez la page.", "error")
        return _back(session_id, back)
    try:
        operation()
    except USER_ERRORS as exc:
        db().rollback()
        flash(str(exc), "error")
        return _back(session_id, back)
    db().commit()
    flash(done, "success")
    return _back(session_id, back)


def _order_ids() -> list[int]:
    return [int(v) for v in request.form.getlist("order_ids") if v.isdigit()]


@bp.post("/<int:session_id>/commandes")
@login_required
def add_orders(session_id: int):  # type: ignore[no-untyped-def]
    ids = _order_ids()
    return _act(session_id, f"{len(ids)} commande(s) ajoutée(s) à la session.",
                lambda: service.add_orders(db(), actor(), session_id, ids), back="sessions.plan")


@bp.post("/<int:session_id>/commandes/<int:order_id>/retirer")
@login_required
def remove_order(session_id: int, order_id: int):  # type: ignore[no-untyped-def]
    return _act(session_id, "Commande retirée de la session : elle redevient approuvée.",
                lambda: service.remove_order(db(), actor(), session_id, order_id))


@bp.post("/<int:session_id>/commandes/<int:order_id>/deplacer")
@login_required
def move_order(session_id: int, order_id: int):  # type: ignore[no-untyped-def]
    target = request.form.get("target_session_id", type=int) or 0
    return _act(session_id, "Commande déplacée vers l'autre session.",
                lambda: service.move_order(db(), actor(), session_id, order_id, target))


@bp.post("/<int:session_id>/commandes/<int:order_id>/absent")
@login_required
def mark_absent(session_id: int, order_id: int):  # type: ignore[no-untyped-def]
    return _act(session_id, "Porteur noté absent : la commande peut être déplacée vers une autre session.",
                lambda: service.mark_absent(db(), actor(), session_id, order_id), back="sessions.day")


@bp.post("/<int:session_id>/annuler")
@login_required
def cancel(session_id: int):  # type: ignore[no-untyped-def]
    return _act(session_id, "Session annulée : ses commandes redeviennent approuvées.",
                lambda: service.cancel_session(db(), actor(), session_id))


@bp.post("/<int:session_id>/cloturer")
@login_required
def close(session_id: int):  # type: ignore[no-untyped-def]
    return _act(session_id, "Session close.", lambda: service.close_session(db(), actor(), session_id))


@bp.get("/<int:session_id>/jour")
@login_required
def day(session_id: int):  # type: ignore[no-untyped-def]
    return _render_day(session_id)


def _render_day(session_id: int, failed: tuple[int, IdentityCheckForm] | None = None,
                status: int = 200) -> tuple[str, int]:
    user = actor()
    delivery = service.get_session(db(), user, session_id)
    rows = identity.day_rows(db(), user, delivery)
    today = date.today()
    manage = service.can_manage(user, delivery)
    open_day = manage and delivery.session_date == today
    forms = {}
    if open_day:
        for row in rows:
            if row.order.state == OrderState.SCHEDULED:
                forms[row.order.id] = (failed[1] if failed and failed[0] == row.order.id
                                       else IdentityCheckForm(formdata=None, prefix=f"o{row.order.id}"))
    return render_template("sessions/day.html", delivery=delivery, rows=rows, forms=forms, open_day=open_day,
                           manage=manage, today=today), status


@bp.post("/<int:session_id>/commandes/<int:order_id>/face-a-face")
@login_required
def identity_check(session_id: int, order_id: int):  # type: ignore[no-untyped-def]
    form = IdentityCheckForm(prefix=f"o{order_id}")
    if not form.validate_on_submit():
        flash("Le face-à-face n'est pas enregistré : corrigez les champs signalés.", "error")
        return _render_day(session_id, (order_id, form), 400)
    evidence = identity.IdentityEvidence(
        document_type=form.document_type.data or "", document_number=form.document_number.data or "",
        document_expiry=form.document_expiry.data, issuing_country=form.issuing_country.data or "",
        names_match=bool(form.names_match.data), in_person=bool(form.in_person.data))
    try:
        identity.record_identity_check(db(), actor(), session_id, order_id, evidence, cipher=cipher())
    except USER_ERRORS as exc:
        db().rollback()
        flash(str(exc), "error")
        return _render_day(session_id, (order_id, form), exc.http_status)
    db().commit()
    flash("Face-à-face enregistré : le support peut être enrôlé au poste de remise.", "success")
    return _back(session_id, "sessions.day")
