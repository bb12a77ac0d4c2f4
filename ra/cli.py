"""The ``guichet`` command line: a Flask CLI group with the project's stable command names."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask.cli import FlaskGroup
from sqlalchemy import select

from ca.errors import CAError
from ra import create_app
from ra.audit import verify as verify_chain
from ra.config import ISSUING_SLUG, ConfigError
from ra.db import transaction, utcnow
from ra.errors import RAError
from ra.instance import current_instance
from ra.models import Certificate
from ra.services.crl import publish_crl
from ra.services.revocation import find_certificate, parse_reason, revoke_certificate

CLI_ACTOR = f"cli:{os.environ.get('USER', 'operator')}"


def user_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """Known errors become a one-line message and exit status 1, never a traceback."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (RAError, CAError, ConfigError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


class GuichetGroup(FlaskGroup):
    """``guichet``: the station group is loaded only when asked for (rich, fpdf, the token layer).

    The delivery-station client runs on the operator's workstation: no database, no app context.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "station"})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "station":
            from ra.station.cli import station

            return station
        return super().get_command(ctx, name)


@click.group(cls=GuichetGroup, create_app=create_app, add_default_commands=False)
def main() -> None:
    """guichet: registration authority and CA core for RGS** entité certificates."""


@main.command("init")
@click.option("--ceremony", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ceremony file (TOML); the built-in defaults make a working instance.")
@click.option("--existing-tokens", is_flag=True,
              help="Use CA tokens already initialised on the HSM instead of creating them.")
@user_errors
def init_command(ceremony: Path | None, existing_tokens: bool) -> None:
    """Create the database schema, then (once) the CA keys, certificates and first CRLs."""
    from ra.services.setup import ensure_dev_pins, initialise

    instance = current_instance()
    pins_file = ensure_dev_pins(instance.settings)
    report = initialise(instance, plan_path=ceremony, create_tokens=not existing_tokens)
    if not report.created:
        click.echo(f"Instance already initialised ({', '.join(report.authorities)}); nothing changed.")
        return
    click.echo(f"CA created: {', '.join(report.authorities)}.")
    click.echo(f"Public files in {instance.settings.publication_dir}.")
    if pins_file:
        click.echo(f"Development SoftHSM PINs are in {pins_file} (mode 0600); "
                   "a production instance sets GUICHET_*_PIN from its secret store.")


@main.command("serve")
@click.option("--workers", default=2, show_default=True)
def serve_command(workers: int) -> None:
    """Serve the back-office with gunicorn on GUICHET_BIND."""
    settings = current_instance().settings
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", settings.bind,
            "--access-logfile", "-", "ra.wsgi:app"]
    click.echo(f"guichet sert sur http://{settings.bind}/")
    os.execv(sys.executable, argv)


@main.group("certs")
def certs() -> None:
    """List, show and revoke certificates."""


@certs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--status", type=click.Choice(["valid", "revoked", "expired", "reserved", "failed"]))
def certs_list(as_json: bool, status: str | None) -> None:
    instance, now = current_instance(), utcnow()
    rows = []
    with instance.factory() as session:
        for cert in session.scalars(select(Certificate).order_by(Certificate.reserved_at)):
            item = {
                "serial": cert.serial, "status": cert.status(now), "subject": cert.subject,
                "profile": cert.profile, "not_before": cert.not_before.isoformat(),
                "not_after": cert.not_after.isoformat(),
                "revoked_at": cert.revoked_at.isoformat() if cert.revoked_at else None,
            }
            if status is None or item["status"] == status:
                rows.append(item)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for item in rows:
        click.echo(f"{item['serial']:<34} {item['status']:<9} {item['not_after'][:10]}  {item['subject']}")
    click.echo(f"{len(rows)} certificate(s)")


@certs.command("show")
@click.argument("serial")
@click.option("--pem", is_flag=True, help="Print the certificate in PEM.")
@user_errors
def certs_show(serial: str, pem: bool) -> None:
    instance = current_instance()
    with instance.factory() as session:
        cert = find_certificate(session, serial)
        if pem:
            if cert.der is None:
                raise RAError(f"Certificate {cert.serial} was never signed ({cert.state}).")
            click.echo(x509.load_der_x509_certificate(cert.der).public_bytes(
                serialization.Encoding.PEM).decode(), nl=False)
            return
        click.echo(f"serial      {cert.serial}")
        click.echo(f"status      {cert.status(utcnow())}")
        click.echo(f"subject     {cert.subject}")
        click.echo(f"profile     {cert.profile}")
        click.echo(f"not before  {cert.not_before.isoformat()}")
        click.echo(f"not after   {cert.not_after.isoformat()}")
        if cert.revoked_at:
            click.echo(f"revoked     {cert.revoked_at.isoformat()} (reason {cert.revocation_reason})")
        if cert.failure:
            click.echo(f"failure     {cert.failure}")


@certs.command("revoke")
@click.argument("serial")
@click.option("--reason", required=True, help="RFC 5280 reason, e.g. keyCompromise, superseded.")
@user_errors
def certs_revoke(serial: str, reason: str) -> None:
    instance = current_instance()
    parsed = parse_reason(reason)
    with transaction(instance.factory) as session:
        cert = revoke_certificate(session, find_certificate(session, serial), reason=parsed,
                                  actor=CLI_ACTOR)
        click.echo(f"Certificate {cert.serial} revoked ({parsed.name}). "
                   "Run `guichet crl publish` to publish it now.")


@main.group("crl")
def crl() -> None:
    """Certificate revocation lists."""


@crl.command("publish")
@click.option("--ca", "slug", default=ISSUING_SLUG, show_default=True,
              help="ac-rgs2-entites (holder CRL) or ac-racine (the root's ARL, root PIN needed).")
@click.option("--if-due", is_flag=True,
              help="Publish only if revocations are pending or the last CRL is 20 h old (for cron).")
@user_errors
def crl_publish(slug: str, if_due: bool) -> None:
    from datetime import timedelta

    from ra.services.crl import crl_due

    instance = current_instance()
    settings = instance.settings
    hours = 24 * 365 if slug != ISSUING_SLUG else settings.crl_next_update_hours
    if if_due:  # an eighth of the validity: daily for a 7-day CRL, every 6 weeks for the root's ARL
        with instance.factory() as session:
            reason = crl_due(session, slug, utcnow(), max_age=timedelta(hours=hours) / 8)
        if reason is None:
            click.echo(f"CRL {slug} is current; nothing published.")
            return
        click.echo(f"Publishing: {reason}.")
    row = publish_crl(instance.factory, instance.ca, slug, actor=CLI_ACTOR,
                      publication_dir=settings.publication_dir, next_update_hours=hours)
    click.echo(f"CRL {slug} #{row.number}: {row.entries} entries, next update "
               f"{row.next_update.isoformat()}, sha256 {row.sha256}.")


@main.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Recompute the chain; name the first broken row."""
    with current_instance().factory() as session:
        report = verify_chain(session)
    if report.ok:
        click.echo(f"Audit chain intact: {report.rows} rows.")
        return
    click.echo(f"Audit chain BROKEN at row {report.first_broken_seq}: {report.reason}.", err=True)
    sys.exit(1)




@main.group("bench")
def bench() -> None:
    """Benchmarks, printed as ratios against a peer measured in the same run."""


@bench.command("issuance", with_appcontext=False)
@click.option("--count", default=1200, show_default=True, help="Certificates to issue.")
@click.option("--workers", default=os.cpu_count() or 2, show_default=True, type=click.IntRange(1))
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1),
              help="Alternations of raw signing and issuance.")
@click.option("--database-url", help="Benchmark on this (empty) database instead of SQLite.")
def bench_issuance_command(count: int, workers: int, rounds: int, database_url: str | None) -> None:
    """End-to-end issuance against raw signing with the same CA key, alternated in the same processes."""
    from ra.bench import bench_issuance, check_issuance_plan

    try:
        check_issuance_plan(count, workers, rounds)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--count") from None
    click.echo(bench_issuance(count, workers, database_url, rounds=rounds, echo=click.echo).line())


@bench.command("crl", with_appcontext=False)
@click.option("--entries", default=100_000, show_default=True, help="Revoked certificates.")
@click.option("--database-url", help="Benchmark on this (empty) database instead of SQLite.")
def bench_crl_command(entries: int, database_url: str | None) -> None:
    """A signed CRL from N revoked rows against `openssl ca -gencrl` on the same entries."""
    from ra.bench import bench_crl

    click.echo(bench_crl(entries, database_url, echo=click.echo).line())


@main.group("documents")
def documents_group() -> None:
    """Supporting documents of the dossiers."""


@documents_group.command("purge")
@click.option("--dry-run", is_flag=True, help="List what would be purged; change nothing.")
@user_errors
def documents_purge(dry_run: bool) -> None:
    """Delete the files of dossiers 7 years after their last certificate expired."""
    from datetime import date

    from ra.services.dossier import purge_documents

    instance = current_instance()
    with transaction(instance.factory) as session:
        report = purge_documents(session, instance.vault, date.today(), dry_run=dry_run, actor=CLI_ACTOR)
    for item in report.purged:
        click.echo(f"document {item.document_id}  retained until {item.retain_until.isoformat()}  "
                   f"orders {', '.join(item.orders)}")
    verb = "would be purged" if dry_run else "purged"
    click.echo(f"{len(report.purged)} document(s) {verb}; {report.kept} still within their retention period.")


@main.command("operator")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@user_errors
def operator_command(email: str, full_name: str) -> None:
    """Create a CA operator account (the first one of an instance); prints its password once."""
    from ra.models import Role
    from ra.services.accounts import NewAccount, create_account
    from ra.services.staff import temporary_password

    password = temporary_password()
    with transaction(current_instance().factory) as session:
        account = create_account(session, NewAccount(email=email, full_name=full_name,
                                                     role=Role.OPERATOR, password=password), actor=CLI_ACTOR)
    click.echo(f"Operator {account.email} created. Temporary password (shown once): {password}")
    click.echo("The second factor (TOTP) is enrolled at the first login.")


@main.command("demo")
@click.option("--no-station", is_flag=True, help="Do not deliver certificates through the station.")
@user_errors
def demo_command(no_station: bool) -> None:
    """Fill this (initialised) instance with demonstration data, once."""
    from ra.demo import load_demo

    instance = current_instance()
    report = load_demo(instance, deliver=not no_station)
    if report is None:
        click.echo("Demo data already loaded; nothing changed.")
        return
    click.echo("Demo data loaded. Logins (shown once; TOTP is enrolled at the first login):")
    for login in report.logins:
        click.echo(f"  {login.role:<9} {login.email:<36} {login.password}   ({login.name})")
    for delivery in report.deliveries:
        click.echo("  delivered: " + ", ".join(f"{k}={v}" for k, v in delivery.items()))
    states: dict[str, int] = {}
    for state in report.orders.values():
        states[state] = states.get(state, 0) + 1
    click.echo("Orders: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))


if __name__ == "__main__":
    main()
