"""Certificates: list, detail, PEM download, and the revocation request form."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from ra.db import utcnow
from ra.errors import IllegalTransition, InvalidInput
from ra.models import Entity, RevocationRequestStatus, StaffAccount
from ra.pagination import paginate
from ra.permissions import Action, allowed, officer_problem, require, visible_entities
from ra.services import certificates as certs
from ra.services import revocation_requests as requests_service
from ra.web import actor, db

bp = Blueprint("certificates", __name__, url_prefix="/certificats")

STATUS_OPTIONS = [("valid", "Valide"), ("revoked", "Révoqué"), ("expired", "Expiré")]


class RevocationRequestForm(FlaskForm):
    reason = SelectField("Motif", choices=[SelectChoice(c.key, c.label) for c in requests_service.REASON_CHOICES])
    comment = TextAreaField("Commentaire", validators=[Length(max=requests_service.MAX_COMMENT)])
    revoke_now = BooleanField("Révoquer immédiatement (opérateur de l'AC)")


def may_request(user: StaffAccount) -> bool:
    return allowed(user, Action.REQUEST_REVOCATION) and officer_problem(user) is None


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    user = actor()
    args = request.args
    entities = list(db().scalars(visible_entities(user).order_by(Entity.name)))
    try:
        filters = certs.CertificateFilter.parse(args.get("status"), args.get("entity"), args.get("q"))
    except InvalidInput as exc:
        return render_template("certificates/index.html", page=None, error=str(exc), entities=entities,
                               statuses=STATUS_OPTIONS, args=args), 400
    page = paginate(db(), certs.list_certificates(user, filters))
    return render_template("certificates/index.html", page=page, error=None, entities=entities,
                           statuses=STATUS_OPTIONS, args=args, owners=certs.entities_of(db(), page.items),
                           now=utcnow(), holder_label=certs.holder_label)


def _render_show(serial: str, form: RevocationRequestForm, status: int = 200):  # type: ignore[no-untyped-def]
    user = actor()
    cert = certs.get_certificate(db(), user, serial)
    order = certs.order_of(db(), cert)
    history = requests_service.requests_for_certificate(db(), cert)
    return render_template(
        "certificates/show.html", cert=cert, order=order, entity=order.entity if order else None,
        status=cert.status(utcnow()), form=form, may_request=may_request(user),
        may_process=allowed(user, Action.PROCESS_REVOCATIONS), history=history,
        names=requests_service.staff_names(db(), history),
    ), status


@bp.get("/<serial>")
@login_required
def show(serial: str):  # type: ignore[no-untyped-def]
    return _render_show(serial, RevocationRequestForm())


@bp.get("/<serial>.pem")
@login_required
def pem(serial: str):  # type: ignore[no-untyped-def]
    cert = certs.get_certificate(db(), actor(), serial)
    return Response(certs.pem(cert), mimetype="application/x-pem-file",
                    headers={"Content-Disposition": f'attachment; filename="{cert.serial}.pem"'})


@bp.post("/<serial>/revocation")
@login_required
def request_revocation(serial: str):  # type: ignore[no-untyped-def]
    user = actor()
    certs.get_certificate(db(), user, serial)  # 404 out of scope, before the role's 403
    require(user, Action.REQUEST_REVOCATION)
    form = RevocationRequestForm()
    if not form.validate_on_submit():
        flash("Le formulaire contient une erreur : vérifiez le motif et le commentaire.", "error")
        return _render_show(serial, form, 400)
    try:
        created = requests_service.request_revocation(
            db(), user, serial, reason_key=form.reason.data or "", comment=form.comment.data,
            revoke_now=bool(form.revoke_now.data))
    except (InvalidInput, IllegalTransition) as exc:
        db().rollback()
        flash(str(exc), "error")
        return _render_show(serial, form, exc.http_status)
    db().commit()
    if created.status == RevocationRequestStatus.PROCESSED:
        flash("Certificat révoqué. Il figurera dans la prochaine LCR publiée.", "success")
    else:
        flash(f"Demande de révocation n° {created.id} enregistrée : un opérateur de l'AC la traitera sous 24 h.",
              "success")
    return redirect(url_for("certificates.show", serial=serial))
