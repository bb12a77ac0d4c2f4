"""Unblocking a holder's PIN with the escrowed SO PIN, and looking at what a token holds.

Unblocking keeps the holder's key and certificate: only the user PIN is set again (C_InitPIN in
an SO session), with a new PIN typed twice by the holder. The back-office records the token
blocked, then active again.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ca.token import TokenObject
from ra.station import tokens
from ra.station.enrolment import Station, set_holder_pin
from ra.station.errors import ServerRefusal, StationError


def unblock(station: Station, token_serial: str) -> dict[str, Any]:
    """Reset a blocked user PIN; return the token as the back-office now records it."""
    module, client = station.module, station.client
    token = tokens.choose_token(module, serial=token_serial, blank=False)
    with tokens.token_errors(module, token.serial, "lecture de l'état du support"):
        locked = token.user_pin_locked
    if not locked:
        raise StationError(f"Le code PIN du {tokens.describe(token)} n'est pas bloqué : rien à débloquer.",
                           advice="Si le porteur a oublié son code, il le saisit jusqu'au blocage, puis on débloque.")
    recorded = client.token(token.serial)  # 404 when the token is not in the operator's scope
    if recorded["state"] in ("lost", "retired"):
        raise StationError(f"Le back-office enregistre ce support comme « {recorded['state']} » : "
                           "il ne peut pas être débloqué.")
    so_pin = client.escrowed_so_pin(token.serial)
    tokens.verify_so_pin(token, so_pin, module)
    if recorded["state"] != "blocked":
        client.set_token_state(token.serial, "blocked", note="code PIN bloqué constaté à la station")
    station.reporter.step(1, "Le porteur choisit un nouveau code PIN (deux fois, masqué).")
    pin = set_holder_pin(station, token, so_pin, what="déblocage du code PIN", give_up=(
        "Aucun code PIN acceptable n'a été choisi : le support reste bloqué.", "Relancez « guichet station unblock »."))
    with tokens.token_errors(module, token.serial, "déblocage du code PIN"), token.session(user_pin=pin):
        pass  # the new PIN opens the token
    station.reporter.step(2, "Code PIN débloqué ; le back-office enregistre le support actif.")
    return client.set_token_state(token.serial, "active", note="code PIN réinitialisé avec le PIN administrateur")


@dataclass
class TokenReport:
    """What ``guichet station check`` shows: the token's objects and the back-office's view."""

    label: str
    serial: str
    model: str
    flags: dict[str, bool]
    objects: list[TokenObject]
    certificates: list[tokens.CertificateOnToken]
    logged_in: bool
    back_office: dict[str, Any] | None = None
    back_office_problem: str | None = None
    statuses: dict[str, str] = field(default_factory=dict)  # certificate serial -> status


def inspect(station: Station, token_serial: str | None, *, pin: str | None) -> TokenReport:
    """The token's objects (private ones too with the holder's PIN) and each certificate's status."""
    module = station.module
    token = tokens.choose_token(module, serial=token_serial, blank=False)
    with tokens.token_errors(module, token.serial, "lecture du support"):
        flags = {"initialisé": token.initialized, "PIN porteur défini": token.user_pin_initialized,
                 "PIN porteur bloqué": token.user_pin_locked, "essais PIN réduits": token.user_pin_count_low}
        context = token.session(user_pin=pin, rw=False) if pin else token.session(rw=False)
        with context as session:
            objects = sorted(session.objects(), key=lambda o: (o.id_hex, o.object_class))
            certificates = tokens.certificates_on(session)
    report = TokenReport(token.label, token.serial, token.model, flags, objects, certificates, pin is not None)
    try:
        report.back_office = station.client.token(token.serial)
    except ServerRefusal as exc:
        report.back_office_problem = str(exc) if exc.status != 404 else \
            "Support inconnu du back-office ou hors de votre périmètre."
    except StationError as exc:
        report.back_office_problem = str(exc)
    with suppress(KeyError, TypeError):
        report.statuses = {c["serial"]: c["status"] for c in (report.back_office or {}).get("certificates", [])}
    return report
