"""Blueprints, one per role workflow. Each registers here, in one list."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from ra.blueprints.auth import bp as auth
    from ra.blueprints.home import bp as home
    from ra.blueprints.pki import bp as pki

    for blueprint in (pki, auth, home):
        app.register_blueprint(blueprint)
    _register_api(app)


def _register_api(app: Flask) -> None:
    from ra import csrf
    from ra.api import bp as api, load_resources

    load_resources()
    csrf.exempt(api)  # bearer tokens, no cookies: CSRF does not apply
    app.register_blueprint(api)
