"""Blueprints, one per role workflow. Each registers here, in one list."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from ra.blueprints.auth import bp as auth
    from ra.blueprints.home import bp as home
    from ra.blueprints.pki import bp as pki

    for blueprint in (pki, auth, home):
        app.register_blueprint(blueprint)
    from ra.blueprints import audit, certificates, public, revocations  # audit log, certificates, public pages
    for module in (audit, certificates, public, revocations):
        app.register_blueprint(module.bp)
    from ra.blueprints import account, staff  # own account and second factor, staff administration
    for module in (account, staff):
        app.register_blueprint(module.bp)
    from ra.blueprints import sessions  # delivery sessions, face-to-face, invoice lines
    app.register_blueprint(sessions.bp)
    from ra.blueprints import tokens  # token lifecycle screens
    app.register_blueprint(tokens.bp)
    from ra.blueprints import entities, orders  # entities and conventions, orders and their dossiers
    for module in (entities, orders):
        app.register_blueprint(module.bp)
    _register_api(app)


def _register_api(app: Flask) -> None:
    from ra import csrf
    from ra.api import bp as api, load_resources

    load_resources()
    csrf.exempt(api)  # bearer tokens, no cookies: CSRF does not apply
    app.register_blueprint(api)
