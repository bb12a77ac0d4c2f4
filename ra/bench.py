"""``guichet bench``: throughput figures as ratios against a peer measured in the same run.

Both benchmarks build a throwaway instance (its own SoftHSM token folder and database) with
the default ceremony, so the figures are those of the key sizes a real instance uses.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert

from ca.profiles import HolderSubject
from ra.config import ISSUING_SLUG, Settings, load_settings

BENCH_PINS = {
    "GUICHET_ROOT_PIN": "20260001", "GUICHET_ROOT_SO_PIN": "20260002",
    "GUICHET_CA_PIN": "20260003", "GUICHET_CA_SO_PIN": "20260004",
}


@contextmanager
def throwaway_instance(database_url: str | None) -> Iterator[Settings]:
    """A fresh instance in a temp dir with its own SoftHSM tokens (set before any token use)."""
    with tempfile.TemporaryDirectory(prefix="guichet-bench-") as tmp:
        directory = Path(tmp)
        tokens = directory / "tokens"
        tokens.mkdir()
        conf = directory / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        os.environ.update(BENCH_PINS)
        tag = secrets.token_hex(3)
        settings = load_settings(
            instance=directory / "instance", root_token_label=f"bench-root-{tag}",
            ca_token_label=f"bench-ca-{tag}",
            database_url=database_url or f"sqlite:///{directory / 'bench.db'}",
        )
        from ra.instance import Instance
        from ra.services.setup import initialise

        instance = Instance.open(settings)
        try:
            initialise(instance)
        finally:
            instance.close()
        yield settings


def child_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GUICHET_INSTANCE=str(settings.instance), GUICHET_DATABASE_URL=settings.database_url,
        GUICHET_ROOT_TOKEN=settings.root_token_label, GUICHET_CA_TOKEN=settings.ca_token_label,
        GUICHET_SECRET_KEY=settings.secret_key.hex(),
    )
    return env


# --- issuance ----------------------------------------------------------------------------------

_ENTITIES = (("COMMUNE DE SAINT-BRIEUC", "212202782"), ("COMMUNE DE RENNES", "213502388"),
             ("COMMUNE DE KERVILLE", "212900195"), ("COMMUNAUTE DE COMMUNES DE KERVILLE", "200035517"))
_GIVEN_NAMES = ("Marie", "Jean", "Anne-Sophie", "Pierre", "Léa", "Yann", "Gwenaëlle", "Éric", "Nolwenn",
                "Loïc", "Camille", "Hervé", "Maëlle", "Ronan", "Solène", "Thierry")
_SURNAMES = ("Dubois", "Le Goff", "Martin", "Le Gall", "Guillou", "Tanguy", "Le Roux", "Morvan", "Hamon",
             "Le Bihan", "Jégou", "Riou", "Kerhervé", "Prigent", "Cadiou", "Le Floch", "Nicol", "Quéré")


_SURNAME_PAIRS = tuple(f"{first}-{second}" for first in _SURNAMES for second in _SURNAMES if first != second)


@dataclass(frozen=True)
class BenchHolder:
    subject: HolderSubject
    csr: bytes  # DER


def _holders(count: int, offset: int = 0) -> list[BenchHolder]:
    """Distinct holders of four entities, each with a CSR of its own ECDSA P-256 key.

    Certificates differ as real ones do: the key, the e-mail, the person (no name repeats within
    4,896 holders); the entity and common first names repeat.
    """
    holders = []
    for i in range(offset, offset + count):
        organization, siren = _ENTITIES[i % len(_ENTITIES)]
        given = _GIVEN_NAMES[i % len(_GIVEN_NAMES)]
        surname = _SURNAME_PAIRS[i // len(_GIVEN_NAMES) % len(_SURNAME_PAIRS)]
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
        holders.append(BenchHolder(
            subject=HolderSubject(organization=organization, siren=siren, siret=None, given_names=given,
                                  surname=surname, email=f"agent{i}@{siren}.example.fr", title=None),
            csr=csr.public_bytes(serialization.Encoding.DER),
        ))
    return holders


class _Worker:
    """One benchmark process: the issuing CA key opened, the linter built, ready to time."""

    def __init__(self, settings: Settings) -> None:
        from ca.signer import KeySigner
        from ra.instance import Instance

        self.instance = Instance.open(settings)
        with self.instance.factory() as session:
            self.instance.ca.issuer(session)  # open the token, build the linter: not timed
            ref = self.instance.ca.authority(session, ISSUING_SLUG)
        self.signer = KeySigner(self.instance.ca.signing_key(ref))
        self.digest = self.signer.hasher().digest()

    def sign(self, count: int) -> None:
        for _ in range(count):
            self.signer.sign_digest(self.digest)

    def issue(self, holders: list[BenchHolder]) -> None:
        from ra.services.issuance import IssueCommand, issue_certificate

        for holder in holders:
            issue_certificate(self.instance.factory, self.instance.ca, IssueCommand(
                subject=holder.subject, csr=holder.csr, profile="rgs2-entite-double", actor="bench"))


def _bench_process(settings: Settings, warm_up: list[BenchHolder], rounds: list[list[BenchHolder]],
                   barrier: multiprocessing.synchronize.Barrier) -> None:
    """Warm up, then per round: raw signatures between two barriers, issuance between two more."""
    try:
        worker = _Worker(settings)
        worker.sign(len(warm_up))
        worker.issue(warm_up)
        for holders in rounds:
            barrier.wait()
            worker.sign(len(holders))
            barrier.wait()
            barrier.wait()
            worker.issue(holders)
            barrier.wait()
        worker.instance.close()
    except BaseException:
        barrier.abort()  # the parent stops at once instead of waiting for this process
        raise


@dataclass(frozen=True)
class IssuanceFigures:
    certs_per_s: float
    raw_sign_per_s: float

    @property
    def ratio(self) -> float:
        return self.certs_per_s / self.raw_sign_per_s

    def line(self) -> str:
        return (f"issuance certs_per_s={self.certs_per_s:.1f} raw_sign_per_s={self.raw_sign_per_s:.1f} "
                f"ratio={self.ratio:.2f}")


def check_issuance_plan(count: int, workers: int, rounds: int) -> None:
    """Every process must issue at least one certificate per round."""
    if count < workers * rounds:
        raise ValueError(f"at least workers × rounds = {workers * rounds} certificates")


def bench_issuance(count: int, workers: int, database_url: str | None, rounds: int = 3,
                   echo=print) -> IssuanceFigures:  # type: ignore[no-untyped-def]
    """``count`` certificates issued by ``workers`` processes, against as many raw signatures.

    The same processes alternate, after a warm-up, between raw signing with the issuing CA key
    and issuance, ``rounds`` times: both figures see the same machine at the same moments.
    """
    check_issuance_plan(count, workers, rounds)
    with throwaway_instance(database_url) as settings:
        echo(f"preparing {count} holders and their CSRs …")
        holders = _holders(count)
        warm_up = _holders(workers * max(5, count // (10 * workers)), offset=count)
        size = count // rounds
        chunks = [holders[r * size:(r + 1) * size] for r in range(rounds - 1)] + [holders[(rounds - 1) * size:]]
        plans = [[chunk[w::workers] for chunk in chunks] for w in range(workers)]
        ctx = multiprocessing.get_context("spawn")  # children load PKCS#11 afresh
        barrier = ctx.Barrier(workers + 1)
        procs = [ctx.Process(target=_bench_process, args=(settings, warm_up[w::workers], plans[w], barrier))
                 for w in range(workers)]
        echo(f"{workers} processes: warm-up, then {rounds} rounds of raw signing and issuance …")
        for proc in procs:
            proc.start()
        raw_time = issue_time = 0.0
        try:
            for r in range(rounds):
                timed = []
                for _phase in ("raw", "issuance"):
                    barrier.wait(timeout=600)
                    start = time.perf_counter()
                    barrier.wait(timeout=600)
                    timed.append(time.perf_counter() - start)
                raw_time, issue_time = raw_time + timed[0], issue_time + timed[1]
                echo(f"  round {r + 1}: raw {len(chunks[r]) / timed[0]:.1f}/s, "
                     f"issuance {len(chunks[r]) / timed[1]:.1f}/s")
        except threading.BrokenBarrierError:
            raise RuntimeError("a benchmark worker failed (see its traceback above)") from None
        finally:
            for proc in procs:
                proc.join(timeout=60)
                if proc.is_alive():
                    proc.kill()
        if any(proc.exitcode != 0 for proc in procs):
            raise RuntimeError("a benchmark worker failed (see its traceback above)")
        return IssuanceFigures(count / issue_time, count / raw_time)


# --- CRL ---------------------------------------------------------------------------------------

def _fill_revoked(settings: Settings, entries: int, echo) -> None:  # type: ignore[no-untyped-def]
    from ra.authority import load_authority
    from ra.db import utcnow
    from ra.instance import Instance
    from ra.models import Certificate, CertificateState

    instance = Instance.open(settings)
    now = utcnow().replace(microsecond=0)
    with instance.factory() as session:
        authority_id = load_authority(session, ISSUING_SLUG).id
    reasons = [None, 1, 3, 4, 5]  # names openssl's index.txt knows too
    table = Certificate.__table__
    batch = 50_000
    with instance.engine.begin() as conn:
        for start in range(0, entries, batch):
            rows = []
            for i in range(start, min(entries, start + batch)):
                rows.append(dict(
                    authority_id=authority_id, serial=format(secrets.randbits(126) | (1 << 126), "x"),
                    state=CertificateState.ISSUED.value, profile="rgs2-entite-double", subject="CN=bench",
                    email="", public_key_der=b"", not_before=now - timedelta(days=400),
                    not_after=now + timedelta(days=700), reserved_at=now, issued_at=now,
                    revoked_at=now - timedelta(seconds=i * 7 % 31_000_000),
                    revocation_reason=reasons[i % len(reasons)],
                ))
            conn.execute(insert(table), rows)
            echo(f"  {min(entries, start + batch)} / {entries} revoked rows")
    instance.close()


@dataclass(frozen=True)
class CRLFigures:
    entries: int
    guichet_s: float
    openssl_s: float
    guichet_rss_mb: float
    openssl_rss_mb: float

    def line(self) -> str:
        return (f"crl entries={self.entries} guichet_s={self.guichet_s:.2f} openssl_s={self.openssl_s:.2f} "
                f"ratio={self.guichet_s / self.openssl_s:.2f} guichet_rss_mb={self.guichet_rss_mb:.0f} "
                f"openssl_rss_mb={self.openssl_rss_mb:.0f} "
                f"rss_ratio={self.guichet_rss_mb / self.openssl_rss_mb:.2f}")


def bench_crl(entries: int, database_url: str | None, echo=print) -> CRLFigures:  # type: ignore[no-untyped-def]
    from ra.authority import load_authority
    from ra.bench_peer import measure_child, openssl_gencrl
    from ra.db import utcnow
    from ra.instance import Instance
    from ra.services.crl import revoked_entries

    with throwaway_instance(database_url) as settings:
        echo(f"writing {entries} revoked certificates to the database …")
        _fill_revoked(settings, entries, echo)
        echo("guichet crl publish (child process) …")
        ours = measure_child([sys.executable, "-m", "ra.cli", "crl", "publish"],
                             env=child_environment(settings))
        echo("openssl ca -gencrl on the same entries …")
        instance = Instance.open(settings)
        with instance.factory() as session, tempfile.TemporaryDirectory() as work:
            ref = load_authority(session, ISSUING_SLUG)
            key_bits = ref.certificate.public_key().key_size
            peer = openssl_gencrl(revoked_entries(session, ref.id, utcnow()),
                                  key_bits=key_bits, workdir=Path(work))
        instance.close()
        return CRLFigures(entries, ours.seconds, peer.seconds, ours.rss_mb, peer.rss_mb)

