"""The station's small parts: token labels, the receipt without DejaVu, the client's refusals."""

from __future__ import annotations

import subprocess
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ra.station import receipt as receipt_module
from ra.station.client import StationClient
from ra.station.errors import ServerRefusal
from ra.station.receipt import DeliveryReceipt, grouped, write_receipt
from ra.station.tokens import new_so_pin, token_label


def test_token_label_is_the_holder_cut_to_32_bytes_on_a_character() -> None:
    label = token_label("Anne-Gwenaëlle Françoise LE BOURDONNEC-KERVÉLLA")
    assert len(label.encode("utf-8")) <= 32 and label == label.strip()
    assert "Anne-Gwenaëlle Françoise LE BOURDONNEC".startswith(label)
    assert token_label("Marie  DUBOIS") == "Marie DUBOIS"


def test_so_pins_are_random_and_long() -> None:
    pins = {new_so_pin() for _ in range(50)}
    assert len(pins) == 50 and all(len(p) == 16 and p.isalnum() for p in pins)


def sample_receipt() -> DeliveryReceipt:
    now = datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc)
    return DeliveryReceipt(
        reference="S-0001", holder="Maëlle LE CŒUR", holder_email="maelle.lecoeur@mairie.example.fr",
        entity="COMMUNE DE PLOUGUERNÉVEL", siren="212202782", profile="rgs2-entite-double",
        certificate_serial="4f1e2d3c4b5a69788796a5b4c3d2e1f0", not_before=now, not_after=now + timedelta(days=1095),
        token_serial="0a1b2c3d4e5f6071", token_model="SoftHSM v2", operator="Yves Le Floc'h", operator_role="mc",
        site_address="Mairie, 22110 Plouguernével", delivered_at=now)


@pytest.mark.parametrize("dejavu", [True, False], ids=["dejavu", "core-font"])
def test_receipt_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dejavu: bool) -> None:
    if not dejavu:
        monkeypatch.setattr(receipt_module, "DEJAVU_DIRS", ())
    assert receipt_module._Document().unicode is dejavu  # each case takes its own path
    path = write_receipt(sample_receipt(), tmp_path / "pv.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Procès-verbal de remise" in text and "Maëlle LE C" in text and "PLOUGUERNÉVEL" in text
    assert grouped("4f1e2d3c4b5a69788796a5b4c3d2e1f0") in text and "0a1b2c3d4e5f6071" in text
    assert "21/11/2026 à 10:30 (heure de Paris)" in text  # UTC+1 in November
    assert "Le porteur" in text and "L'opérateur" in text and "Mandataire de certification" in text
    assert ("Maëlle LE CŒUR" in text) is dejavu
    assert ("Maëlle LE COEUR" in text) is not dejavu  # the core fonts have no Œ: folded to OE


def test_client_refuses_a_bad_address_and_reports_non_json_answers() -> None:
    with pytest.raises(ValueError):
        StationClient("guichet.example.fr", "gch_x")
    with pytest.raises(ValueError):
        StationClient("https://guichet.example.fr", "")
    assert "gch_secret" not in repr(StationClient("https://guichet.example.fr", "gch_secret"))
    portal = ThreadingHTTPServer(("127.0.0.1", 0), CaptivePortal)
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ServerRefusal, match="pas du JSON"):
            StationClient(f"http://127.0.0.1:{portal.server_port}", "gch_x").today()
    finally:
        portal.shutdown()
        portal.server_close()


class CaptivePortal(BaseHTTPRequestHandler):
    """A hotel network's login page answering every request with HTML."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
        body = b"<html>portail captif</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
