"""Request plumbing shared by the blueprints: one DB session per request, the current actor,
and the navigation. Views stay thin: parse → authorise → one operation → commit → render."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, current_app, g
from flask_login import current_user
from sqlalchemy.orm import Session

from ra.fieldcrypt import FieldCipher
from ra.instance import current_instance
from ra.models import StaffAccount


def db() -> Session:
    """The request's database session (committed explicitly by the view)."""
    if "db" not in g:
        g.db = current_instance().factory()
    return g.db


def cipher() -> FieldCipher:
    return current_app.extensions["guichet_cipher"]


def actor() -> StaffAccount:
    """The logged-in staff account (login_required has already run)."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(user, StaffAccount):
        abort(401)
    return user


def _close_db(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()  # rolls back anything not committed


# (endpoint, French label, roles that see it). Only registered endpoints are shown.
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("home.index", "Accueil", ("mc", "aed", "operator", "auditor")),
    ("entities.index", "Entités", ("mc", "aed", "operator", "auditor")),
    ("orders.index", "Commandes", ("mc", "aed", "operator", "auditor")),
    ("sessions.index", "Sessions de remise", ("mc", "aed", "operator", "auditor")),
    ("staff.index", "Comptes et désignations", ("operator",)),
    ("certificates.index", "Certificats", ("mc", "aed", "operator", "auditor")),
    ("tokens.index", "Supports", ("mc", "aed", "operator", "auditor")),
    ("revocations.index", "Révocations", ("mc", "aed", "operator")),
    ("audit.index", "Journal d'audit", ("operator", "auditor")),
]


def navigation() -> list[tuple[str, str]]:
    user = current_user
    if not getattr(user, "is_authenticated", False):
        return []
    views = current_app.view_functions
    return [(endpoint, label) for endpoint, label, roles in NAV
            if endpoint in views and str(user.role) in roles]


def init_web(app: Flask) -> None:
    app.teardown_appcontext(_close_db)

    @app.context_processor
    def _layout() -> dict[str, Any]:
        return {"navigation": navigation()}
