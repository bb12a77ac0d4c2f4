"""A staff member's own account: second-factor enrolment, profile, password, API tokens and
its own designation document."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ra.blueprints.auth import open_session
from ra.blueprints.common import DesignationForm
from ra.errors import InvalidInput, RAError
from ra.instance import current_instance
from ra.models import StaffAccount
from ra.permissions import officer_problem
from ra.services.accounts import check_password, create_api_token
from ra.services.profile import (
    api_tokens_of, change_password, draw_seed, enable_second_factor, grouped, open_seed, qr_svg,
    revoke_own_api_token, seal_seed,
)
from ra.services.staff import upload_designation
from ra.web import actor, cipher, db

bp = Blueprint("account", __name__, url_prefix="/compte")

PENDING_SEED = "pending_totp"
_REQUIRED = DataRequired(message="Ce champ est obligatoire.")


class EnrolmentForm(FlaskForm):
    code = StringField("Code à six chiffres affiché par l'application", validators=[_REQUIRED, Length(max=10)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    password = PasswordField("Mot de passe actuel (pour remplacer le second facteur)",
                             validators=[Length(max=200)])


class PasswordForm(FlaskForm):
    current_password = PasswordField("Mot de passe actuel", validators=[_REQUIRED, Length(max=200)])
    new_password = PasswordField("Nouveau mot de passe (12 caractères au moins)",
                                 validators=[_REQUIRED, Length(max=200)])
    confirmation = PasswordField("Nouveau mot de passe, une seconde fois", validators=[_REQUIRED, Length(max=200)])


class TokenForm(FlaskForm):
    token_name = StringField("Nom du jeton (usage, poste…)", validators=[_REQUIRED, Length(max=100)])


# --- second factor ---------------------------------------------------------------------------

def _enrolling_account() -> tuple[StaffAccount, bool] | None:
    """The account enrolling and whether it is already logged in (a re-enrolment)."""
    if current_user.is_authenticated:
        return actor(), True
    account_id, until = session.get("enrolment_account_id"), session.get("enrolment_until", 0)
    if not isinstance(account_id, int) or not isinstance(until, int) or time.time() > until:
        return None
    account = db().get(StaffAccount, account_id)
    if account is None or not account.active or account.totp_enabled:
        return None  # a password alone never replaces an enrolled second factor
    return account, False


def _pending_seed(account: StaffAccount) -> str:
    """The seed shown to this account, kept (sealed) across page loads until it is confirmed."""
    pending = session.get(PENDING_SEED)
    if isinstance(pending, dict) and pending.get("account_id") == account.id:
        seed = open_seed(str(pending.get("seed", "")), cipher())
        if seed:
            return seed
    seed = draw_seed()
    session[PENDING_SEED] = {"account_id": account.id, "seed": seal_seed(seed, cipher())}
    return seed


@bp.route("/second-facteur", methods=["GET", "POST"])
def enrol_totp():  # type: ignore[no-untyped-def]
    found = _enrolling_account()
    if found is None:
        session.pop("enrolment_account_id", None)
        session.pop(PENDING_SEED, None)
        flash("Connectez-vous d'abord avec votre adresse et votre mot de passe.", "error")
        return redirect(url_for("auth.login"))
    account, logged_in = found
    seed = _pending_seed(account)
    form = EnrolmentForm()
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            if logged_in and not check_password(account, form.password.data or ""):
                raise InvalidInput("Le mot de passe actuel est incorrect.")
            enable_second_factor(db(), account, seed, form.code.data or "", cipher())
        except RAError as exc:
            db().rollback()
            flash(str(exc), "error")
        else:
            if logged_in:
                db().commit()
                session.pop(PENDING_SEED, None)
                flash("Votre nouveau second facteur est enregistré ; l'ancien ne fonctionne plus.", "success")
                return redirect(url_for("account.index"))
            open_session(account)  # commits the enrolment with the login
            flash("Second facteur enregistré : vous êtes connecté. Pensez à changer votre mot de passe "
                  "provisoire depuis « Mon compte ».", "success")
            return redirect(url_for("home.index"))
    return render_template("account/enrol_totp.html", form=form, qr=qr_svg(account, seed),
                           secret=grouped(seed), account=account, reenrolment=logged_in), status


# --- profile, password, tokens, designation --------------------------------------------------

def _render_index(status: int = 200, **forms: Any):  # type: ignore[no-untyped-def]
    user = actor()
    return render_template(
        "account/index.html", user=user, tokens=api_tokens_of(db(), user), problem=officer_problem(user),
        password_form=forms.get("password_form") or PasswordForm(formdata=None),
        token_form=forms.get("token_form") or TokenForm(formdata=None),
        designation_form=forms.get("designation_form") or DesignationForm(formdata=None),
    ), status


@bp.get("")
@login_required
def index():  # type: ignore[no-untyped-def]
    return _render_index()


@bp.post("/mot-de-passe")
@login_required
def password():  # type: ignore[no-untyped-def]
    form = PasswordForm()
    if not form.validate_on_submit():
        return _render_index(400, password_form=form)
    try:
        change_password(db(), actor(), form.current_password.data or "", form.new_password.data or "",
                        form.confirmation.data or "")
    except RAError as exc:
        db().rollback()
        flash(str(exc), "error")
        return _render_index(400, password_form=form)
    db().commit()
    flash("Votre mot de passe est modifié.", "success")
    return redirect(url_for("account.index"))


@bp.post("/jetons")
@login_required
def create_token():  # type: ignore[no-untyped-def]
    form = TokenForm()
    if not form.validate_on_submit():
        return _render_index(400, token_form=form)
    user = actor()
    try:
        token, clear = create_api_token(db(), user, form.token_name.data or "", actor=user.email)
    except RAError as exc:
        db().rollback()
        flash(str(exc), "error")
        return _render_index(400, token_form=form)
    db().commit()
    # Shown in this response only: never in a redirect, a flash message or a log.
    return render_template("account/token_created.html", token=token, clear=clear)


@bp.post("/jetons/<int:token_id>/revocation")
@login_required
def revoke_token(token_id: int):  # type: ignore[no-untyped-def]
    token = revoke_own_api_token(db(), actor(), token_id)
    db().commit()
    flash(f"Le jeton « {token.name} » est révoqué.", "success")
    return redirect(url_for("account.index"))


@bp.post("/designation")
@login_required
def designation():  # type: ignore[no-untyped-def]
    form = DesignationForm()
    if not form.validate_on_submit():
        return _render_index(400, designation_form=form)
    user = actor()
    vault = current_instance().vault
    upload = form.document.data
    try:
        document = upload_designation(db(), user, user, upload.read(), upload.filename or "", vault)
    except RAError as exc:
        db().rollback()
        flash(str(exc), "error")
        return _render_index(400, designation_form=form)
    commit_upload(document.vault_id)
    flash("Votre désignation est déposée : un opérateur de l'AC va l'examiner.", "success")
    return redirect(url_for("account.index"))


def commit_upload(vault_id: str) -> None:
    """Commit the request; if that fails, remove the stored file the database will not know."""
    try:
        db().commit()
    except Exception:
        current_instance().vault.delete(vault_id)
        raise
