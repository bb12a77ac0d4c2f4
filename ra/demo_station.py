"""The demo delivers today's identity-verified holders exactly as an operator would: the
station enrols a blank SoftHSM token of the instance for each, over HTTP, through the API."""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import date
from pathlib import Path

from werkzeug.serving import make_server

from ra.db import transaction
from ra.instance import Instance
from ra.models import StaffAccount
from ra.services.accounts import create_api_token, revoke_api_token
from ra.station.client import StationClient
from ra.station.enrolment import Station, enrol
from ra.station.pin import PinPolicy


class _Quiet:
    def step(self, number: int, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def deliver_today(instance: Instance, operator_id: int, *, today: date) -> list[dict[str, str]]:
    """Enrol every identity-verified holder of the operator's sessions of today."""
    from ra import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request log in the demo's output
    app = create_app(instance.settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with transaction(instance.factory) as session:
        operator = session.get(StaffAccount, operator_id)
        assert operator is not None
        token, clear = create_api_token(session, operator, "démonstration (station)", actor="demo")
    results: list[dict[str, str]] = []
    try:
        client = StationClient(f"http://127.0.0.1:{server.server_port}", clear)
        receipts = instance.settings.instance / "demo-receipts"
        receipts.mkdir(exist_ok=True)
        policy = PinPolicy()
        for item in client.today():
            if item.state != "identity_verified":
                continue
            pin = f"{secrets.randbelow(10**8):08d}"
            while policy.problem(pin):  # the station's own rule (no repeated digit, no sequence)
                pin = f"{secrets.randbelow(10**8):08d}"
            station = Station(client=client, module=instance.settings.pkcs11_module, reporter=_Quiet(),
                              ask_new_pin=lambda pin=pin: pin, ask_current_pin=lambda pin=pin: pin,
                              pin_policy=policy)
            result = enrol(station, item.reference, blank=True, receipt_dir=Path(receipts))
            results.append({"order": item.reference, "holder": item.holder,
                            "token": result.token_label, "holder_pin": pin,
                            "revocation_code": result.revocation_code,
                            "receipt": str(result.receipt_path or "")})
    finally:
        server.shutdown()
        with transaction(instance.factory) as session:
            revoke_api_token(session, session.merge(token), actor="demo")
        app.extensions["guichet"].close()
    return results
