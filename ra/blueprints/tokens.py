"""Tokens (supports): the scoped list, a token's file, and the events recorded from it."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from ra.errors import IllegalTransition, InvalidInput
from ra.labels import STATE_LABELS
from ra.models import TokenState
from ra.pagination import paginate
from ra.services import token_queries
from ra.web import actor, db

bp = Blueprint("tokens", __name__, url_prefix="/supports")

STATE_OPTIONS = [(str(s), STATE_LABELS[str(s)]) for s in TokenState]
DONE = {"blocked": "Le support est déclaré bloqué.", "retired": "Le support est retiré du service.",
        "lost": "Le support est déclaré perdu."}


class TokenEventForm(FlaskForm):
    state = HiddenField(validators=[DataRequired()])
    note = TextAreaField("Commentaire (facultatif)", validators=[Length(max=500)])
    confirm = BooleanField("Je confirme la perte ou le vol du support et la révocation immédiate de ses certificats")


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    user = actor()
    args = request.args
    entities = token_queries.token_entities(db(), user)
    try:
        filters = token_queries.TokenFilters.parse(args.get("state"), args.get("entity"), args.get("q"))
    except InvalidInput as exc:
        flash(str(exc), "error")
        return render_template("tokens/index.html", page=None, rows=[], entities=entities,
                               states=STATE_OPTIONS, args=args), 400
    page = paginate(db(), token_queries.list_tokens(user, filters))
    return render_template("tokens/index.html", page=page, rows=token_queries.rows_for(db(), page.items),
                           entities=entities, states=STATE_OPTIONS, args=args)


@bp.get("/<serial>")
@login_required
def show(serial: str):  # type: ignore[no-untyped-def]
    file = token_queries.token_file(db(), actor(), serial)
    return render_template("tokens/show.html", file=file, form=TokenEventForm())


@bp.post("/<serial>/evenement")
@login_required
def record_event(serial: str):  # type: ignore[no-untyped-def]
    form = TokenEventForm()
    if not form.validate_on_submit():
        token_queries.visible_token(db(), actor(), serial)  # out of scope: 404 before anything else
        flash("Le formulaire est incomplet ou trop long (500 caractères au plus pour le commentaire).", "error")
        return redirect(url_for("tokens.show", serial=serial))
    try:
        revoked = token_queries.record_screen_event(db(), actor(), serial, form.state.data or "",
                                                    note=form.note.data, confirmed=bool(form.confirm.data))
    except (IllegalTransition, InvalidInput) as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("tokens.show", serial=serial))
    db().commit()
    message = DONE.get(form.state.data or "", "Événement enregistré.")
    if revoked:
        message += f" Certificats révoqués (compromission de la clé) : {', '.join(revoked)}."
    flash(message, "success")
    return redirect(url_for("tokens.show", serial=serial))
