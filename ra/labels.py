"""French labels for the domain's codes (the glossary of DESIGN.md, as users read it)."""

from __future__ import annotations

ROLE_LABELS = {
    "mc": "Mandataire de certification",
    "aed": "AED",
    "operator": "Opérateur de l'AC",
    "auditor": "Auditeur",
}

STATE_LABELS = {
    # orders
    "draft": "Brouillon",
    "dossier_complete": "Dossier complet",
    "approved": "Approuvée",
    "scheduled": "Planifiée",
    "identity_verified": "Identité vérifiée",
    "issued": "Émis",
    "delivered": "Remis",
    "cancelled": "Annulée",
    # certificates
    "reserved": "Réservé",
    "failed": "Échec",
    "valid": "Valide",
    "revoked": "Révoqué",
    "expired": "Expiré",
    # reviews, designations, conventions, requests
    "pending": "En attente",
    "accepted": "Accepté",
    "rejected": "Refusé",
    "none": "Aucune",
    "processed": "Traitée",
    # sessions
    "planned": "Prévue",
    "closed": "Close",
    # tokens
    "blank": "Vierge",
    "initialised": "Initialisé",
    "active": "Actif",
    "blocked": "Bloqué",
    "lost": "Perdu",
    "retired": "Retiré",
}

ENTITY_KIND_LABELS = {
    "commune": "Commune",
    "ccas": "CCAS",
    "epci": "EPCI",
    "syndicat": "Syndicat",
    "departement": "Département",
    "region": "Région",
    "autre_public": "Autre organisme public",
    "entreprise": "Entreprise",
}

DOCUMENT_KIND_LABELS = {
    "holder_id": "Pièce d'identité du porteur",
    "request": "Demande signée par le représentant légal et contresignée par le porteur",
    "entity_proof": "Justificatif de l'entité portant son SIREN (extrait SIRENE, Kbis)",
    "legal_rep_id": "Pièce d'identité du représentant légal",
    "terms_of_use": "Conditions générales d'utilisation signées",
}

ID_DOCUMENT_LABELS = {"cni": "Carte nationale d'identité", "passeport": "Passeport",
                      "titre_sejour": "Titre de séjour"}

PROFILE_LABELS = {
    "rgs2-entite-double": "RGS** entité — authentification et signature",
    "rgs2-entite-authentification": "RGS** entité — authentification",
    "rgs2-entite-signature": "RGS** entité — signature",
}


def label(table: dict[str, str], code: object) -> str:
    return table.get(str(code), str(code))
