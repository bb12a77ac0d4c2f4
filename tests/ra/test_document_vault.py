"""Identity documents are encrypted at rest, bound to their id, and checked when read."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ra.documents import (
    DocumentCorrupted,
    DocumentError,
    DocumentNotFound,
    DocumentRejected,
    retention_end,
)
from ra.documents.sniff import PDF, PNG
from ra.documents.vault import MAGIC, NONCE_BYTES, DocumentVault
from ra.errors import InvalidInput, NotFound
from tests.ra.test_sniff import make_jpeg, make_pdf, make_png


@pytest.fixture
def secret() -> bytes:
    return os.urandom(32)


@pytest.fixture
def vault(tmp_path: Path, secret: bytes) -> DocumentVault:
    return DocumentVault(tmp_path / "documents", secret)


def stored_file(vault: DocumentVault, doc_id: str) -> Path:
    (path,) = vault.directory.glob(f"{doc_id}*")
    return path


# --- storing and reading ----------------------------------------------------------------------


def test_store_then_read_round_trip(vault):
    pdf = make_pdf()
    doc = vault.store(pdf, declared_name="cni.pdf")
    assert len(doc.id) == 32 and int(doc.id, 16) >= 0
    assert doc.sha256 == hashlib.sha256(pdf).hexdigest()
    assert (doc.size, doc.media_type) == (len(pdf), PDF)
    assert vault.read(doc.id, expected_sha256=doc.sha256) == pdf


def test_each_document_gets_a_new_id(vault):
    png = make_png()
    assert vault.store(png).id != vault.store(png).id


def test_store_checks_the_content_first(vault):
    with pytest.raises(DocumentRejected) as caught:
        vault.store(make_jpeg() + b"appended", declared_name="cni.jpg")
    assert caught.value.code == "polyglot"
    assert list(vault.directory.iterdir()) == []


def test_store_applies_the_vault_size_limit(tmp_path, secret):
    small = DocumentVault(tmp_path, secret, max_size=100)
    with pytest.raises(DocumentRejected) as caught:
        small.store(make_png())
    assert caught.value.code == "too_large"


def test_same_secret_reads_after_restart(tmp_path, secret):
    png = make_png()
    doc = DocumentVault(tmp_path, secret).store(png)
    assert DocumentVault(tmp_path, secret).read(doc.id, expected_sha256=doc.sha256) == png


def test_other_secret_cannot_read(tmp_path, secret):
    doc = DocumentVault(tmp_path, secret).store(make_png())
    with pytest.raises(DocumentCorrupted) as caught:
        DocumentVault(tmp_path, os.urandom(32)).read(doc.id, expected_sha256=doc.sha256)
    assert caught.value.reason == "authentication_failed"


def test_short_secret_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 32 bytes"):
        DocumentVault(tmp_path, b"too short")


# --- the file on disk -------------------------------------------------------------------------


def test_file_and_directory_are_private(tmp_path, secret):
    directory = tmp_path / "documents"
    directory.mkdir(mode=0o755)
    vault = DocumentVault(directory, secret)
    doc = vault.store(make_png())
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(stored_file(vault, doc.id).stat().st_mode) == 0o600


def test_no_temporary_file_left_behind(vault):
    doc = vault.store(make_pdf())
    assert [p.name for p in vault.directory.iterdir()] == [stored_file(vault, doc.id).name]


def test_file_starts_with_magic_then_nonce(vault):
    doc = vault.store(make_pdf())
    blob = stored_file(vault, doc.id).read_bytes()
    assert blob.startswith(MAGIC)
    assert len(blob) == len(MAGIC) + NONCE_BYTES + doc.size + 16  # GCM tag


def test_fresh_nonce_per_file(vault):
    pdf = make_pdf()
    blobs = [stored_file(vault, vault.store(pdf).id).read_bytes() for _ in range(2)]
    nonces = {blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES] for blob in blobs}
    assert len(nonces) == 2


def test_key_not_in_file(vault, secret):
    pdf = make_pdf("Jeanne DUPONT, nee le 01/02/1970", compress=False)
    blob = stored_file(vault, vault.store(pdf).id).read_bytes()
    key = HKDF(hashes.SHA256(), 32, salt=None, info=b"guichet documents v1").derive(secret)
    assert key not in blob and secret not in blob
    assert b"DUPONT" not in blob and pdf[:64] not in blob and pdf[-64:] not in blob
    assert not any(key in p.read_bytes() for p in vault.directory.parent.rglob("*") if p.is_file())


# --- tampering --------------------------------------------------------------------------------


def test_ciphertext_moved_to_other_id_fails(vault):
    first, second = vault.store(make_pdf()), vault.store(make_png())
    stored_file(vault, second.id).write_bytes(stored_file(vault, first.id).read_bytes())
    with pytest.raises(DocumentCorrupted) as caught:
        vault.read(second.id, expected_sha256=first.sha256)
    assert (caught.value.reason, caught.value.doc_id) == ("authentication_failed", second.id)


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_tampered_ciphertext_detected(vault, where):
    doc = vault.store(make_pdf())
    path = stored_file(vault, doc.id)
    blob = bytearray(path.read_bytes())
    offset = {"nonce": len(MAGIC), "ciphertext": len(MAGIC) + NONCE_BYTES + 10, "tag": -1}[where]
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(DocumentCorrupted) as caught:
        vault.read(doc.id, expected_sha256=doc.sha256)
    assert caught.value.reason == "authentication_failed"


def test_unknown_file_format_detected(vault):
    doc = vault.store(make_pdf())
    path = stored_file(vault, doc.id)
    path.write_bytes(b"GCHDOC2" + path.read_bytes()[len(MAGIC) :])
    with pytest.raises(DocumentCorrupted) as caught:
        vault.read(doc.id, expected_sha256=doc.sha256)
    assert caught.value.reason == "bad_header"


def test_unexpected_digest_detected(vault):
    doc = vault.store(make_pdf())
    with pytest.raises(DocumentCorrupted) as caught:
        vault.read(doc.id, expected_sha256=hashlib.sha256(b"another document").hexdigest())
    assert caught.value.reason == "digest_mismatch"


def test_malformed_expected_digest_refused(vault):
    doc = vault.store(make_pdf())
    with pytest.raises(ValueError):
        vault.read(doc.id, expected_sha256="not-a-digest")


# --- ids, deletion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc_id",
    [
        "../../etc/passwd",
        "../" + "a" * 29,
        "a" * 31 + "/",
        "A" * 32,
        "a" * 31,
        "a" * 33,
        "a" * 31 + "\0",
        "g" * 32,
    ],
)
def test_path_traversal_id_refused(vault, doc_id):
    for action in (
        lambda: vault.read(doc_id, expected_sha256="0" * 64),
        lambda: vault.exists(doc_id),
        lambda: vault.delete(doc_id),
    ):
        with pytest.raises(ValueError, match="32 lowercase hexadecimal"):
            action()


def test_read_missing_document_raises_not_found(vault):
    with pytest.raises(DocumentNotFound) as caught:
        vault.read("0" * 32, expected_sha256="0" * 64)
    assert caught.value.doc_id == "0" * 32


def test_exists(vault):
    doc = vault.store(make_pdf())
    assert vault.exists(doc.id) and not vault.exists("0" * 32)


def test_delete_is_idempotent(vault):
    doc = vault.store(make_png())
    assert vault.delete(doc.id) is True
    assert vault.delete(doc.id) is False
    assert not vault.exists(doc.id)
    with pytest.raises(DocumentNotFound):
        vault.read(doc.id, expected_sha256=doc.sha256)


def test_stored_media_type_is_the_sniffed_one(vault):
    assert vault.store(make_png(), declared_name="scan.png").media_type == PNG


# --- errors -----------------------------------------------------------------------------------


def test_document_errors_fit_the_ra_error_tree():
    rejected = DocumentRejected("empty", "Le fichier est vide.")
    assert isinstance(rejected, InvalidInput) and rejected.code == "empty"
    assert isinstance(DocumentNotFound("0" * 32), NotFound)
    assert DocumentNotFound("0" * 32).http_status == 404
    assert issubclass(DocumentCorrupted, DocumentError)


# --- retention --------------------------------------------------------------------------------


def test_retention_ends_seven_years_after_last_certificate_expiry():
    assert retention_end(date(2027, 6, 15)) == date(2034, 6, 15)


def test_retention_from_feb_29_ends_on_feb_28():
    assert retention_end(date(2028, 2, 29)) == date(2035, 2, 28)


def test_retention_from_feb_29_to_a_leap_year_keeps_feb_29():
    assert retention_end(date(2028, 2, 29), years=4) == date(2032, 2, 29)


def test_negative_retention_refused():
    with pytest.raises(ValueError):
        retention_end(date(2028, 1, 1), years=-1)
