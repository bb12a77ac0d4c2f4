"""Small helpers shared by the back-office screens: rights for templates, form errors, downloads."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date

from flask import Response, send_file
from flask_babel import gettext
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.datastructures import FileStorage
from wtforms import SelectChoice

from ra.errors import Forbidden, InvalidInput
from ra.models import Document
from ra.permissions import Action, require
from ra.services.files import safe_filename
from ra.services.inputs import FieldErrors
from ra.web import actor


class DesignationForm(FlaskForm):
    """An MC/AED's designation, uploaded by the officer (« Mon compte ») or by a CA operator."""

    document = FileField("Désignation signée par le représentant légal (PDF, JPEG ou PNG, 10 Mo au plus)",
                         validators=[FileRequired(message="Choisissez un fichier.")])


def translated(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(value, label) pairs with the labels (French, marked ``N_``) in the screen's language."""
    return [(value, gettext(label)) for value, label in pairs]


def may(action: Action) -> bool:
    """True if the current actor's role (and, for an MC/AED, qualification) allows ``action``."""
    try:
        require(actor(), action)
    except Forbidden:
        return False
    return True


def choices(pairs: Iterable[tuple[object, str]]) -> list[SelectChoice]:
    """Select/radio choices from (value, label) pairs."""
    return [SelectChoice(str(value), label) for value, label in pairs]


def show_errors(form: FlaskForm, exc: InvalidInput, *, default_field: str) -> None:
    """Put a service's error messages next to the form's fields."""
    errors = exc.errors if isinstance(exc, FieldErrors) else {default_field: str(exc)}
    for name, message in errors.items():
        field = getattr(form, name, None) or getattr(form, default_field)
        field.errors = [*list(field.errors or []), message]


def int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def uploaded_bytes(storage: FileStorage | None) -> tuple[bytes, str | None]:
    """The uploaded file's content and declared name; no file chosen is an input error."""
    if storage is None or not isinstance(storage, FileStorage) or not storage.filename:
        raise FieldErrors({"file": "Choisissez un fichier (PDF, JPEG ou PNG, 10 Mo au plus)."})
    return storage.read(), storage.filename


def form_date(value: date | None) -> date | None:
    return value if isinstance(value, date) else None


def attachment(document: Document, data: bytes) -> Response:
    """A decrypted document as a download that no cache keeps (``nosniff`` comes from
    ``ra.security``, on every response)."""
    response = send_file(io.BytesIO(data), mimetype=document.media_type, as_attachment=True,
                         download_name=safe_filename(document.original_name), conditional=False,
                         etag=False, max_age=0)
    response.headers["Cache-Control"] = "no-store"  # personal data: no copy in any cache
    return response
