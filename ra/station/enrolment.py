"""Enrolling one holder's token at the delivery session, in the issue's numbered steps.

0. the back-office confirms that this operator may enrol this order now (nothing touched yet);
1. the token: a new one is initialised under an SO PIN escrowed at the back-office, a reused one
   (the order's own) is wiped with its escrowed SO PIN;
2. the holder types the PIN twice; it becomes the token's user PIN;
3. the key pair is generated on the token; the station checks it was generated there and cannot
   leave (CKA_LOCAL, CKA_SENSITIVE, not CKA_EXTRACTABLE), then the token signs the CSR;
4. the back-office issues (the same CSR sent again after a lost answer gets the same certificate);
5. the certificate and the CA chain are written under the key's ID; the delivery is confirmed;
6. the revocation code is handed back once and the procès-verbal is written.

Cleanup: until the back-office may have issued, a failure deletes the generated key (no stray
key). Once a certificate may exist, the key stays, and running the command again finishes the
work (same key, same certificate).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ca import errors
from ca.profiles import MAX_VALIDITY, RSA_2048_LAST_NOT_AFTER, check_public_key
from ca.token import KeySpec, Token, TokenSession, initialize_token
from ra.station import tokens
from ra.station.client import IssuedCertificate, StationClient, WorkItem
from ra.station.errors import (
    EnrolmentFailed, ServerRefusal, StationError, StationNetworkError, TokenProblem, TokenPulledOut,
)
from ra.station.pin import PinPolicy
from ra.station.receipt import DeliveryReceipt, write_receipt

DEFAULT_KEY = KeySpec("rsa", 3072)
STEPS = {1: "préparation du support", 2: "code PIN du porteur", 3: "génération de la clé et de la demande",
         4: "émission du certificat", 5: "écriture sur le support et remise", 6: "code de révocation et procès-verbal"}


class Reporter(Protocol):
    def step(self, number: int, text: str) -> None: ...

    def note(self, text: str) -> None: ...


@dataclass
class Progress:
    """Where an enrolment stands; the checkpoint callback sees it (tests pull the token out there)."""

    item: WorkItem
    step: int = 0
    token_serial: str | None = None
    key_id: bytes | None = None
    certificate_serial: str | None = None
    may_be_issued: bool = False  # a CSR reached, or may have reached, the back-office
    key_deleted: bool | None = None  # after a failure: the generated key was (not) deleted


@dataclass
class Station:
    """The workstation: the back-office client, the PKCS#11 module and how to talk to people."""

    client: StationClient
    module: str
    reporter: Reporter
    ask_new_pin: Callable[[], str]
    ask_current_pin: Callable[[], str]
    pin_policy: PinPolicy = field(default_factory=PinPolicy)
    checkpoint: Callable[[str, Progress], None] | None = None

    def reached(self, name: str, progress: Progress) -> None:
        if self.checkpoint is not None:
            self.checkpoint(name, progress)


@dataclass(frozen=True)
class EnrolmentResult:
    receipt: DeliveryReceipt
    revocation_code: str  # to show once to the holder; the back-office keeps only its hash
    receipt_path: Path | None  # None if the PDF could not be written
    token_label: str
    key_id: bytes
    resumed: bool


def find_order(client: StationClient, order: str) -> WorkItem:
    """Step 0: the order by reference (today's list) or by number (the back-office decides)."""
    wanted = order.strip()
    for item in client.today():
        if item.reference.lower() == wanted.lower() or str(item.order_id) == wanted:
            return client.enrolment(item.order_id)
    if wanted.isdigit():
        return client.enrolment(int(wanted))
    raise StationError(f"La commande {wanted} n'est pas à remettre par vous aujourd'hui.",
                       advice="Porteur absent, face-à-face non enregistré, ou commande d'une autre session : "
                              "vérifiez la liste avec « guichet station ».")


def check_key_spec(spec: KeySpec, now: dt.datetime) -> None:
    """Refuse before generating a key the profile would refuse for a certificate issued now."""
    if spec.kind == "rsa" and spec.size < 3072 and now + MAX_VALIDITY > RSA_2048_LAST_NOT_AFTER:
        raise StationError(f"Une clé {spec} est trop courte pour un certificat qui expirera après 2030 : "
                           "utilisez rsa-3072 ou ec-p256.")


def enrol(station: Station, order: str, *, token_serial: str | None = None, blank: bool = False,
          key_spec: KeySpec = DEFAULT_KEY, receipt_dir: Path = Path(".")) -> EnrolmentResult:
    """Steps 0 to 6 for one holder; ``EnrolmentFailed`` says what happened and what to do."""
    item = find_order(station.client, order)
    if item.state == "delivered":
        raise StationError(f"La commande {item.reference} est déjà remise.",
                           advice="Pour voir le support : « guichet station check --token-serial … ».")
    if item.state == "issued":
        return resume(station, item, token_serial=token_serial, receipt_dir=receipt_dir)
    if item.state != "identity_verified":
        raise StationError(f"La commande {item.reference} n'est pas prête pour la remise ({item.state}).")
    check_key_spec(key_spec, dt.datetime.now(dt.timezone.utc))
    if item.token_choice == "reuse":
        if token_serial and token_serial != item.token_serial:
            raise StationError(f"Le support n° {token_serial} n'est pas celui que la commande réutilise "
                               f"(n° {item.token_serial}).", advice="Branchez le support prévu par la commande.")
        token_serial = item.token_serial
    token = tokens.choose_token(station.module, serial=token_serial, blank=blank)
    progress = Progress(item, token_serial=token.serial or None)
    try:
        return _enrol_steps(station, progress, token, key_spec, receipt_dir)
    except (StationError, errors.TokenError) as exc:
        raise _failure(station, progress, exc) from exc


def _enrol_steps(station: Station, progress: Progress, token: Token, spec: KeySpec,
                 receipt_dir: Path) -> EnrolmentResult:
    item, report = progress.item, station.reporter
    progress.step = 1
    report.step(1, f"Support : {tokens.describe(token)}")
    token, so_pin = prepare_token(station, progress, token)
    station.reached("token_ready", progress)

    progress.step = 2
    report.step(2, "Le porteur choisit son code PIN (deux fois, masqué).")
    pin = set_holder_pin(station, token, so_pin)
    station.reached("pin_set", progress)

    label = tokens.key_label(item.holder, item.reference)
    with token.session(user_pin=pin) as session:
        progress.step = 3
        report.step(3, f"Génération de la clé {spec} sur le support…")
        progress.key_id = tokens.new_key_id()
        try:
            session.generate_key_pair(spec, label=label, key_id=progress.key_id)
            station.reached("key_generated", progress)
            issued = _submit(station, progress, signed_request(session, progress.key_id, item.holder))
        except BaseException:
            if not progress.may_be_issued:
                progress.key_deleted = _delete_key(station.module, token, session, pin, progress.key_id)
            raise
        _write(station, progress, session, issued, label)
    revocation_code, receipt = _confirm(station, progress, token.serial)
    return _hand_over(station, progress, revocation_code, receipt, receipt_dir, token.label, resumed=False)


def prepare_token(station: Station, progress: Progress, token: Token) -> tuple[Token, str]:
    """Step 1: the token initialised (new) or wiped (reused) under an escrowed SO PIN."""
    item, client, module = progress.item, station.client, station.module
    label = tokens.token_label(item.holder)
    if item.token_choice == "reuse" or token.initialized:
        try:
            so_pin = client.escrowed_so_pin(token.serial)
        except ServerRefusal as exc:
            if exc.status != 404:
                raise
            raise TokenProblem(f"Le {tokens.describe(token)} est déjà initialisé et le back-office n'a pas de "
                               "code PIN administrateur séquestré pour lui (ou il n'est pas dans votre périmètre).",
                               advice="Utilisez un support vierge, ou le support prévu par la commande.") from None
        tokens.verify_so_pin(token, so_pin, module)
        client.register_token(item.order_id, serial=token.serial, model=token.model,
                              so_pin=None if item.token_choice == "reuse" else so_pin)
        station.reporter.note("Effacement de tous les objets du support (réinitialisation).")
        with tokens.token_errors(module, token.serial, "réinitialisation du support"):
            return initialize_token(module, label=label, so_pin=so_pin, serial=token.serial), so_pin
    so_pin = tokens.new_so_pin()
    if token.serial.strip():  # a device with its own serial: the SO PIN is escrowed before it is set
        client.register_token(item.order_id, serial=token.serial, model=token.model, so_pin=so_pin)
        with tokens.token_errors(module, token.serial, "initialisation du support"):
            return initialize_token(module, label=label, so_pin=so_pin, serial=token.serial), so_pin
    # A software token's free slot gets its serial from C_InitToken: the escrow follows at once.
    with tokens.token_errors(module, None, "initialisation du support"):
        token = initialize_token(module, label=label, so_pin=so_pin)
    progress.token_serial = token.serial
    try:
        client.register_token(item.order_id, serial=token.serial, model=token.model, so_pin=so_pin)
    except StationError as exc:
        raise TokenProblem(
            f"{exc} Le support logiciel n° {token.serial} est initialisé mais son code PIN administrateur n'a pas "
            "pu être séquestré.", advice=f"Supprimez ce support (softhsm2-util --delete-token --serial {token.serial}) "
                                         "puis recommencez avec le support vierge.") from exc
    return token, so_pin


def set_holder_pin(station: Station, token: Token, so_pin: str, *, attempts: int = 3, what: str = "choix du code PIN",
                   give_up: tuple[str, str] = ("Aucun code PIN acceptable n'a été choisi.",
                                               "Relancez l'enrôlement.")) -> str:
    """Step 2 (and unblocking): the PIN typed by the holder (policy checked) becomes the user PIN,
    set by the SO; after ``attempts`` refused PINs, ``TokenProblem(*give_up)`` (message, advice)."""
    for _ in range(attempts):
        pin = station.ask_new_pin()
        reason = station.pin_policy.problem(pin)
        if reason is not None:
            station.reporter.note(reason)
            continue
        try:
            with tokens.token_errors(station.module, token.serial, what), token.session(so_pin=so_pin) as session:
                session.init_user_pin(pin)
            return pin
        except TokenProblem as exc:
            if not isinstance(exc.__cause__, errors.PinPolicyError):
                raise
            station.reporter.note("Le support refuse ce code PIN : choisissez-en un autre.")
    message, advice = give_up
    raise TokenProblem(message, advice=advice)


def signed_request(session: TokenSession, key_id: bytes, holder: str) -> str:
    """Step 3: check the key was generated on the token and stays there, then let it sign the CSR."""
    tokens.check_key_kept_on_token(session, key_id)
    key = session.private_key(key_id=key_id)
    try:
        check_public_key(key.public_key(), not_after=dt.datetime.now(dt.timezone.utc) + MAX_VALIDITY)
    except errors.RequestError as exc:
        raise TokenProblem(f"La clé générée est refusée par le profil du certificat ({exc}).") from exc
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, holder)]))
               .sign(key, hashes.SHA256()))
    return request.public_bytes(serialization.Encoding.PEM).decode()


def _submit(station: Station, progress: Progress, csr: str) -> IssuedCertificate:
    """Step 4: the back-office issues; a dropped connection sends the same CSR again."""
    progress.step = 4
    station.reporter.step(4, "Demande de certificat envoyée au back-office…")
    known_issued, progress.may_be_issued = progress.may_be_issued, True
    try:
        issued = station.client.submit_csr(progress.item.order_id, csr)
    except StationError as exc:
        progress.may_be_issued = known_issued or exc.uncertain
        raise
    progress.certificate_serial = issued.serial
    station.reached("certificate_issued", progress)
    return issued


def _write(station: Station, progress: Progress, session: TokenSession, issued: IssuedCertificate,
           label: str) -> None:
    """Step 5: the certificate (its key checked) and the CA chain on the token."""
    progress.step = 5
    station.reporter.step(5, f"Écriture du certificat {issued.serial} et de la chaîne sur le support.")
    assert progress.key_id is not None
    cert = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != session.public_key_der(key_id=progress.key_id):
        raise TokenProblem(f"Le certificat {issued.serial} rendu ne porte pas la clé du support.",
                           advice="Ne remettez pas le support ; signalez l'incident à l'AC.")
    tokens.write_certificates(session, issued.certificate_pem, issued.chain_pems, label=label,
                              key_id=progress.key_id)
    station.reached("certificate_written", progress)


def _confirm(station: Station, progress: Progress, token_serial: str) -> tuple[str, DeliveryReceipt]:
    """Step 5 (end): the order becomes delivered; the answer carries the revocation code, once."""
    try:
        answer = station.client.confirm_delivery(progress.item.order_id, token_serial)
    except StationNetworkError as exc:
        state = None
        if exc.uncertain:
            with suppress(StationError):
                state = station.client.enrolment(progress.item.order_id).state
        if state != "delivered":
            raise
        station.reporter.note("Remise enregistrée mais réponse perdue : nouveau code de révocation demandé.")
        try:  # nobody saw the code drawn at the delivery: another one replaces it
            answer = station.client.redraw_revocation_code(progress.item.order_id, token_serial)
        except StationError:
            raise EnrolmentFailed(
                "La remise est enregistrée, mais la réponse du back-office (avec le code de révocation) a été "
                "perdue.", step=5,
                advice="Le certificat est valide et sur le support, mais le porteur n'a pas de code de révocation : "
                       "en cas de besoin, il demandera la révocation à son mandataire ou à l'AC.") from exc
    now = dt.datetime.now(dt.timezone.utc)
    return answer["revocation_code"], DeliveryReceipt.from_server(answer["receipt"], delivered_at=now)


def _hand_over(station: Station, progress: Progress, code: str, receipt: DeliveryReceipt, receipt_dir: Path,
               token_label: str, *, resumed: bool) -> EnrolmentResult:
    """Step 6: the procès-verbal; the caller shows the revocation code once."""
    progress.step = 6
    station.reporter.step(6, "Procès-verbal de remise.")
    path: Path | None = receipt_dir / f"pv-remise-{receipt.reference}.pdf"
    try:  # the revocation code must reach the holder even if the PDF cannot be written
        write_receipt(receipt, path)  # type: ignore[arg-type]
    except OSError as exc:
        station.reporter.note(f"Le procès-verbal n'a pas pu être écrit ({exc.strerror or exc}).")
        path = None
    station.reached("delivered", progress)
    assert progress.key_id is not None
    return EnrolmentResult(receipt, code, path, token_label, progress.key_id, resumed)


def resume(station: Station, item: WorkItem, *, token_serial: str | None, receipt_dir: Path) -> EnrolmentResult:
    """An order already issued (answer lost, token pulled out): same key, same certificate, then steps 5-6."""
    serial = token_serial or item.token_serial
    if not serial or serial != item.token_serial:
        raise StationError(f"Le certificat de la commande {item.reference} a été émis pour le support "
                           f"n° {item.token_serial} : branchez ce support-là.")
    token = tokens.choose_token(station.module, serial=serial, blank=False)
    progress = Progress(item, step=3, token_serial=serial, may_be_issued=True)
    station.reporter.note(f"Reprise de l'enrôlement de {item.holder} : le certificat est déjà émis.")
    try:
        pin = station.ask_current_pin()
        with ExitStack() as opened:
            try:  # one login: a wrong PIN is told apart from what goes wrong once logged in
                session = opened.enter_context(token.session(user_pin=pin))
            except (errors.PinIncorrect, errors.PinLocked) as exc:
                raise EnrolmentFailed(
                    f"Code PIN du porteur {'refusé' if isinstance(exc, errors.PinIncorrect) else 'bloqué'} par le "
                    "support : le certificat déjà émis n'est pas encore écrit.", step=3,
                    advice=f"Relancez {_rerun(progress)} et faites retaper le code PIN ; s'il est bloqué, "
                           "« guichet station unblock » d'abord.") from None
            keys = tokens.private_key_ids(session.objects())
            if len(keys) != 1:
                raise EnrolmentFailed(f"{len(keys)} clé(s) privée(s) sur le support au lieu de la seule clé du porteur.",
                                      step=3, advice="Le certificat émis ne peut pas être remis : demandez sa "
                                                     "révocation puis une nouvelle commande.")
            progress.key_id = keys[0]
            issued = _submit(station, progress, signed_request(session, keys[0], item.holder))
            _write(station, progress, session, issued, tokens.key_label(item.holder, item.reference))
        code, receipt = _confirm(station, progress, serial)
    except (StationError, errors.TokenError) as exc:
        raise _failure(station, progress, exc) from exc
    return _hand_over(station, progress, code, receipt, receipt_dir, token.label, resumed=True)


# --- what went wrong, and the cleanup -------------------------------------------------------

def _rerun(progress: Progress) -> str:
    serial = f" --token-serial {progress.token_serial}" if progress.token_serial else ""
    return f"« guichet station enrol {progress.item.reference}{serial} »"


def _failure(station: Station, progress: Progress, exc: Exception) -> EnrolmentFailed:
    """The report of a failed enrolment, after deleting the generated key if nothing can be issued for it."""
    if isinstance(exc, errors.TokenError):
        exc = tokens.token_problem(exc, module=station.module, serial=progress.token_serial,
                                   doing=STEPS.get(progress.step, "enrôlement"))
    assert isinstance(exc, StationError)
    step, what = progress.step, str(exc).rstrip()
    what += "" if what.endswith((".", "!", "?", "»")) else "."
    if isinstance(exc, EnrolmentFailed):
        return exc
    if progress.key_deleted is not None:
        what += (" La clé générée a été effacée du support." if progress.key_deleted else
                 " La clé générée n'a pas pu être effacée : le support sera réinitialisé au prochain enrôlement.")
    if isinstance(exc, TokenPulledOut):
        if progress.may_be_issued:
            advice = (f"Réinsérez le même support et relancez {_rerun(progress)} : le porteur retape son code PIN "
                      "et le certificat déjà émis est écrit sur le support (aucun second certificat).")
        else:
            advice = (f"Aucun certificat n'a été émis. Réinsérez le support et relancez {_rerun(progress)} : "
                      "le support sera réinitialisé et l'enrôlement repris au début.")
        return EnrolmentFailed(f"Support retiré à l'étape {step} ({STEPS.get(step, '')}). {what}", step=step,
                               advice=advice)
    if progress.may_be_issued:
        advice = (f"Le certificat a peut-être été émis : gardez le support tel quel (la clé y reste). Quand le "
                  f"problème est réglé, relancez {_rerun(progress)} : la même clé est présentée et le même "
                  "certificat rendu.")
        return EnrolmentFailed(f"Étape {step} ({STEPS.get(step, '')}) interrompue : {what}", step=step, advice=advice)
    advice = exc.advice or f"Corrigez la cause puis relancez {_rerun(progress)}."
    return EnrolmentFailed(f"Étape {step} ({STEPS.get(step, '')}) refusée : {what}", step=step, advice=advice)


def _delete_key(module: str, token: Token, session: TokenSession, pin: str, key_id: bytes) -> bool:
    """Delete the generated key pair (no stray key): in the open session, else in a new one."""
    try:
        session.delete_objects(key_id=key_id)
        return True
    except errors.TokenError:
        pass
    try:  # the session died with the token: if it is back, a new session can still clean up
        with Token.open(module, serial=token.serial).session(user_pin=pin) as again:
            again.delete_objects(key_id=key_id)
        return True
    except errors.TokenError:
        return False
