"""The CA as the RA process sees it: authority records plus keys opened on their tokens.

One ``CertificationAuthority`` per process (tokens are opened lazily, after any fork). It turns
database rows into the frozen objects ``ca`` takes; ``ca`` never sees the database.
"""

from __future__ import annotations

import gc
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.signer import SigningKey
from ca.token import Token
from ra.config import ISSUING_SLUG, ROOT_SLUG, Settings
from ra.errors import NotFound
from ra.models import Authority

if TYPE_CHECKING:  # pkilint is heavy to import: only issuing processes load it
    from ca.issuance import Issuer


@dataclass(frozen=True)
class AuthorityRef:
    id: int
    slug: str
    name: str
    certificate_der: bytes
    token_label: str
    key_id: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.certificate_der)


def load_authority(session: Session, slug: str) -> AuthorityRef:
    row = session.scalar(select(Authority).where(Authority.slug == slug))
    if row is None:
        raise NotFound(f"No certification authority {slug!r}: run `guichet init` first.")
    return AuthorityRef(
        id=row.id, slug=row.slug, name=row.name, certificate_der=row.certificate_der,
        token_label=row.token_label, key_id=bytes.fromhex(row.key_id),
    )


_frozen = False
YOUNG_COLLECTION_THRESHOLD = 5000  # Python's default is 700


def _freeze_long_lived() -> None:
    """Once per process, after the first issuer is built: the linter's ~200k objects and the
    modules loaded so far live as long as the process, so keep them out of every later full
    collection (~0.2 ms per certificate issued). What else is alive then stays for good too.

    Young collections are made rarer too: one certificate's lint allocates and frees a few
    thousand container objects, and with the default threshold a collection ran at about every
    certificate, scanning objects about to be freed anyway; measured, 0.7 ms per certificate
    (collections and what they evict from the CPU caches) on a 10 ms issuance."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


class CertificationAuthority:
    """Opens CA keys on their tokens on first use and keeps the sessions for the process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._keys: dict[str, SigningKey] = {}
        self._issuer: "Issuer | None" = None
        self._refs: dict[str, AuthorityRef] = {}

    def authority(self, session: Session, slug: str) -> AuthorityRef:
        """The authority's record, read once per process (it never changes after the ceremony)."""
        ref = self._refs.get(slug)
        if ref is None:
            ref = self._refs[slug] = load_authority(session, slug)
        return ref

    def signing_key(self, ref: AuthorityRef) -> SigningKey:
        with self._lock:
            key = self._keys.get(ref.slug)
            if key is None:
                pin = self.settings.root_pin() if ref.slug == ROOT_SLUG else self.settings.ca_pin()
                token = Token.open(self.settings.pkcs11_module, label=ref.token_label)
                session = self._stack.enter_context(token.session(user_pin=pin, rw=False))
                key = session.private_key(key_id=ref.key_id)
                self._keys[ref.slug] = key
            return key

    def issuer(self, session: Session) -> "Issuer":
        if self._issuer is None:
            from ca.issuance import Issuer, IssuerConfig

            ref = self.authority(session, ISSUING_SLUG)
            config = IssuerConfig(
                ca_certificate=ref.certificate_der,
                crl_url=self.settings.url_for_pki(f"{ISSUING_SLUG}.crl"),
                ca_issuers_url=self.settings.url_for_pki(f"{ISSUING_SLUG}.crt"),
                policy_oid=self.settings.policy_oid,
            )
            self._issuer = Issuer(config, self.signing_key(ref))
            _freeze_long_lived()
        return self._issuer

    def close(self) -> None:
        with self._lock:
            self._keys.clear()
            self._refs.clear()
            self._issuer = None
            self._stack.close()
