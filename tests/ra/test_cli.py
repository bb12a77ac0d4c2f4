"""The ``guichet`` command, run as a real process against a real instance."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ra.config import ISSUING_SLUG, ROOT_SLUG
from ra.instance import Instance
from ra.station.pin import PinPolicy
from tests.ra.helpers import VENV_BIN, guichet
from tests.ra.test_issuance_pipeline import issue


def test_certs_list_json(pki: Instance) -> None:
    cert = issue(pki)
    rows = json.loads(guichet(pki, "certs", "list", "--json").stdout)
    mine = [r for r in rows if r["serial"] == cert.serial]
    assert mine and mine[0]["status"] == "valid"
    assert {"serial", "status", "subject", "not_after"} <= set(mine[0])
    assert "CN=Marie DUBOIS" in mine[0]["subject"]


def test_certs_show_pem_round_trips(pki: Instance) -> None:
    cert = issue(pki)
    pem = guichet(pki, "certs", "show", cert.serial, "--pem").stdout
    assert x509.load_pem_x509_certificate(pem.encode()).serial_number == int(cert.serial, 16)


def test_certs_show_unknown_serial_is_a_clear_error(pki: Instance) -> None:
    result = guichet(pki, "certs", "show", "deadbeef", check=False)
    assert result.returncode == 1
    assert "No certificate with serial deadbeef" in result.stderr
    assert "Traceback" not in result.stderr


def test_certs_revoke_then_crl_publish(pki: Instance) -> None:
    cert = issue(pki)
    out = guichet(pki, "certs", "revoke", cert.serial, "--reason", "keyCompromise").stdout
    assert "revoked" in out
    again = guichet(pki, "certs", "revoke", cert.serial, "--reason", "keyCompromise", check=False)
    assert again.returncode == 1 and "already revoked" in again.stderr
    guichet(pki, "crl", "publish")
    crl = x509.load_der_x509_crl((pki.settings.publication_dir / f"{ISSUING_SLUG}.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(cert.serial, 16)) is not None
    rows = json.loads(guichet(pki, "certs", "list", "--json", "--status", "revoked").stdout)
    assert cert.serial in {r["serial"] for r in rows}


def test_revoke_with_bad_reason_changes_nothing(pki: Instance) -> None:
    cert = issue(pki)
    result = guichet(pki, "certs", "revoke", cert.serial, "--reason", "certificateHold", check=False)
    assert result.returncode == 1 and "final" in result.stderr
    rows = json.loads(guichet(pki, "certs", "list", "--json").stdout)
    assert [r["status"] for r in rows if r["serial"] == cert.serial] == ["valid"]


def test_audit_verify_reports_intact_chain(pki: Instance) -> None:
    assert "Audit chain intact" in guichet(pki, "audit", "verify").stdout


def test_init_then_demo_on_fresh_instance_with_default_ceremony(tmp_path: Path) -> None:
    """The real `guichet init` in its own process and SoftHSM folder, run again, then `guichet demo`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUICHET_", "SOFTHSM2_CONF"))}
    env["GUICHET_INSTANCE"] = str(tmp_path / "instance")
    run = lambda *args: subprocess.run([str(VENV_BIN / "guichet"), *(args or ("init",))], env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=600)
    first = run()
    assert first.returncode == 0, first.stderr
    pki = tmp_path / "instance" / "pki"
    root = x509.load_der_x509_certificate((pki / f"{ROOT_SLUG}.crt").read_bytes())
    issuing = x509.load_der_x509_certificate((pki / f"{ISSUING_SLUG}.crt").read_bytes())
    assert root.public_key().key_size == 4096 and issuing.public_key().key_size == 4096
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    issuing.verify_directly_issued_by(root)
    assert x509.load_der_x509_crl((pki / f"{ISSUING_SLUG}.crl").read_bytes()).is_signature_valid(issuing.public_key())
    assert x509.load_der_x509_crl((pki / f"{ROOT_SLUG}.crl").read_bytes()).is_signature_valid(root.public_key())
    pins = (tmp_path / "instance" / "softhsm-dev-pins.env")
    assert oct(pins.stat().st_mode & 0o777) == "0o600"
    second = run()
    assert second.returncode == 0 and "already initialised" in second.stdout
    assert (pki / f"{ROOT_SLUG}.crt").read_bytes() == root.public_bytes(serialization.Encoding.DER)

    demo = run("demo")
    assert demo.returncode == 0, demo.stderr
    delivered = re.findall(r"delivered: order=(\S+),.*holder_pin=(\d+), revocation_code=([A-Z0-9-]+), receipt=(\S+)",
                           demo.stdout)
    assert len(delivered) == 2, demo.stdout
    for _order, pin, _code, receipt in delivered:
        assert PinPolicy().problem(pin) is None and Path(receipt).stat().st_size > 0
    assert len(re.findall(r"^  (operator|auditor|mc|aed) ", demo.stdout, re.M)) == 5
    again = run("demo")
    assert again.returncode == 0 and "already loaded" in again.stdout and "delivered:" not in again.stdout
