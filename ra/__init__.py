"""guichet back-office: the registration authority. It owns all stored state."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from ra.config import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(settings: Settings | None = None) -> Flask:
    from ra.blueprints.pki import bp as pki_bp
    from ra.errorhandlers import register_error_handlers
    from ra.instance import Instance

    instance = Instance.open(settings)
    app = Flask(__name__, template_folder=str(TEMPLATES))
    app.config.update(
        SECRET_KEY=instance.settings.secret_key,
        MAX_CONTENT_LENGTH=11 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=instance.settings.public_url.startswith("https://"),
    )
    app.extensions["guichet"] = instance
    app.register_blueprint(pki_bp)
    register_error_handlers(app)
    return app
