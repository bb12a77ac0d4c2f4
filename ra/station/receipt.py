"""The procès-verbal de remise: the PDF both the holder and the operator sign at the session.

Written with fpdf2 in DejaVu Sans when the system has it (Debian: fonts-dejavu-core), else in
Helvetica with the text folded to Latin-1. Times are shown in French local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from ca.profiles import PROFILES
from ra.labels import ROLE_LABELS, label

DEJAVU_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_LATIN1_FOLD = str.maketrans({"’": "'", "«": '"', "»": '"', "—": "-", "–": "-", "…": "...", "Œ": "OE", "œ": "oe"})

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    PARIS: Any = ZoneInfo("Europe/Paris")
except (ImportError, ZoneInfoNotFoundError):  # no tz database: say UTC rather than guess
    PARIS = timezone.utc


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the procès-verbal states; built from the back-office's answer to the delivery."""

    reference: str
    holder: str
    holder_email: str
    entity: str
    siren: str
    profile: str
    certificate_serial: str
    not_before: datetime
    not_after: datetime
    token_serial: str
    token_model: str
    operator: str
    operator_role: str
    site_address: str
    delivered_at: datetime

    @classmethod
    def from_server(cls, data: dict[str, Any], *, delivered_at: datetime) -> DeliveryReceipt:
        return cls(
            reference=data["order"], holder=data["holder"], holder_email=data.get("holder_email", ""),
            entity=data["entity"], siren=data["siren"], profile=data["profile"],
            certificate_serial=data["certificate_serial"],
            not_before=datetime.fromisoformat(data["not_before"]),
            not_after=datetime.fromisoformat(data["not_after"]), token_serial=data["token_serial"],
            token_model=data.get("token_model", ""), operator=data["operator"],
            operator_role=data.get("operator_role", ""), site_address=data.get("site_address", ""),
            delivered_at=delivered_at,
        )


def french_time(moment: datetime) -> str:
    local = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(PARIS)
    zone = "heure de Paris" if PARIS is not timezone.utc else "UTC"
    return f"{local:%d/%m/%Y à %H:%M} ({zone})"


def grouped(serial: str) -> str:
    """A hex serial in groups of four, as read aloud and compared by eye."""
    return " ".join(serial[i:i + 4] for i in range(0, len(serial), 4)).upper()


def _rows(r: DeliveryReceipt) -> list[tuple[str, str]]:
    profile = PROFILES[r.profile].label_fr if r.profile in PROFILES else r.profile
    return [
        ("Commande", r.reference),
        ("Porteur", r.holder),
        ("Adresse électronique", r.holder_email or "-"),
        ("Entité", f"{r.entity} (SIREN {r.siren})"),
        ("Certificat", profile),
        ("N° de série du certificat", grouped(r.certificate_serial)),
        ("Validité", f"du {french_time(r.not_before)} au {french_time(r.not_after)}"),
        ("Support", f"{r.token_model}, n° de série {r.token_serial}"),
        ("Opérateur", f"{r.operator} ({label(ROLE_LABELS, r.operator_role)})" if r.operator_role else r.operator),
        ("Lieu de remise", r.site_address or "-"),
        ("Date et heure de remise", french_time(r.delivered_at)),
    ]


STATEMENT = (
    "Le porteur a présenté une pièce d'identité en cours de validité lors du face-à-face. "
    "La clé privée a été générée sur le support en sa présence et ne peut pas en être extraite ; "
    "le porteur a choisi lui-même son code PIN, qui n'a été ni affiché ni enregistré. "
    "Le porteur reconnaît avoir reçu le support, le certificat qu'il contient et son code de révocation, "
    "qu'il conserve séparément du support. Il s'engage à respecter les conditions générales d'utilisation."
)


class _Document(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.unicode = False
        for directory in DEJAVU_DIRS:
            regular, bold = directory / "DejaVuSans.ttf", directory / "DejaVuSans-Bold.ttf"
            if regular.is_file() and bold.is_file():
                self.add_font("DejaVu", "", str(regular))
                self.add_font("DejaVu", "B", str(bold))
                self.unicode = True
                break
        self.family_name = "DejaVu" if self.unicode else "Helvetica"
        self.set_margins(20, 20, 20)
        self.set_auto_page_break(True, margin=20)

    def text_of(self, value: str) -> str:
        if self.unicode:
            return value
        return value.translate(_LATIN1_FOLD).encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", size)


def write_receipt(receipt: DeliveryReceipt, path: Path) -> Path:
    """Write the procès-verbal de remise as a one-page PDF at ``path``."""
    pdf = _Document()
    pdf.set_title(pdf.text_of(f"Procès-verbal de remise {receipt.reference}"))
    pdf.set_creation_date(receipt.delivered_at)
    pdf.add_page()
    pdf.font(16, bold=True)
    pdf.multi_cell(0, 9, pdf.text_of("Procès-verbal de remise d'un certificat électronique"),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.font(10)
    pdf.multi_cell(0, 6, pdf.text_of("Certificat RGS** entité sur support cryptographique, remis en face-à-face"),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    for name, value in _rows(receipt):
        pdf.font(10, bold=True)
        pdf.cell(58, 7, pdf.text_of(name))
        pdf.font(10)
        pdf.multi_cell(0, 7, pdf.text_of(value), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(5)
    pdf.font(10)
    pdf.multi_cell(0, 5.5, pdf.text_of(STATEMENT), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(8)
    _signature_boxes(pdf, receipt)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def _signature_boxes(pdf: _Document, receipt: DeliveryReceipt) -> None:
    width = (pdf.w - pdf.l_margin - pdf.r_margin - 10) / 2
    top = pdf.get_y()
    for i, (title, name) in enumerate((("Le porteur", receipt.holder), ("L'opérateur", receipt.operator))):
        x = pdf.l_margin + i * (width + 10)
        pdf.rect(x, top, width, 45)
        pdf.set_xy(x + 3, top + 3)
        pdf.font(10, bold=True)
        pdf.cell(width - 6, 6, pdf.text_of(title), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.font(9)
        pdf.cell(width - 6, 5, pdf.text_of(name), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.cell(width - 6, 5, pdf.text_of("Date et signature :"), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_xy(pdf.l_margin, top + 50)
