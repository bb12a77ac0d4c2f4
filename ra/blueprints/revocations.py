"""Revocation requests: the list (scoped), and for CA operators approve, reject, publish the CRL.

There is no path that makes a revoked certificate valid again.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from ra.errors import IllegalTransition, InvalidInput
from ra.instance import current_instance
from ra.pagination import paginate
from ra.permissions import Action, allowed, require
from ra.services import revocation_requests as service
from ra.services.certificates import holder_label
from ra.web import actor, db

bp = Blueprint("revocations", __name__, url_prefix="/revocations")

STATUS_OPTIONS = [("pending", "En attente"), ("processed", "Traitée"), ("rejected", "Refusée")]


class RejectForm(FlaskForm):
    note = TextAreaField("Motif du refus", validators=[DataRequired("Indiquez pourquoi la demande est refusée."),
                                                       Length(max=service.MAX_COMMENT)])


class PublishForm(FlaskForm):
    """Only the CSRF token."""


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    user = actor()
    status = request.args.get("status", "")
    try:
        stmt = service.list_requests(user, status or None)
    except InvalidInput as exc:
        flash(str(exc), "error")
        return redirect(url_for("revocations.index"))
    page = paginate(db(), stmt)
    return render_template(
        "revocations/index.html", page=page, status=status, statuses=STATUS_OPTIONS,
        certs=service.certificates_of(db(), page.items), names=service.staff_names(db(), page.items),
        notes=service.rejection_notes(db(), page.items),
        holder_label=holder_label,
        may_process=allowed(user, Action.PROCESS_REVOCATIONS), last_crl=service.last_crl(db()),
        publish_form=PublishForm(),
    )


@bp.post("/<int:request_id>/approuver")
@login_required
def approve(request_id: int):  # type: ignore[no-untyped-def]
    try:
        done = service.approve_request(db(), actor(), request_id)
    except IllegalTransition as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("revocations.index"))
    db().commit()
    flash(f"Demande n° {done.id} approuvée : certificat révoqué. Publiez la LCR pour le faire savoir.", "success")
    return redirect(url_for("revocations.index"))


@bp.post("/<int:request_id>/refuser")
@login_required
def reject(request_id: int):  # type: ignore[no-untyped-def]
    require(actor(), Action.PROCESS_REVOCATIONS)
    form = RejectForm()
    if not form.validate_on_submit():
        flash("Indiquez pourquoi la demande est refusée (500 caractères au plus).", "error")
        return redirect(url_for("revocations.index"))
    try:
        done = service.reject_request(db(), actor(), request_id, form.note.data or "")
    except (IllegalTransition, InvalidInput) as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("revocations.index"))
    db().commit()
    flash(f"Demande n° {done.id} refusée : le certificat reste valide.", "success")
    return redirect(url_for("revocations.index"))


@bp.post("/lcr")
@login_required
def publish():  # type: ignore[no-untyped-def]
    user = actor()
    require(user, Action.PROCESS_REVOCATIONS)
    db().commit()  # publishing runs its own transactions: release the request's first
    instance = current_instance()
    crl = service.publish_crl_now(instance.factory, instance.ca, instance.settings, user)
    flash(f"LCR n° {crl.number} publiée : {crl.entries} certificat(s) révoqué(s) listé(s), "
          f"prochaine mise à jour le {crl.next_update.strftime('%d/%m/%Y %H:%M')} UTC.", "success")
    return redirect(url_for("revocations.index"))
