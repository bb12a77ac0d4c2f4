"""French labels for the domain's codes (the glossary of DESIGN.md, as users read it).

The labels are French; ``N_`` marks them for the message catalogue and the screens translate
them where they show them (``gettext(label)``), so the English screens show English labels.
"""

from __future__ import annotations


def N_(text: str) -> str:
    """Mark ``text`` for the message catalogue; it is translated where it is shown."""
    return text


ROLE_LABELS = {
    "mc": N_("Mandataire de certification"),
    "aed": N_("AED"),
    "operator": N_("Opérateur de l'AC"),
    "auditor": N_("Auditeur"),
}

STATE_LABELS = {
    # orders
    "draft": N_("Brouillon"),
    "dossier_complete": N_("Dossier complet"),
    "approved": N_("Approuvée"),
    "scheduled": N_("Planifiée"),
    "identity_verified": N_("Identité vérifiée"),
    "issued": N_("Émis"),
    "delivered": N_("Remis"),
    "cancelled": N_("Annulée"),
    # certificates
    "reserved": N_("Réservé"),
    "failed": N_("Échec"),
    "valid": N_("Valide"),
    "revoked": N_("Révoqué"),
    "expired": N_("Expiré"),
    # reviews, designations, conventions, requests
    "pending": N_("En attente"),
    "accepted": N_("Accepté"),
    "rejected": N_("Refusé"),
    "none": N_("Aucune"),
    "processed": N_("Traitée"),
    # sessions
    "planned": N_("Prévue"),
    "closed": N_("Close"),
    # tokens
    "blank": N_("Vierge"),
    "initialised": N_("Initialisé"),
    "active": N_("Actif"),
    "blocked": N_("Bloqué"),
    "lost": N_("Perdu"),
    "retired": N_("Retiré"),
}

ENTITY_KIND_LABELS = {
    "commune": N_("Commune"),
    "ccas": N_("CCAS"),
    "epci": N_("EPCI"),
    "syndicat": N_("Syndicat"),
    "departement": N_("Département"),
    "region": N_("Région"),
    "autre_public": N_("Autre organisme public"),
    "entreprise": N_("Entreprise"),
}

DOCUMENT_KIND_LABELS = {
    "holder_id": N_("Pièce d'identité du porteur"),
    "request": N_("Demande signée par le représentant légal et contresignée par le porteur"),
    "entity_proof": N_("Justificatif de l'entité portant son SIREN (extrait SIRENE, Kbis)"),
    "legal_rep_id": N_("Pièce d'identité du représentant légal"),
    "terms_of_use": N_("Conditions générales d'utilisation signées"),
}

ID_DOCUMENT_LABELS = {"cni": N_("Carte nationale d'identité"), "passeport": N_("Passeport"),
                      "titre_sejour": N_("Titre de séjour")}

PROFILE_LABELS = {
    "rgs2-entite-double": N_("RGS** entité — authentification et signature"),
    "rgs2-entite-authentification": N_("RGS** entité — authentification"),
    "rgs2-entite-signature": N_("RGS** entité — signature"),
}


def label(table: dict[str, str], code: object) -> str:
    return table.get(str(code), str(code))
