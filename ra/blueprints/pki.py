"""Public PKI files: CA certificates and CRLs (DER), at fixed paths."""

from __future__ import annotations

from flask import Blueprint, abort, send_from_directory

from ra.config import ISSUING_SLUG, ROOT_SLUG
from ra.instance import current_instance

bp = Blueprint("pki", __name__, url_prefix="/pki")

PUBLIC_FILES = {
    f"{ROOT_SLUG}.crt": "application/pkix-cert",
    f"{ISSUING_SLUG}.crt": "application/pkix-cert",
    f"{ROOT_SLUG}.crl": "application/pkix-crl",
    f"{ISSUING_SLUG}.crl": "application/pkix-crl",
}


@bp.get("/<filename>")
def public_file(filename: str):  # type: ignore[no-untyped-def]
    mimetype = PUBLIC_FILES.get(filename)
    if mimetype is None:
        abort(404)
    directory = current_instance().settings.publication_dir
    if not (directory / filename).is_file():
        abort(404, description="Not published yet: run `guichet init`.")
    response = send_from_directory(directory, filename, mimetype=mimetype, max_age=300)
    return response
