"""Staff login: password (argon2) + TOTP, then a session. Logout."""

from __future__ import annotations

import time

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ra import audit
from ra.db import utcnow
from ra.models import StaffAccount
from ra.services.accounts import check_password, check_totp
from ra.services.throttle import REFUSAL, audit_key, login_pressure
from ra.web import actor, cipher, db

bp = Blueprint("auth", __name__)

ENROLMENT_SECONDS = 15 * 60  # a correct password opens the enrolment page for this long


class LoginForm(FlaskForm):
    email = EmailField("Adresse électronique", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Mot de passe", validators=[DataRequired(), Length(max=200)])
    code = StringField("Code à usage unique (application d'authentification)",
                       validators=[Length(max=10)], render_kw={"autocomplete": "one-time-code",
                                                               "inputmode": "numeric"})


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("home.index")


@bp.route("/connexion", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    form = LoginForm()
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        if login_pressure(db(), email, request.remote_addr).refused:
            _throttled(email)  # before any password check: the refusal reveals nothing
            flash(REFUSAL, "error")
            return render_template("auth/login.html", form=form), 429
        account = db().scalar(select(StaffAccount).where(StaffAccount.email == email))
        if not check_password(account, form.password.data or "") or account is None or not account.active:
            _failed(email, "mot de passe")
            flash("Identifiants incorrects.", "error")
            return render_template("auth/login.html", form=form), 401
        if not account.totp_enabled:
            # First login: the password is right, the second factor must be enrolled first.
            session.clear()
            session["enrolment_account_id"] = account.id
            session["enrolment_until"] = int(time.time()) + ENROLMENT_SECONDS
            return redirect(url_for("account.enrol_totp"))
        if not check_totp(account, form.code.data or "", cipher()):
            db().commit()  # keep nothing but the audit of the failure
            _failed(email, "code à usage unique")
            flash("Identifiants incorrects.", "error")
            return render_template("auth/login.html", form=form), 401
        open_session(account)
        return redirect(_safe_next(request.args.get("next")))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


def open_session(account: StaffAccount) -> None:
    """Log the account in after both factors (password, then TOTP code or its enrolment); commits."""
    lang = session.get("lang")
    session.clear()  # a fresh session: no fixation
    if lang:
        session["lang"] = lang
    session["second_factor_ok"] = True
    session.permanent = True
    login_user(account)
    account.last_login_at = utcnow()
    audit.record(db(), actor=account.email, action="auth.login", object_type="staff_account",
                 object_id=account.id, details={"ip": request.remote_addr})
    db().commit()


def _failed(email: str, what: str) -> None:
    audit.record(db(), actor=email[:200] or "anonyme", action="auth.login_failed", object_type="staff_account",
                 object_id=audit_key(email), details={"ip": request.remote_addr, "factor": what})
    db().commit()


def _throttled(email: str) -> None:
    audit.record(db(), actor=email[:200] or "anonyme", action="auth.login_throttled", object_type="staff_account",
                 object_id=audit_key(email), details={"ip": request.remote_addr})
    db().commit()


@bp.post("/deconnexion")
@login_required
def logout():  # type: ignore[no-untyped-def]
    audit.record(db(), actor=actor().email, action="auth.logout", object_type="staff_account",
                 object_id=actor().id)
    db().commit()
    logout_user()
    session.clear()
    flash("Vous êtes déconnecté.", "success")
    return redirect(url_for("auth.login"))
