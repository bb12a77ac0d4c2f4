"""JSON API under /api/v1: per-user bearer tokens, JSON errors, an OpenAPI 3.1 document.

Every endpoint is declared with :func:`operation`, which registers the Flask route AND its
OpenAPI description from the same arguments, so the document describes every endpoint by
construction. Resource modules (``ra/api/<area>.py``) import ``operation`` and are imported by
:func:`load_resources`.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, jsonify, request
from jsonschema import Draft202012Validator

from ra.errors import RAError
from ra.models import StaffAccount
from ra.services.accounts import account_for_api_token
from ra.web import db

bp = Blueprint("api", __name__, url_prefix="/api/v1")

RESOURCE_MODULES = ["ra.api.meta", "ra.api.station", "ra.api.certificates", "ra.api.entities", "ra.api.orders", "ra.api.dossier", "ra.api.sessions"]  # each area appends its module name here


class Unauthorized(RAError):
    http_status = 401
    code = "unauthorized"


ERROR_SCHEMA = {
    "type": "object", "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
ERROR_TEXT = {400: "Invalid input", 401: "Missing or invalid bearer token", 403: "Forbidden for this role",
              404: "Not found or outside your scope", 409: "Illegal state transition",
              413: "Payload too large", 429: "Too many requests"}


@dataclass(frozen=True)
class Operation:
    path: str  # OpenAPI form: /orders/{order_id}
    method: str
    summary: str
    tag: str
    operation_id: str
    response: dict[str, Any]
    status: int = 200
    request: dict[str, Any] | None = None
    query: tuple[tuple[str, dict[str, Any], str], ...] = ()  # (name, schema, description)
    errors: tuple[int, ...] = ()
    public: bool = False
    content_type: str = "application/json"  # request body type ("multipart/form-data" for uploads)


REGISTRY: list[Operation] = []
_PARAM = re.compile(r"\{(\w+)\}")


def _flask_rule(path: str) -> str:
    return _PARAM.sub(lambda m: f"<int:{m.group(1)}>" if m.group(1).endswith("_id") else f"<{m.group(1)}>", path)


def authenticate() -> StaffAccount:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Jeton d'API manquant : en-tête « Authorization: Bearer <jeton> ».")
    account = account_for_api_token(db(), token.strip())
    if account is None:
        raise Unauthorized("Jeton d'API invalide ou révoqué.")
    return account


def json_body(validator: Draft202012Validator) -> dict[str, Any]:
    """The request's JSON body, checked by the operation's (once built) schema validator."""
    data = request.get_json(silent=True)
    if data is None:
        raise RAError("Le corps de la requête doit être un objet JSON (Content-Type: application/json).")
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.path) or "(racine)"
        raise RAError(f"Champ {where} : {first.message}")
    return data


def operation(
    path: str, method: str, *, summary: str, tag: str, response: dict[str, Any], status: int = 200,
    request_schema: dict[str, Any] | None = None, errors: tuple[int, ...] = (400, 403, 404),
    query: tuple[tuple[str, dict[str, Any], str], ...] = (), public: bool = False,
    content_type: str = "application/json",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an endpoint: ``f(actor, [body,] **path_params) -> JSON-able``; commits on success."""

    validator = (Draft202012Validator(request_schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
                 if request_schema is not None and content_type == "application/json" else None)

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def view(**kwargs: Any) -> Any:
            args: list[Any] = [] if public else [authenticate()]
            if validator is not None:
                args.append(json_body(validator))
            result = f(*args, **kwargs)
            db().commit()
            if status == 204:
                return "", 204
            if hasattr(result, "status_code"):  # a ready Response (files)
                return result
            return jsonify(result), status

        endpoint = f"{tag}_{f.__name__}"
        bp.add_url_rule(_flask_rule(path), endpoint=endpoint, view_func=view, methods=[method.upper()])
        REGISTRY.append(Operation(
            path=path, method=method.lower(), summary=summary, tag=tag, operation_id=endpoint,
            response=response, status=status, request=request_schema, query=query,
            errors=tuple(sorted(set(errors) | ({401} if not public else set()))), public=public,
            content_type=content_type,
        ))
        return view

    return decorate


def load_resources() -> None:
    for name in RESOURCE_MODULES:
        importlib.import_module(name)
