"""Uploaded files: encrypted in the vault, a ``Document`` row per file, every read audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath, PureWindowsPath

from sqlalchemy import event
from sqlalchemy.orm import Session

from ra import audit
from ra.documents import DocumentNotFound
from ra.documents.vault import DocumentVault
from ra.models import Document, StaffAccount

_UNSAFE = re.compile(r"[^\w .()+,'-]", re.UNICODE)


def safe_filename(name: str | None) -> str:
    """The base name of a declared file name, without path or control characters (≤ 200)."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    if not cleaned:
        return "document"
    if len(cleaned) > 200:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: 199 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else cleaned[:200]
    return cleaned


_PENDING = "guichet_uncommitted_files"


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _delete_pending(session: Session) -> None:
    for vault, vault_id in session.info.pop(_PENDING, []):
        vault.delete(vault_id)


def _track_until_commit(session: Session, vault: DocumentVault, vault_id: str) -> None:
    """If the transaction that records this file is rolled back, the file goes too."""
    if not event.contains(session, "after_commit", _forget_pending):
        event.listen(session, "after_commit", _forget_pending)
        event.listen(session, "after_rollback", _delete_pending)
    session.info.setdefault(_PENDING, []).append((vault, vault_id))


@contextmanager
def stored_upload(
    session: Session, vault: DocumentVault, actor: StaffAccount, data: bytes, filename: str | None,
) -> Iterator[Document]:
    """Check and encrypt a file, then record it; the file is deleted again if the block fails
    or if the transaction is rolled back instead of committed.

    ``DocumentRejected`` (an ``InvalidInput``) is raised before anything is written.
    """
    name = safe_filename(filename)
    stored = vault.store(data, declared_name=name)
    _track_until_commit(session, vault, stored.id)
    try:
        document = Document(
            vault_id=stored.id, sha256=stored.sha256, size=stored.size,
            media_type=stored.media_type, original_name=name, uploaded_by_id=actor.id,
        )
        session.add(document)
        session.flush()
        yield document
    except BaseException:
        vault.delete(stored.id)
        raise


def read_document(
    session: Session, vault: DocumentVault, actor: StaffAccount, document: Document,
    *, details: dict[str, object],
) -> bytes:
    """Decrypt a stored file and record the read (action ``document.read``) in the same transaction.

    The caller has checked the actor's right to see the object the file belongs to.
    """
    if document.purged_at is not None:
        raise DocumentNotFound(document.vault_id)
    data = vault.read(document.vault_id, expected_sha256=document.sha256)
    audit.record(session, actor=actor.email, action="document.read", object_type="document",
                 object_id=document.id, details={**details, "sha256": document.sha256})
    return data
