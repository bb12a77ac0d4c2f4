"""Public pages, no login: check a certificate, and revoke one's own with the revocation code."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ra.errors import IllegalTransition, InvalidInput
from ra.services import certificate_check, holder_revocation
from ra.services.revocation_requests import CHOICES_BY_KEY
from ra.web import db

bp = Blueprint("public", __name__)


class VerifyForm(FlaskForm):
    pem = TextAreaField("Certificat au format PEM", render_kw={"rows": 12, "spellcheck": "false"})
    upload = FileField("… ou fichier du certificat (.crt, .pem, .der ; 64 Ko au plus)")


class HolderRevokeForm(FlaskForm):
    serial = StringField("Numéro de série du certificat", validators=[DataRequired(), Length(max=80)],
                         render_kw={"autocomplete": "off", "spellcheck": "false"})
    code = PasswordField("Code de révocation", validators=[DataRequired(), Length(max=64)],
                         render_kw={"autocomplete": "off"})
    reason = SelectField("Motif", choices=[SelectChoice(key, CHOICES_BY_KEY[key].label)
                                           for key in holder_revocation.HOLDER_REASONS])


def _submitted_bytes(form: VerifyForm) -> bytes:
    """The uploaded file if any, else the pasted text; never more than 64 KB + 1 read."""
    upload = request.files.get("upload")
    if upload is not None and upload.filename:
        return upload.stream.read(certificate_check.MAX_INPUT + 1)
    return (form.pem.data or "").encode("utf-8", errors="replace")


@bp.route("/verifier", methods=["GET", "POST"])
def verify():  # type: ignore[no-untyped-def]
    form = VerifyForm()
    if request.method == "GET":
        return render_template("public/verify.html", form=form, check=None, error=None)
    if not form.validate_on_submit():
        return render_template("public/verify.html", form=form, check=None,
                               error="Le formulaire n'a pas pu être lu : rechargez la page."), 400
    try:
        check = certificate_check.check_certificate(db(), _submitted_bytes(form))
    except InvalidInput as exc:
        return render_template("public/verify.html", form=form, check=None, error=str(exc)), 400
    finally:
        db().rollback()  # read-only page: nothing is ever stored
    return render_template("public/verify.html", form=form, check=check, error=None)


@bp.route("/revoquer", methods=["GET", "POST"])
def revoke():  # type: ignore[no-untyped-def]
    form = HolderRevokeForm()
    if request.method == "GET":
        return render_template("public/revoke.html", form=form, revoked=None, error=None)
    if not form.validate_on_submit():
        return render_template("public/revoke.html", form=form, revoked=None,
                               error="Renseignez le numéro de série, le code et le motif."), 400
    try:
        cert = holder_revocation.revoke_by_holder(
            db(), serial=form.serial.data or "", code=form.code.data or "", reason_key=form.reason.data or "",
            ip=request.remote_addr)
    except (InvalidInput, IllegalTransition, holder_revocation.TooManyAttempts) as exc:
        db().rollback()
        return render_template("public/revoke.html", form=form, revoked=None, error=str(exc)), exc.http_status
    db().commit()  # the revocation, or the audit row of the failure
    if cert is None:
        return render_template("public/revoke.html", form=form, revoked=None,
                               error=holder_revocation.GENERIC_REFUSAL), 400
    return render_template("public/revoke.html", form=HolderRevokeForm(formdata=None), revoked=cert, error=None)
