"""What a complete dossier is (DESIGN.md, "Dossier"), as pure functions of an order.

Every order needs the five pieces below, whatever the entity's kind; the kind decides what the
proof of the entity is: an extract of the SIRENE register for a public body (undated), a Kbis
under 3 months for a company (dated). The request signed by the legal representative and
countersigned by the holder is always dated.

Date rule: "dated less than 3 months before the order" is read inclusively. The earliest
accepted date is the order date minus 3 calendar months (31 May → 28/29 February): a paper
dated exactly 3 months before the order is accepted, one day earlier is refused. A date after
the order is accepted (papers are often signed once the order exists) but never one in the
future.

The current document of a kind is the latest uploaded one; older rows stay as history.
"""

from __future__ import annotations

from datetime import date

from ra.labels import DOCUMENT_KIND_LABELS
from ra.models import DocumentKind, DossierDocument, Entity, EntityKind, Order, ReviewStatus
from ra.services.inputs import fr_date, months_before

MAX_AGE_MONTHS = 3
# The pieces every order needs, whatever the kind of its entity.
REQUIRED_KINDS: tuple[DocumentKind, ...] = (
    DocumentKind.HOLDER_ID, DocumentKind.REQUEST, DocumentKind.ENTITY_PROOF,
    DocumentKind.LEGAL_REP_ID, DocumentKind.TERMS_OF_USE,
)


def needs_date(kind: DocumentKind, entity: Entity) -> bool:
    """True when the paper's date decides whether it is acceptable."""
    return kind == DocumentKind.REQUEST or (
        kind == DocumentKind.ENTITY_PROOF and entity.kind == EntityKind.ENTREPRISE)


def kind_label(kind: DocumentKind | str, entity: Entity) -> str:
    if kind == DocumentKind.ENTITY_PROOF:
        if entity.kind == EntityKind.ENTREPRISE:
            return "Extrait Kbis de l'entreprise de moins de 3 mois"
        return "Extrait SIRENE de l'entité portant son SIREN"
    return DOCUMENT_KIND_LABELS.get(str(kind), str(kind))


def earliest_date(order: Order) -> date:
    """The oldest date a dated paper of this order may carry."""
    return months_before(order.ordered_on, MAX_AGE_MONTHS)


def date_problem(kind: DocumentKind, document_date: date | None, order: Order, *,
                 today: date | None = None) -> str | None:
    """Why this paper's date is not acceptable for this order, or None (``today``: check the future)."""
    what = kind_label(kind, order.entity)
    if document_date is None:
        return f"{what} : la date du document est obligatoire." if needs_date(kind, order.entity) else None
    if today is not None and document_date > today:
        return f"{what} : la date du {fr_date(document_date)} est dans le futur."
    if needs_date(kind, order.entity) and document_date < earliest_date(order):
        return (f"{what} : le document est daté du {fr_date(document_date)} ; il doit dater de "
                f"moins de {MAX_AGE_MONTHS} mois avant la commande du {fr_date(order.ordered_on)}, "
                f"soit du {fr_date(earliest_date(order))} au plus tôt.")
    return None


def current_documents(order: Order) -> dict[DocumentKind, DossierDocument]:
    """The latest document of each kind (rows are ordered by id)."""
    current: dict[DocumentKind, DossierDocument] = {}
    for row in order.documents:
        current[DocumentKind(row.kind)] = row
    return current


def missing_items(order: Order) -> list[str]:
    """What is missing or wrong in the dossier, in French sentences; empty when complete."""
    current = current_documents(order)
    items = []
    for kind in REQUIRED_KINDS:
        row = current.get(kind)
        what = kind_label(kind, order.entity)
        if row is None:
            items.append(f"Pièce manquante : {_lower_first(what)}.")
        elif row.review_status == ReviewStatus.REJECTED:
            note = f" (motif : {row.review_note})" if row.review_note else ""
            items.append(f"Pièce refusée, à remplacer : {_lower_first(what)}{note}.")
        else:
            problem = date_problem(kind, row.document_date, order)
            if problem:
                items.append(problem)
    return items


def is_complete(order: Order) -> bool:
    return not missing_items(order)


def not_accepted(order: Order) -> list[str]:
    """Labels of the required pieces not accepted yet by a CA operator."""
    current = current_documents(order)
    return [kind_label(kind, order.entity) for kind in REQUIRED_KINDS
            if (row := current.get(kind)) is None or row.review_status != ReviewStatus.ACCEPTED]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
