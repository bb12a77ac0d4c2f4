"""The back-office's station API over HTTP (urllib): JSON in and out, the operator's bearer token.

Every answer other than 2xx becomes :class:`ServerRefusal` carrying the server's own French
message; a connection that cannot be made, or drops before the answer, becomes
:class:`StationNetworkError`. A request whose answer was lost after it was sent is marked
``uncertain``: the back-office may have done it.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote

from ra.station.errors import ServerRefusal, StationError, StationNetworkError

API_PREFIX = "/api/v1"
USER_AGENT = "guichet-station/1"

_ADVICE = {
    401: "Vérifiez le jeton d'API de l'opérateur (--api-token ou GUICHET_API_TOKEN).",
    403: "Seul l'opérateur de la session, mandataire ou AED formé et désigné, peut faire cette opération.",
    404: "Vérifiez la référence : l'objet n'existe pas ou n'est pas dans votre périmètre.",
}


@dataclass(frozen=True)
class WorkItem:
    """One holder to serve at today's session, as the back-office lists it."""

    order_id: int
    reference: str
    state: str
    holder: str
    entity: str
    profile: str
    token_choice: str  # "new" or "reuse"
    token_serial: str | None
    session_id: int
    site_address: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkItem:
        """Mirror of the back-office's ``ra.services.enrolment.WorkItem``: a missing field is an error."""
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise StationError(f"La réponse du back-office ne donne pas {', '.join(missing)}.",
                               advice="Le poste et le back-office ne sont pas de la même version.")
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class IssuedCertificate:
    serial: str
    certificate_pem: str
    chain_pems: tuple[str, ...]  # issuing CA, then root
    not_before: str
    not_after: str


class StationClient:
    """Calls to ``<url>/api/v1`` as one operator."""

    def __init__(self, url: str, api_token: str, *, timeout: float = 60.0, attempts: int = 3,
                 retry_delay: float = 1.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Adresse du back-office invalide : {url!r} (http://… ou https://…).")
        if not api_token:
            raise ValueError("Jeton d'API manquant : --api-token ou GUICHET_API_TOKEN.")
        self.url = url.rstrip("/")
        self._token = api_token
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay

    def __repr__(self) -> str:
        return f"<StationClient {self.url}>"  # never the token

    # --- transport --------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + API_PREFIX + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self._token}", "Accept": "application/json", "User-Agent": USER_AGENT,
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:  # the request could not be sent: nothing was done
            raise StationNetworkError(
                f"Back-office injoignable ({self.url}) : {exc.reason}.",
                advice="Vérifiez la connexion réseau et l'adresse (--url ou GUICHET_URL), puis recommencez.",
            ) from None
        except (OSError, http.client.HTTPException) as exc:  # sent, but the answer was lost
            raise StationNetworkError(
                f"La connexion au back-office a été coupée avant sa réponse ({type(exc).__name__}).",
                advice="Vérifiez la connexion réseau puis recommencez.", uncertain=method != "GET",
            ) from None
        try:
            return json.loads(payload) if payload else None
        except ValueError:
            raise ServerRefusal(f"Réponse illisible du back-office ({self.url}) : ce n'est pas du JSON.",
                                status=200, code="bad_response", server_message="",
                                advice="Vérifiez l'adresse du back-office (--url ou GUICHET_URL).") from None

    def _refusal(self, status: int, body: bytes) -> ServerRefusal:
        try:
            parsed = json.loads(body)
            code, message = str(parsed["error"]), str(parsed["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", f"réponse HTTP {status} sans explication"
        if status >= 500:
            text = f"Erreur du back-office (HTTP {status}) : {message}"
        else:
            text = f"Refusé par le back-office (HTTP {status}) : {message}"
        return ServerRefusal(text, status=status, code=code, server_message=message, advice=_ADVICE.get(status, ""))

    def _with_retries(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """For calls the back-office makes idempotent: a dropped connection is tried again."""
        uncertain = False
        for attempt in range(1, self.attempts + 1):
            try:
                return self._request(method, path, body)
            except StationNetworkError as exc:
                uncertain = uncertain or exc.uncertain
                if attempt == self.attempts:
                    exc.uncertain = uncertain
                    raise
            except ServerRefusal as exc:
                # After a lost answer, "in progress" (409) means our first attempt is still running.
                if uncertain and exc.status == 409 and attempt < self.attempts:
                    time.sleep(self.retry_delay * attempt)
                    continue
                exc.uncertain = uncertain
                raise
            time.sleep(self.retry_delay * attempt)
        raise AssertionError("unreachable")

    # --- the station API --------------------------------------------------------------------

    def today(self) -> list[WorkItem]:
        return [WorkItem.from_json(item) for item in self._with_retries("GET", "/station/today")]

    def enrolment(self, order_id: int) -> WorkItem:
        """The order, if this operator may enrol it now (the back-office's checks, nothing written)."""
        return WorkItem.from_json(self._with_retries("GET", f"/orders/{order_id}/enrolment"))

    def register_token(self, order_id: int, *, serial: str, model: str, so_pin: str | None) -> dict[str, Any]:
        """Record the token for the order; a new token's SO PIN goes into the escrow."""
        body: dict[str, Any] = {"serial": serial, "model": model[:100]}
        if so_pin is not None:
            body["so_pin"] = so_pin
        return dict(self._with_retries("POST", f"/orders/{order_id}/token", body))

    def submit_csr(self, order_id: int, csr_pem: str) -> IssuedCertificate:
        """Issue the certificate; after a lost answer the SAME request is sent again (same certificate)."""
        data = self._with_retries("POST", f"/orders/{order_id}/certificate", {"csr": csr_pem})
        return IssuedCertificate(data["serial"], data["certificate"], tuple(data["chain"]),
                                 data.get("not_before", ""), data.get("not_after", ""))

    def confirm_delivery(self, order_id: int, token_serial: str) -> dict[str, Any]:
        """Not repeated on its own: a second confirmation is refused and the code is drawn once."""
        return dict(self._request("POST", f"/orders/{order_id}/delivery", {"token_serial": token_serial}))

    def redraw_revocation_code(self, order_id: int, token_serial: str) -> dict[str, Any]:
        """After a lost delivery answer: a new code (the unseen one stops working), same receipt.

        Repeated after a lost answer like the CSR: every try draws a code, the last one answered counts."""
        return dict(self._with_retries("POST", f"/orders/{order_id}/delivery/revocation-code",
                                  {"token_serial": token_serial}))

    def escrowed_so_pin(self, serial: str) -> str:
        return str(self._with_retries("GET", f"/tokens/{quote(serial, safe='')}/so-pin")["so_pin"])

    def token(self, serial: str) -> dict[str, Any]:
        return dict(self._with_retries("GET", f"/tokens/{quote(serial, safe='')}"))

    def set_token_state(self, serial: str, state: str, note: str | None = None) -> dict[str, Any]:
        body = {"state": state, **({"note": note[:500]} if note else {})}
        return dict(self._request("POST", f"/tokens/{quote(serial, safe='')}/state", body))
