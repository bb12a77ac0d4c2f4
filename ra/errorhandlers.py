"""One place maps errors to HTTP: JSON {error, message} for the API and public files, a sober
French page otherwise. Nothing internal (tracebacks, SQL) ever reaches the client."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ca.errors import CAError
from ra.errors import RAError

log = logging.getLogger(__name__)

MESSAGES = {
    400: "La requête est invalide.",
    401: "Authentification requise.",
    403: "Vous n'avez pas le droit d'effectuer cette action.",
    404: "Page ou objet introuvable.",
    405: "Méthode non autorisée.",
    409: "Cette action n'est pas possible dans l'état actuel.",
    413: "Le fichier envoyé est trop volumineux (10 Mo au plus).",
    429: "Trop de tentatives : réessayez dans quelques minutes.",
    500: "Une erreur interne est survenue ; l'opération n'a pas été enregistrée.",
}


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/pki/"))


def _respond(status: int, code: str, message: str):  # type: ignore[no-untyped-def]
    if _wants_json():
        return jsonify(error=code, message=message), status
    return render_template("error.html", status=status, message=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RAError)
    def ra_error(exc: RAError):  # type: ignore[no-untyped-def]
        return _respond(exc.http_status, exc.code, str(exc))

    @app.errorhandler(CAError)
    def ca_error(exc: CAError):  # type: ignore[no-untyped-def]
        return _respond(400, type(exc).__name__, str(exc))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):  # type: ignore[no-untyped-def]
        return _respond(400, "csrf", "Le formulaire a expiré ou n'est pas authentique : rechargez la page.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        message = MESSAGES.get(status, exc.description or "Erreur.")
        if status == 404 and exc.description and "guichet init" in exc.description:
            message = exc.description
        return _respond(status, exc.name.lower().replace(" ", "_"), message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _respond(500, "internal_error", MESSAGES[500])
