"""Reading what the frame leaves to the resource modules: query strings, multipart forms, files.

Query parameters and multipart fields are not validated by the frame (only JSON bodies are):
these helpers check them and raise ``InvalidInput`` with a French sentence, so a wrong value is
a 400 JSON error, never a silently ignored filter.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from flask import request
from werkzeug.datastructures import FileStorage

from ra.errors import InvalidInput

PAGE = ("page", {"type": "integer", "minimum": 1}, "page number (25 per page)")
REJECTION = {"type": "object", "required": ["note"], "additionalProperties": False, "properties": {
    "note": {"type": "string", "minLength": 1, "maxLength": 500}}}  # a refusal's note, as the services bound it


def iso(value: date | datetime | None) -> str | None:
    """ISO 8601, or None."""
    return value.isoformat() if value is not None else None


def page_schema(item: dict[str, Any]) -> dict[str, Any]:
    """A page of ``item`` as the list endpoints return it."""
    return {"type": "object", "required": ["items", "page", "per_page", "total"], "properties": {
        "items": {"type": "array", "items": item}, "page": {"type": "integer"},
        "per_page": {"type": "integer"}, "total": {"type": "integer"}}}


def page_json(page: Any, serialise: Any) -> dict[str, Any]:
    return {"items": [serialise(item) for item in page.items], "page": page.number,
            "per_page": page.per_page, "total": page.total}


def parse_date(value: str, what: str) -> date:
    """An ISO date (AAAA-MM-JJ) typed by a client."""
    try:
        if len(value.strip()) != 10:
            raise ValueError(value)
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} : date invalide, attendue au format AAAA-MM-JJ.") from None


# --- query string ---------------------------------------------------------------------------

def query_text(name: str) -> str | None:
    value = request.args.get(name, "").strip()
    return value or None


def query_enum(name: str, values: type[enum.StrEnum]) -> str | None:
    value = query_text(name)
    if value is not None and value not in set(values):
        allowed = ", ".join(str(v) for v in values)
        raise InvalidInput(f"Paramètre « {name} » inconnu : valeurs possibles {allowed}.")
    return value


def query_int(name: str) -> int | None:
    value = query_text(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 12:
        raise InvalidInput(f"Paramètre « {name} » invalide : un identifiant numérique est attendu.")
    return int(value)


def query_date(name: str) -> date | None:
    value = query_text(name)
    return parse_date(value, f"Paramètre « {name} »") if value is not None else None


# --- multipart forms --------------------------------------------------------------------------

def form_file(name: str = "file") -> tuple[bytes, str]:
    """The uploaded file's bytes and declared name; a missing or empty part is an input error."""
    storage = request.files.get(name)
    if not isinstance(storage, FileStorage) or not storage.filename:
        raise InvalidInput(f"Fichier manquant : envoyez-le dans le champ « {name} » d'un formulaire "
                           "multipart/form-data (PDF, JPEG ou PNG, 10 Mo au plus).")
    return storage.read(), storage.filename


def form_date(name: str, what: str, *, required: bool) -> date | None:
    value = request.form.get(name, "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{what} est obligatoire (champ « {name} », format AAAA-MM-JJ).")
        return None
    return parse_date(value, what)


def form_choice(name: str, values: type[enum.StrEnum], what: str) -> str:
    value = request.form.get(name, "").strip()
    if value not in set(values):
        allowed = ", ".join(str(v) for v in values)
        raise InvalidInput(f"{what} inconnu ou manquant (champ « {name} ») : valeurs possibles {allowed}.")
    return value


# --- files out --------------------------------------------------------------------------------

BINARY = {"type": "string", "format": "binary", "description": "the file (PDF, JPEG or PNG)"}
