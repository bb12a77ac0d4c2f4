"""Audit viewer (CA operators and auditors): browse, filter, read one event, verify the chain."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required
from flask_wtf import FlaskForm

from ra.errors import InvalidInput
from ra.pagination import paginate
from ra.permissions import Action, require
from ra.services import audit_log
from ra.web import actor, db

bp = Blueprint("audit", __name__, url_prefix="/audit")


class VerifyForm(FlaskForm):
    """Only the CSRF token: the verification takes no parameter."""


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    user = actor()
    require(user, Action.READ_AUDIT)
    try:
        filters = audit_log.AuditFilter.parse(request.args)
    except InvalidInput as exc:
        return render_template("audit/index.html", page=None, filters=audit_log.AuditFilter(),
                               args=request.args, error=str(exc), form=VerifyForm()), 400
    page = paginate(db(), audit_log.list_events(user, filters))
    return render_template("audit/index.html", page=page, filters=filters, args=request.args, error=None,
                           form=VerifyForm())


@bp.get("/<int:seq>")
@login_required
def show(seq: int):  # type: ignore[no-untyped-def]
    event = audit_log.get_event(db(), actor(), seq)
    return render_template("audit/show.html", event=event, details=audit_log.pretty_details(event))


@bp.post("/verifier")
@login_required
def verify():  # type: ignore[no-untyped-def]
    user = actor()
    require(user, Action.READ_AUDIT)
    check = audit_log.verify_chain(db(), user)
    db().commit()
    return render_template("audit/verify.html", check=check)
