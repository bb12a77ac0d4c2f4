"""``guichet station …``: the delivery-station commands (no database, no app context).

The back-office is reached at --url / GUICHET_URL with the operator's API token (--api-token /
GUICHET_API_TOKEN); the token through the PKCS#11 module --module /
GUICHET_STATION_PKCS11_MODULE (SoftHSM2 by default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ca.errors import CAError, ModuleNotLoadable
from ca.token import KeySpec, find_softhsm_module
from ra.labels import STATE_LABELS, label
from ra.station.client import StationClient, WorkItem
from ra.station.enrolment import DEFAULT_KEY, EnrolmentResult, Station, enrol
from ra.station.errors import StationError
from ra.station.pin import PinPolicy, prompt_current_pin, prompt_new_pin
from ra.station.unblock import TokenReport, inspect, unblock

TOKEN_CHOICES = {"new": "support neuf", "reuse": "réutilisé"}


class RichReporter:
    """Numbered steps and notes on the terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def step(self, number: int, text: str) -> None:
        self.console.print(f"[bold cyan]{number}.[/] {escape(text)}", soft_wrap=True)

    def note(self, text: str) -> None:
        self.console.print(f"   [yellow]{escape(text)}[/]", soft_wrap=True)


def _console(*, stderr: bool = False) -> Console:
    return Console(highlight=False, stderr=stderr)


def station_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """What happened and what to do, in French, then exit status 1; never a traceback."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except StationError as exc:
            console = _console(stderr=True)
            console.print(f"[bold red]Échec :[/] {escape(str(exc))}", soft_wrap=True)
            if exc.advice:
                console.print(f"[bold]À faire :[/] {escape(exc.advice)}", soft_wrap=True)
            raise SystemExit(1) from None
        except (CAError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def server_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--api-token", envvar="GUICHET_API_TOKEN", help="Jeton d'API de l'opérateur.")(f)
    return click.option("--url", envvar="GUICHET_URL", help="Adresse du back-office (https://…).")(f)


def token_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--token-serial", help="Numéro de série du support à utiliser.")(f)
    return click.option("--module", envvar="GUICHET_STATION_PKCS11_MODULE",
                        help="Module PKCS#11 du support (défaut : SoftHSM2).")(f)


def _client(url: str | None, api_token: str | None) -> StationClient:
    context = click.get_current_context()
    parent = context.parent.params if context.parent is not None else {}
    url, api_token = url or parent.get("url"), api_token or parent.get("api_token")
    if not url:
        raise click.UsageError("Adresse du back-office manquante : --url ou GUICHET_URL.")
    if not api_token:
        raise click.UsageError("Jeton d'API manquant : --api-token ou GUICHET_API_TOKEN.")
    return StationClient(url, api_token)


def _station(client: StationClient, module: str | None, console: Console, policy: PinPolicy) -> Station:
    if not module:
        try:
            module = find_softhsm_module()
        except ModuleNotLoadable as exc:
            raise StationError(f"Module PKCS#11 introuvable ({exc}).",
                               advice="Indiquez celui du support : --module ou GUICHET_STATION_PKCS11_MODULE.") from None
    return Station(client=client, module=module, reporter=RichReporter(console),
                   ask_new_pin=lambda: prompt_new_pin(policy), ask_current_pin=prompt_current_pin,
                   pin_policy=policy)


@click.group("station", cls=AppGroup, invoke_without_command=True)
@server_options
@click.pass_context
@station_errors
def station(ctx: click.Context, url: str | None, api_token: str | None) -> None:
    """Poste de remise : enrôler les supports des porteurs de la session du jour."""
    if ctx.invoked_subcommand is None:
        show_today(_client(url, api_token).today(), _console())


def show_today(items: list[WorkItem], console: Console) -> None:
    if not items:
        console.print("Aucun porteur à servir aujourd'hui (face-à-face enregistré) dans vos sessions.")
        return
    for session_id in sorted({item.session_id for item in items}):
        rows = [item for item in items if item.session_id == session_id]
        table = Table(title=f"Session de remise n° {session_id} — {rows[0].site_address}", title_justify="left")
        table.add_column("Commande", no_wrap=True)
        for column in ("Porteur", "Entité", "Support", "État"):
            table.add_column(column, overflow="fold")
        for item in rows:
            support = TOKEN_CHOICES.get(item.token_choice, item.token_choice)
            if item.token_serial:
                support += f" n° {item.token_serial}"
            table.add_row(item.reference, item.holder, item.entity, support, label(STATE_LABELS, item.state))
        console.print(table)


@station.command("enrol", with_appcontext=False)
@click.argument("order")
@token_options
@click.option("--blank", is_flag=True, help="Utiliser le seul support vierge branché (refusé s'il y en a plusieurs).")
@click.option("--key", "key_spec", default=str(DEFAULT_KEY), show_default=True,
              help="Type de clé : rsa-3072, rsa-4096, ec-p256 ou ec-p384.")
@click.option("--receipt-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Dossier du procès-verbal de remise (PDF).")
@click.option("--numeric-pin", is_flag=True, help="Le support n'accepte que des chiffres dans le code PIN.")
@server_options
@station_errors
def enrol_command(order: str, module: str | None, token_serial: str | None, blank: bool, key_spec: str,
                  receipt_dir: Path, numeric_pin: bool, url: str | None, api_token: str | None) -> None:
    """Enrôler le support du porteur de la commande ORDER (référence ou numéro)."""
    try:
        spec = KeySpec.parse(key_spec)
    except ValueError:
        raise click.BadParameter("type de clé inconnu : rsa-3072, rsa-4096, ec-p256 ou ec-p384.",
                                 param_hint="--key") from None
    console = _console()
    station_ = _station(_client(url, api_token), module, console, PinPolicy(digits_only=numeric_pin))
    result = enrol(station_, order, token_serial=token_serial, blank=blank, key_spec=spec, receipt_dir=receipt_dir)
    show_delivery(result, console)


def show_delivery(result: EnrolmentResult, console: Console) -> None:
    r = result.receipt
    console.print(f"[bold green]Remis :[/] certificat {r.certificate_serial} de {escape(r.holder)} "
                  f"sur le support n° {r.token_serial} (clé {result.key_id.hex()}).", soft_wrap=True)
    console.print(Panel(f"[bold]{result.revocation_code}[/]\n\nÀ recopier par le porteur et à garder à part du "
                        "support :\nil ne sera plus jamais affiché.", title="Code de révocation", expand=False))
    if result.receipt_path is not None:
        console.print(f"Procès-verbal de remise : {result.receipt_path}", soft_wrap=True)


@station.command("unblock", with_appcontext=False)
@token_options
@click.option("--numeric-pin", is_flag=True, help="Le support n'accepte que des chiffres dans le code PIN.")
@server_options
@station_errors
def unblock_command(module: str | None, token_serial: str | None, numeric_pin: bool, url: str | None,
                    api_token: str | None) -> None:
    """Débloquer le code PIN d'un support avec le PIN administrateur séquestré."""
    if not token_serial:
        raise click.UsageError("Indiquez le support : --token-serial NUMÉRO.")
    console = _console()
    station_ = _station(_client(url, api_token), module, console, PinPolicy(digits_only=numeric_pin))
    recorded = unblock(station_, token_serial)
    console.print(f"[bold green]Support n° {token_serial} débloqué[/] (back-office : "
                  f"{label(STATE_LABELS, recorded['state'])}).", soft_wrap=True)


@station.command("check", with_appcontext=False)
@token_options
@click.option("--login", is_flag=True, help="Le porteur saisit son code PIN pour lister aussi les objets privés.")
@server_options
@station_errors
def check_command(module: str | None, token_serial: str | None, login: bool, url: str | None,
                  api_token: str | None) -> None:
    """Ce que contient un support, et l'état de ses certificats au back-office."""
    if not token_serial:
        raise click.UsageError("Indiquez le support : --token-serial NUMÉRO.")
    console = _console()
    station_ = _station(_client(url, api_token), module, console, PinPolicy())
    show_report(inspect(station_, token_serial, pin=prompt_current_pin() if login else None), console)


def show_report(report: TokenReport, console: Console) -> None:
    console.print(f"[bold]Support « {escape(report.label)} »[/] n° {report.serial} ({escape(report.model)})")
    console.print("  " + " · ".join(f"{name} : {'oui' if value else 'non'}" for name, value in report.flags.items()))
    objects = Table(title="Objets" + ("" if report.logged_in else " publics (--login pour les objets privés)"),
                    title_justify="left")
    for column, wrap in (("Classe", False), ("Type", False), ("Libellé", True), ("ID", False)):
        objects.add_column(column, no_wrap=not wrap, overflow="fold")
    for obj in report.objects:
        objects.add_row(obj.object_class, obj.key_type or "", obj.label, obj.id_hex)
    console.print(objects)
    for cert in report.certificates:
        status = "certificat d'AC" if cert.is_ca else \
            f"au back-office : {label(STATE_LABELS, report.statuses.get(cert.serial, 'inconnu'))}"
        console.print(f"[bold]Certificat {cert.serial}[/] ({status})", soft_wrap=True)
        console.print(f"  {escape(cert.subject)}", soft_wrap=True)
        console.print(f"  du {cert.not_before[:10]} au {cert.not_after[:10]} · libellé « {escape(cert.label)} » · "
                      f"ID {cert.id_hex}", soft_wrap=True)
    if report.back_office is not None:
        console.print(f"Back-office : support {label(STATE_LABELS, report.back_office['state'])}.")
    if report.back_office_problem:
        console.print(f"[yellow]Back-office : {escape(report.back_office_problem)}[/]", soft_wrap=True)
