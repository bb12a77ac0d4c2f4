"""The streaming CRL encoder: one test per rule, read back by cryptography, openssl and pkilint."""

from __future__ import annotations

import hashlib
import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.lint_cli import crl_errors
from ca.crl import CRLParameters, Reason, build_crl, write_crl
from ca.errors import CRLError
from ca.signer import KeySigner

UTC = dt.timezone.utc
THIS_UPDATE = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
NEXT_UPDATE = THIS_UPDATE + dt.timedelta(days=1)
REVOKED_AT = dt.datetime(2025, 5, 30, 8, 15, 42, tzinfo=UTC)

OPENSSL_REASON_TEXT = {
    Reason.key_compromise: "Key Compromise",
    Reason.ca_compromise: "CA Compromise",
    Reason.affiliation_changed: "Affiliation Changed",
    Reason.superseded: "Superseded",
    Reason.cessation_of_operation: "Cessation Of Operation",
    Reason.certificate_hold: "Certificate Hold",
    Reason.privilege_withdrawn: "Privilege Withdrawn",
    Reason.aa_compromise: "AA Compromise",
}


@dataclass(frozen=True)
class SoftwareCA:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    pem_path: Path

    @property
    def signer(self) -> KeySigner:
        return KeySigner(self.key)


def _make_ca(kind: str, directory: Path) -> SoftwareCA:
    if kind == "rsa3072":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Guichet Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"AC RGS** Entités ({kind})"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(THIS_UPDATE - dt.timedelta(days=365))
        .not_valid_after(THIS_UPDATE + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    pem_path = directory / f"{kind}.pem"
    pem_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return SoftwareCA(key, certificate, pem_path)


@pytest.fixture(scope="module", params=["rsa3072", "p256"])
def ca(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SoftwareCA:
    return _make_ca(request.param, tmp_path_factory.mktemp("crl-ca"))


@pytest.fixture(scope="module")
def ec_ca(tmp_path_factory: pytest.TempPathFactory) -> SoftwareCA:
    """One CA for the rules that do not depend on the key type."""
    return _make_ca("p256", tmp_path_factory.mktemp("crl-ec-ca"))


def params_for(ca: SoftwareCA, crl_number: int = 7) -> CRLParameters:
    return CRLParameters.for_issuer(ca.certificate, crl_number, THIS_UPDATE, NEXT_UPDATE)


def varied_entries() -> list[tuple[int, dt.datetime, int | None, dt.datetime | None]]:
    """Every reason code, with and without invalidity date, plus the edge serials and dates."""
    entries: list[tuple[int, dt.datetime, int | None, dt.datetime | None]] = [
        (1, REVOKED_AT, None, None),
        (2, REVOKED_AT, 0, None),
        (2**159 - 1, REVOKED_AT, None, None),  # 20 octets
        (0x80, dt.datetime(2051, 2, 3, 4, 5, 6, tzinfo=UTC), None, None),
    ]
    for n, reason in enumerate(OPENSSL_REASON_TEXT, start=100):
        entries.append((n, REVOKED_AT, reason, None))
        entries.append((n + 1000, REVOKED_AT, reason, REVOKED_AT - dt.timedelta(days=2)))
    return entries


def build(ca: SoftwareCA, entries, crl_number: int = 7) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(build_crl(params_for(ca, crl_number), entries, ca.signer))


def openssl_text(der: bytes, tmp_path: Path) -> str:
    path = tmp_path / "crl.der"
    path.write_bytes(der)
    argv = ["openssl", "crl", "-inform", "DER", "-in", str(path), "-text", "-noout"]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def openssl_entry_blocks(text: str) -> dict[int, str]:
    """serial → the text openssl prints for that revoked entry."""
    revoked = text.split("Revoked Certificates:", 1)[1].split("Signature Algorithm:", 1)[0]
    blocks = {}
    for block in revoked.split("Serial Number:")[1:]:
        serial_hex, _, rest = block.strip().partition("\n")
        blocks[int(serial_hex, 16)] = rest
    return blocks


def lint_errors(der: bytes, tmp_path: Path) -> list[tuple[str, str]]:
    """pkilint findings of severity ERROR or FATAL (``lint_crl -t CRL -p PKIX``)."""
    path = tmp_path / "lint.der"
    path.write_bytes(der)
    return crl_errors(path)


def tlv_tags(content: bytes) -> list[int]:
    """The tags of the DER elements laid end to end in ``content``."""
    tags, i = [], 0
    while i < len(content):
        tags.append(content[i])
        first = content[i + 1]
        if first < 0x80:
            header, length = 2, first
        else:
            header = 2 + (first & 0x7F)
            length = int.from_bytes(content[i + 2 : i + header], "big")
        i += header + length
    return tags


# --- what a CRL contains ----------------------------------------------------------------------

def test_signature_is_valid_against_the_ca_public_key(ca: SoftwareCA) -> None:
    crl = build(ca, varied_entries())
    assert crl.is_signature_valid(ca.key.public_key())
    assert crl.signature_algorithm_oid == ca.certificate.signature_algorithm_oid


def test_crl_is_version_2(ca: SoftwareCA) -> None:
    der = build_crl(params_for(ca), varied_entries(), ca.signer)
    assert asn1_crl.CertificateList.load(der)["tbs_cert_list"]["version"].native == "v2"


def test_issuer_aki_crl_number_and_updates_read_back(ca: SoftwareCA) -> None:
    crl = build(ca, varied_entries(), crl_number=2**159 - 1)
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert crl.issuer == ca.certificate.subject
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value == (
        x509.AuthorityKeyIdentifier(ski.digest, None, None)
    )
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2**159 - 1
    assert crl.last_update_utc == THIS_UPDATE
    assert crl.next_update_utc == NEXT_UPDATE
    assert not any(extension.critical for extension in crl.extensions)


def test_issuer_name_is_the_ca_subject_byte_for_byte(ec_ca: SoftwareCA) -> None:
    der = build_crl(params_for(ec_ca), [], ec_ca.signer)
    issuer = asn1_crl.CertificateList.load(der)["tbs_cert_list"]["issuer"].dump()
    assert issuer == ec_ca.certificate.subject.public_bytes()


def test_reason_codes_and_invalidity_dates_read_back_by_cryptography(ec_ca: SoftwareCA) -> None:
    crl = build(ec_ca, varied_entries())
    for serial, revoked_at, reason, invalid_at in varied_entries():
        entry = crl.get_revoked_certificate_by_serial_number(serial)
        assert entry is not None and entry.revocation_date_utc == revoked_at
        extensions = {e.oid: e for e in entry.extensions}
        if reason:
            crl_reason = extensions[x509.CRLReason.oid]
            assert crl_reason.value.reason == x509.ReasonFlags[Reason(reason).name]
            assert not crl_reason.critical
        else:
            assert x509.CRLReason.oid not in extensions
        if invalid_at:
            assert extensions[x509.InvalidityDate.oid].value.invalidity_date_utc == invalid_at
        else:
            assert x509.InvalidityDate.oid not in extensions


def test_reason_codes_and_invalidity_dates_read_back_by_openssl(
    ec_ca: SoftwareCA, tmp_path: Path
) -> None:
    der = build_crl(params_for(ec_ca), varied_entries(), ec_ca.signer)
    blocks = openssl_entry_blocks(openssl_text(der, tmp_path))
    assert set(blocks) == {entry[0] for entry in varied_entries()}
    for serial, revoked_at, reason, invalid_at in varied_entries():
        assert f"Revocation Date: {revoked_at:%b %e %H:%M:%S %Y} GMT" in blocks[serial]
        if reason:
            assert OPENSSL_REASON_TEXT[reason] in blocks[serial]
        else:
            assert "CRL Reason Code" not in blocks[serial]
        if invalid_at:
            assert "Invalidity Date:" in blocks[serial]
            assert "May 28 08:15:42 2025 GMT" in blocks[serial]


def test_no_reason_and_unspecified_give_no_reason_extension(ec_ca: SoftwareCA) -> None:
    crl = build(ec_ca, [(1, REVOKED_AT, None, None), (2, REVOKED_AT, Reason.unspecified, None)])
    assert [list(entry.extensions) for entry in crl] == [[], []]


def test_openssl_verifies_the_crl_with_the_ca_certificate(ca: SoftwareCA, tmp_path: Path) -> None:
    path = tmp_path / "crl.der"
    path.write_bytes(build_crl(params_for(ca), varied_entries(), ca.signer))
    argv = ["openssl", "crl", "-inform", "DER", "-in", str(path), "-CAfile", str(ca.pem_path),
            "-noout", "-verify"]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True)
    assert completed.returncode == 0 and "verify OK" in completed.stderr, completed.stderr


def test_pkilint_finds_no_error_or_fatal(ca: SoftwareCA, tmp_path: Path) -> None:
    assert lint_errors(build_crl(params_for(ca), varied_entries(), ca.signer), tmp_path) == []


def test_empty_crl_has_no_revoked_certificates_field(ec_ca: SoftwareCA, tmp_path: Path) -> None:
    der = build_crl(params_for(ec_ca), iter(()), ec_ca.signer)
    tbs = asn1_crl.CertificateList.load(der)["tbs_cert_list"]
    # version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions: no SEQUENCE OF.
    assert tlv_tags(tbs.contents) == [0x02, 0x30, 0x30, 0x17, 0x17, 0xA0]
    assert len(x509.load_der_x509_crl(der)) == 0
    assert x509.load_der_x509_crl(der).is_signature_valid(ec_ca.key.public_key())
    assert lint_errors(der, tmp_path) == []


def test_write_crl_writes_what_build_crl_returns(tmp_path: Path) -> None:
    rsa_ca = _make_ca("rsa3072", tmp_path)  # PKCS#1 v1.5 signatures are deterministic
    path = tmp_path / "out.der"
    with path.open("wb") as out:
        summary = write_crl(params_for(rsa_ca), varied_entries(), rsa_ca.signer, out)
    assert path.read_bytes() == build_crl(params_for(rsa_ca), varied_entries(), rsa_ca.signer)
    assert (summary.entry_count, summary.size) == (len(varied_entries()), path.stat().st_size)
    assert summary.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- times ------------------------------------------------------------------------------------

def _time_choices(der: bytes) -> tuple[str, str, str]:
    tbs = asn1_crl.CertificateList.load(der)["tbs_cert_list"]
    first_entry = tbs["revoked_certificates"][0]
    return tbs["this_update"].name, tbs["next_update"].name, first_entry["revocation_date"].name


def test_dates_from_1950_to_2049_use_utctime(ec_ca: SoftwareCA) -> None:
    late = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    early = dt.datetime(1950, 1, 1, tzinfo=UTC)
    params = CRLParameters.for_issuer(ec_ca.certificate, 1, early, late)
    der = build_crl(params, [(1, late, None, None)], ec_ca.signer)
    assert _time_choices(der) == ("utc_time", "utc_time", "utc_time")


def test_dates_after_2049_use_generalized_time_and_parse_back(
    ec_ca: SoftwareCA, tmp_path: Path
) -> None:
    this_update = dt.datetime(2050, 1, 1, tzinfo=UTC)
    next_update = dt.datetime(2050, 1, 2, 0, 0, 1, tzinfo=UTC)
    revoked_at = dt.datetime(2075, 7, 14, 10, 11, 12, tzinfo=UTC)
    params = CRLParameters.for_issuer(ec_ca.certificate, 1, this_update, next_update)
    der = build_crl(params, [(5, revoked_at, Reason.superseded, None)], ec_ca.signer)
    assert _time_choices(der) == ("general_time", "general_time", "general_time")
    crl = x509.load_der_x509_crl(der)
    assert (crl.last_update_utc, crl.next_update_utc) == (this_update, next_update)
    assert crl.get_revoked_certificate_by_serial_number(5).revocation_date_utc == revoked_at
    assert "Jul 14 10:11:12 2075 GMT" in openssl_text(der, tmp_path)
    assert lint_errors(der, tmp_path) == []


def test_dates_before_1950_use_generalized_time(ec_ca: SoftwareCA) -> None:
    revoked_at = dt.datetime(1949, 12, 31, 23, 59, 59, tzinfo=UTC)
    der = build_crl(params_for(ec_ca), [(5, revoked_at, None, None)], ec_ca.signer)
    assert _time_choices(der)[2] == "general_time"
    crl = x509.load_der_x509_crl(der)
    assert crl.get_revoked_certificate_by_serial_number(5).revocation_date_utc == revoked_at


def test_invalidity_date_is_always_generalized_time(ec_ca: SoftwareCA) -> None:
    der = build_crl(params_for(ec_ca), [(5, REVOKED_AT, 1, REVOKED_AT)], ec_ca.signer)
    entry = asn1_crl.CertificateList.load(der)["tbs_cert_list"]["revoked_certificates"][0]
    invalidity = entry["crl_entry_extensions"][1]
    assert invalidity["extn_id"].native == "invalidity_date"
    assert invalidity["extn_value"].parsed.contents == b"20250530081542Z"


def test_times_are_converted_to_utc_and_cut_to_the_second(ec_ca: SoftwareCA) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    this_update = THIS_UPDATE.astimezone(paris).replace(microsecond=999_999)
    params = CRLParameters.for_issuer(ec_ca.certificate, 1, this_update, NEXT_UPDATE)
    revoked_at = REVOKED_AT.astimezone(paris).replace(microsecond=500_000)
    crl = x509.load_der_x509_crl(build_crl(params, [(9, revoked_at, 1, revoked_at)], ec_ca.signer))
    assert crl.last_update_utc == THIS_UPDATE
    entry = crl.get_revoked_certificate_by_serial_number(9)
    assert entry.revocation_date_utc == REVOKED_AT
    invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == REVOKED_AT


def test_naive_revocation_date_refused(ec_ca: SoftwareCA) -> None:
    naive = REVOKED_AT.replace(tzinfo=None)
    with pytest.raises(CRLError, match="entry 2: revocation date must be a timezone-aware"):
        build_crl(params_for(ec_ca), [(1, REVOKED_AT, None, None), (2, naive, None, None)],
                  ec_ca.signer)  # fmt: skip


def test_naive_invalidity_date_refused(ec_ca: SoftwareCA) -> None:
    naive = REVOKED_AT.replace(tzinfo=None)
    with pytest.raises(CRLError, match="entry 1: invalidity date must be a timezone-aware"):
        build_crl(params_for(ec_ca), [(1, REVOKED_AT, 1, naive)], ec_ca.signer)


@pytest.mark.parametrize("field", ["this_update", "next_update"])
def test_naive_this_or_next_update_refused(ec_ca: SoftwareCA, field: str) -> None:
    times = {"this_update": THIS_UPDATE, "next_update": NEXT_UPDATE}
    times[field] = times[field].replace(tzinfo=None)
    with pytest.raises(CRLError, match=f"{field} must be a timezone-aware datetime"):
        CRLParameters.for_issuer(ec_ca.certificate, 1, **times)


@pytest.mark.parametrize("gap", [dt.timedelta(0), dt.timedelta(microseconds=900_000),
                                 dt.timedelta(hours=-1)])  # fmt: skip
def test_next_update_not_after_this_update_refused(ec_ca: SoftwareCA, gap: dt.timedelta) -> None:
    with pytest.raises(CRLError, match="next_update must be at least one second after"):
        CRLParameters.for_issuer(ec_ca.certificate, 1, THIS_UPDATE, THIS_UPDATE + gap)


# --- serials, reasons, numbers ----------------------------------------------------------------

def test_serial_of_exactly_20_octets_accepted(ec_ca: SoftwareCA) -> None:
    crl = build(ec_ca, [(2**159 - 1, REVOKED_AT, None, None), (2**152, REVOKED_AT, None, None)])
    assert sorted(entry.serial_number for entry in crl) == [2**152, 2**159 - 1]


@pytest.mark.parametrize("serial", [2**159, 2**160 - 1, 2**200])
def test_serial_longer_than_20_octets_refused(ec_ca: SoftwareCA, serial: int) -> None:
    with pytest.raises(CRLError, match="entry 1: serial number is longer than 20 octets"):
        build_crl(params_for(ec_ca), [(serial, REVOKED_AT, None, None)], ec_ca.signer)


@pytest.mark.parametrize("serial", [0, -1, -(2**64)])
def test_zero_or_negative_serial_refused(ec_ca: SoftwareCA, serial: int) -> None:
    with pytest.raises(CRLError, match=f"entry 1: serial number {serial} is not positive"):
        build_crl(params_for(ec_ca), [(serial, REVOKED_AT, None, None)], ec_ca.signer)


@pytest.mark.parametrize("reason", [7, 11, -1, "keyCompromise"])
def test_unknown_reason_code_refused(ec_ca: SoftwareCA, reason: object) -> None:
    with pytest.raises(CRLError, match="entry 1: unknown reason code"):
        build_crl(params_for(ec_ca), [(1, REVOKED_AT, reason, None)], ec_ca.signer)
    with pytest.raises(CRLError, match="entry 1: unknown reason code"):
        build_crl(params_for(ec_ca), [(1, REVOKED_AT, reason, REVOKED_AT)], ec_ca.signer)


def test_remove_from_crl_refused_in_a_full_crl(ec_ca: SoftwareCA) -> None:
    with pytest.raises(CRLError, match="removeFromCRL belongs in delta CRLs only"):
        build_crl(params_for(ec_ca), [(1, REVOKED_AT, Reason.remove_from_crl, None)], ec_ca.signer)


@pytest.mark.parametrize(
    "entry", [(1, REVOKED_AT, None), ("01", REVOKED_AT, None, None), (1.0, REVOKED_AT, None, None),
              None]  # fmt: skip
)
def test_malformed_entry_refused(ec_ca: SoftwareCA, entry: object) -> None:
    with pytest.raises(CRLError, match=r"entry 2 is not a \(serial, revocation date"):
        build_crl(params_for(ec_ca), [(1, REVOKED_AT, None, None), entry], ec_ca.signer)


def test_revocation_date_must_be_a_datetime(ec_ca: SoftwareCA) -> None:
    with pytest.raises(CRLError, match="entry 1: revocation date must be a datetime, not str"):
        build_crl(params_for(ec_ca), [(1, "2025-05-30", None, None)], ec_ca.signer)


@pytest.mark.parametrize("crl_number", [-1, 2**159])
def test_crl_number_out_of_range_refused(ec_ca: SoftwareCA, crl_number: int) -> None:
    with pytest.raises(CRLError, match="crl_number must be at least 0 and fit in 20 octets"):
        params_for(ec_ca, crl_number)


def test_crl_number_zero_accepted(ec_ca: SoftwareCA) -> None:
    crl = build(ec_ca, [], crl_number=0)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 0


@pytest.mark.parametrize("issuer", [b"", b"\x30\x00", b"\x30\x03\x02\x01\x01", "CN=AC"])
def test_issuer_name_must_be_a_non_empty_der_name(issuer: object) -> None:
    with pytest.raises(CRLError, match="issuer_name"):
        CRLParameters(issuer, b"\x01" * 20, 1, THIS_UPDATE, NEXT_UPDATE)  # type: ignore[arg-type]


def test_authority_key_id_must_not_be_empty(ec_ca: SoftwareCA) -> None:
    issuer = ec_ca.certificate.subject.public_bytes()
    with pytest.raises(CRLError, match="authority_key_id must be non-empty bytes"):
        CRLParameters(issuer, b"", 1, THIS_UPDATE, NEXT_UPDATE)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("keyCompromise", Reason.key_compromise), ("key_compromise", Reason.key_compromise),
     ("cACompromise", Reason.ca_compromise), ("CACompromise", Reason.ca_compromise),
     ("aACompromise", Reason.aa_compromise), ("removeFromCRL", Reason.remove_from_crl),
     ("cessation_of_operation", Reason.cessation_of_operation)],  # fmt: skip
)
def test_reason_from_name_takes_rfc_and_python_spellings(name: str, reason: Reason) -> None:
    assert Reason.from_name(name) is reason


def test_reason_from_unknown_name_refused() -> None:
    with pytest.raises(ValueError, match="unknown CRL reason name 'lostToken'"):
        Reason.from_name("lostToken")


# --- streaming --------------------------------------------------------------------------------

def test_100000_entries_round_trip_with_every_serial_found(ec_ca: SoftwareCA) -> None:
    count = 100_000
    base = 2**126  # 16-octet serials, like 128-bit random ones
    reasons = [None, 1, 3, 4, 5]
    entries = (
        (base + 7919 * n, REVOKED_AT + dt.timedelta(seconds=n % 5000), reasons[n % 5],
         REVOKED_AT if n % 50 == 1 else None)
        for n in range(count)
    )  # fmt: skip
    crl = x509.load_der_x509_crl(build_crl(params_for(ec_ca), entries, ec_ca.signer))
    assert crl.is_signature_valid(ec_ca.key.public_key())
    assert len(crl) == count
    assert {entry.serial_number for entry in crl} == {base + 7919 * n for n in range(count)}


class TrackedSerial(int):
    """An int that counts its live instances, to see whether entries are kept."""

    live = 0

    def __new__(cls, value: int) -> TrackedSerial:
        TrackedSerial.live += 1
        return super().__new__(cls, value)

    def __del__(self) -> None:
        TrackedSerial.live -= 1


class OnceIterable:
    """A revoked-rows source that can be iterated only once, and checks it is not hoarded."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.iterations = 0
        self.most_alive = 0

    def __iter__(self):
        self.iterations += 1
        assert self.iterations == 1, "the entries were iterated twice"
        for n in range(1, self.count + 1):
            self.most_alive = max(self.most_alive, TrackedSerial.live)
            assert TrackedSerial.live <= 3, "earlier entries are still held"
            yield TrackedSerial(n), REVOKED_AT, None, None


def test_generator_input_is_consumed_once_and_never_materialised(ec_ca: SoftwareCA) -> None:
    rows = OnceIterable(5_000)
    crl = build(ec_ca, rows)
    assert rows.iterations == 1
    assert 1 <= rows.most_alive <= 3
    assert len(crl) == 5_000
