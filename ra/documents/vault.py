"""Supporting documents encrypted at rest, one file per document.

File format (version 1)::

    b"GCHDOC1" | nonce (12 bytes) | AES-256-GCM ciphertext and tag

The key is derived from the instance secret with HKDF-SHA256 (info ``b"guichet documents
v1"``) and lives only in memory. The associated data binds the format magic and the document
id, so a ciphertext copied or moved under another id does not decrypt. The database keeps the
id, the SHA-256 of the plaintext, the size and the media type (``StoredDocument``); ``read``
checks the digest it is given, so a stale or swapped file is detected too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ra.documents import DocumentCorrupted, DocumentNotFound
from ra.documents.sniff import MAX_DOCUMENT_BYTES, sniff

__all__ = ["DocumentVault", "StoredDocument"]

MAGIC = b"GCHDOC1"
NONCE_BYTES = 12
TAG_BYTES = 16
HKDF_INFO = b"guichet documents v1"
MIN_SECRET_BYTES = 32
FILE_SUFFIX = ".gchdoc"

_DOC_ID = re.compile(r"[0-9a-f]{32}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredDocument:
    """What the database records about a stored document (and what the audit event names)."""

    id: str
    sha256: str
    size: int
    media_type: str


class DocumentVault:
    """Encrypted document store in one directory (mode 0700, files 0600)."""

    def __init__(
        self, directory: Path, secret: bytes, *, max_size: int = MAX_DOCUMENT_BYTES
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"The document secret must be at least {MIN_SECRET_BYTES} bytes.")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError("The maximum document size must be a positive number of bytes.")
        self.directory = Path(directory)
        self.max_size = max_size
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return f"DocumentVault({str(self.directory)!r})"

    def store(self, data: bytes, *, declared_name: str | None = None) -> StoredDocument:
        """Check the content (``sniff``), encrypt it under a new id and write it atomically."""
        media_type = sniff(data, declared_name=declared_name, max_size=self.max_size)
        doc_id = uuid.uuid4().hex
        nonce = os.urandom(NONCE_BYTES)
        blob = MAGIC + nonce + self._aead.encrypt(nonce, bytes(data), _associated_data(doc_id))
        _write_atomically(self._path(doc_id), blob)
        return StoredDocument(
            id=doc_id,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            media_type=media_type,
        )

    def read(self, doc_id: str, *, expected_sha256: str) -> bytes:
        """Decrypt a document and check it is the one recorded (``DocumentCorrupted`` if not)."""
        path = self._path(doc_id)
        if not isinstance(expected_sha256, str) or not _SHA256_HEX.fullmatch(
            expected_sha256.lower()
        ):
            raise ValueError("The expected SHA-256 must be 64 hexadecimal characters.")
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise DocumentNotFound(doc_id) from None
        header = len(MAGIC) + NONCE_BYTES
        if len(blob) < header + TAG_BYTES or not blob.startswith(MAGIC):
            raise DocumentCorrupted(doc_id, "bad_header")
        nonce = blob[len(MAGIC) : header]
        try:
            data = self._aead.decrypt(nonce, blob[header:], _associated_data(doc_id))
        except InvalidTag:
            raise DocumentCorrupted(doc_id, "authentication_failed") from None
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), expected_sha256.lower()):
            raise DocumentCorrupted(doc_id, "digest_mismatch")
        return data

    def delete(self, doc_id: str) -> bool:
        """Remove a document; True if it was there. Deleting twice is not an error."""
        try:
            self._path(doc_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, doc_id: str) -> bool:
        return self._path(doc_id).is_file()

    def _path(self, doc_id: str) -> Path:
        """The file of a document id; anything but 32 lowercase hex digits is refused."""
        if not isinstance(doc_id, str) or not _DOC_ID.fullmatch(doc_id):
            raise ValueError("A document id is 32 lowercase hexadecimal characters.")
        return self.directory / f"{doc_id}{FILE_SUFFIX}"


def _associated_data(doc_id: str) -> bytes:
    return MAGIC + doc_id.encode("ascii")


def _write_atomically(path: Path, blob: bytes) -> None:
    """Temp file (0600) in the same directory, fsync, rename over, fsync the directory."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=FILE_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(blob)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
