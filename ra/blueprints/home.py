"""Per-role home page."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from ra.permissions import officer_problem
from ra.services.dashboard import dashboard_for
from ra.web import actor, db

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    user = actor()
    return render_template("home.html", board=dashboard_for(db(), user), problem=officer_problem(user))
