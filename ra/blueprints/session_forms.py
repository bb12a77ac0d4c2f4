"""Forms of the delivery-session screens (planning, face-to-face, actions)."""

from __future__ import annotations

from flask_babel import get_locale
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length

from ra.labels import ID_DOCUMENT_LABELS
from ra.services.identity import country_choices

SITE_CHOICES = [
    SelectChoice("site", "Sur site, dans les locaux de l'entité (frais de remise sur site)"),
    SelectChoice("cci", "À la CCI (sans frais de remise sur site)"),
]


class SessionForm(FlaskForm):
    session_date = DateField("Date de la session", validators=[InputRequired(message="La date est obligatoire.")])
    site_address = StringField("Adresse du lieu de remise", validators=[
        InputRequired(message="L'adresse du lieu de remise est obligatoire."), Length(max=300)])
    place = RadioField("Lieu", choices=SITE_CHOICES, default="site", validate_choice=False)

    @property
    def on_site(self) -> bool:
        return self.place.data != "cci"


class ActionForm(FlaskForm):
    """A button-only form: the CSRF token and nothing else."""


class MoveForm(FlaskForm):
    target_session_id = SelectField("Vers la session", validate_choice=False)


class IdentityCheckForm(FlaskForm):
    """One per holder on the day screen, prefixed by the order; the page's plain ``csrf_token``
    field is checked by the application-wide CSRF protection."""

    class Meta:
        csrf = False

    in_person = BooleanField("Le porteur est présent en personne")
    document_type = SelectField("Type de pièce d'identité", validate_choice=False, choices=[
        SelectChoice(code, text) for code, text in ID_DOCUMENT_LABELS.items()])
    document_number = StringField("Numéro de la pièce", validators=[
        InputRequired(message="Le numéro de la pièce est obligatoire."), Length(max=40)],
        render_kw={"autocomplete": "off", "spellcheck": "false"})
    document_expiry = DateField("Date d'expiration", validators=[
        InputRequired(message="La date d'expiration est obligatoire.")])
    issuing_country = SelectField("Pays de délivrance", validate_choice=False)
    names_match = BooleanField("Les nom et prénoms correspondent à la commande")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.issuing_country.choices = [SelectChoice(code, name)
                                        for code, name in country_choices(str(get_locale() or "fr"))]
        if not self.issuing_country.data:
            self.issuing_country.data = "FRA"
