"""guichet back-office: the registration authority. It owns all stored state."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request, session
from flask_babel import Babel, get_locale, gettext
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from ra.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
TRANSLATIONS = ROOT / "translations"
LOCALES = ("fr", "en")

csrf = CSRFProtect()
login_manager = LoginManager()


def _select_locale() -> str:
    wanted = request.args.get("lang")
    if wanted in LOCALES:
        session["lang"] = wanted
    return session.get("lang") or request.accept_languages.best_match(LOCALES) or "fr"


def _reason_label(code: int | None) -> str:
    """A revocation reason as the screens show it (translated; empty without a reason)."""
    from ra.services.revocation_requests import reason_label

    text = reason_label(code)
    return gettext(text) if text else ""  # gettext("") would be the catalogue's header


def create_app(settings: Settings | None = None) -> Flask:
    from ra import labels
    from ra.blueprints import register_blueprints
    from ra.errorhandlers import register_error_handlers
    from ra.fieldcrypt import FieldCipher
    from ra.instance import Instance
    from ra.security import init_security
    from ra.translations import compile_catalogues
    from ra.web import init_web

    instance = Instance.open(settings)
    compile_catalogues(TRANSLATIONS)
    app = Flask(__name__, template_folder=str(TEMPLATES))
    app.config.update(
        SECRET_KEY=instance.settings.secret_key,
        MAX_CONTENT_LENGTH=11 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=instance.settings.public_url.startswith("https://"),
        SESSION_COOKIE_NAME="guichet_session",
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        BABEL_DEFAULT_LOCALE="fr",
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS),
    )
    app.extensions["guichet"] = instance
    app.extensions["guichet_cipher"] = FieldCipher(instance.settings.secret_key)
    csrf.init_app(app)
    Babel(app, locale_selector=_select_locale)
    login_manager.init_app(app)
    app.jinja_env.globals.update(
        current_locale=lambda: str(get_locale() or "fr"),
        role_label=lambda code: gettext(labels.label(labels.ROLE_LABELS, code)),
        state_label=lambda code: gettext(labels.label(labels.STATE_LABELS, code)),
        reason_label=_reason_label,
        labels=labels,
    )
    if instance.settings.proxies:  # client address and scheme as the load balancer saw them
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = instance.settings.proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    init_web(app)
    init_security(app)
    register_blueprints(app)
    register_error_handlers(app)
    return app
