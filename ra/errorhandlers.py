"""One place maps errors to HTTP: JSON for the API and public files, a page otherwise."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from ca.errors import CAError
from ra.errors import RAError


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/pki/")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RAError)
    def ra_error(exc: RAError):  # type: ignore[no-untyped-def]
        return jsonify(error=exc.code, message=str(exc)), exc.http_status

    @app.errorhandler(CAError)
    def ca_error(exc: CAError):  # type: ignore[no-untyped-def]
        return jsonify(error=type(exc).__name__, message=str(exc)), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if _wants_json():
            return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code
        return exc
