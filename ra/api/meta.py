"""The OpenAPI document and the caller's identity."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from ra.api import ERROR_SCHEMA, ERROR_TEXT, REGISTRY, _PARAM, bp, operation
from ra.models import StaffAccount


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in REGISTRY:
        parameters = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "integer"} if name.endswith("_id") else {"type": "string"}}
            for name in _PARAM.findall(op.path)
        ] + [{"name": name, "in": "query", "required": False, "schema": schema, "description": text}
             for name, schema, text in op.query]
        responses: dict[str, Any] = {
            str(op.status): {"description": op.summary} if op.status == 204 else {
                "description": op.summary, "content": {"application/json": {"schema": op.response}}}
        }
        for code in op.errors:
            responses[str(code)] = {"description": ERROR_TEXT.get(code, "Error"),
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        entry: dict[str, Any] = {"summary": op.summary, "operationId": op.operation_id, "tags": [op.tag],
                                 "responses": responses}
        if parameters:
            entry["parameters"] = parameters
        if op.request is not None:
            entry["requestBody"] = {"required": True, "content": {op.content_type: {"schema": op.request}}}
        if op.public:
            entry["security"] = []
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "guichet API", "version": "1",
                 "description": "Registration authority for RGS** entité certificates. Errors are "
                                "JSON objects {error, message}; messages are in French."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A per-user token created from « Mon compte »."}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(openapi_document())


ME = {"type": "object", "required": ["id", "email", "role"], "properties": {
    "id": {"type": "integer"}, "email": {"type": "string"}, "full_name": {"type": "string"},
    "role": {"type": "string", "enum": ["mc", "aed", "operator", "auditor"]},
    "entity_id": {"type": ["integer", "null"]}}}


@operation("/me", "get", summary="The account behind the bearer token", tag="meta", response=ME, errors=())
def me(actor: StaffAccount) -> dict[str, Any]:
    return {"id": actor.id, "email": actor.email, "full_name": actor.full_name, "role": str(actor.role),
            "entity_id": actor.entity_id}
