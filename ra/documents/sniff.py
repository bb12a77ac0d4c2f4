"""What an uploaded file is, from its content alone: a plain PDF, JPEG or PNG, or refused.

The content decides; the declared name's extension is only checked for consistency. A file
that is valid as one type but also readable as another (a polyglot) is refused: an image with
``%PDF-`` or HTML in its first 1024 bytes, a PDF carrying HTML ``<script`` or preceded by other
bytes, an image with data after its last chunk/marker, a ZIP local header anywhere.
"""

from __future__ import annotations

import re
import struct

from ra.documents import DocumentRejected

__all__ = ["EXTENSIONS", "JPEG", "MAX_DOCUMENT_BYTES", "PDF", "PNG", "sniff"]

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
HEAD_WINDOW = 1024
"""PDF readers accept ``%PDF-`` this far into a file and look for ``%%EOF`` this near its end."""

EXTENSIONS = {".pdf": PDF, ".jpg": JPEG, ".jpeg": JPEG, ".jpe": JPEG, ".jfif": JPEG, ".png": PNG}
_SHORT_NAMES = {PDF: "PDF", JPEG: "JPEG", PNG: "PNG"}

MESSAGES = {
    "empty": "Le fichier est vide.",
    "unknown_type": "Type de fichier non accepté : seuls PDF, JPEG et PNG le sont.",
    "polyglot": "Fichier ambigu (polyglotte) refusé.",
    "malformed": "Le fichier est incomplet ou endommagé.",
}

_PDF_MAGIC = b"%PDF-"
_PDF_HEADER = re.compile(rb"%PDF-[12]\.[0-9]")
_PDF_EOF = b"%%EOF"
_PDF_WHITESPACE = b"\x00\t\n\x0c\r "
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
# Compression methods ZIP readers implement (stored, shrunk … deflate, deflate64, bzip2, lzma,
# zstd, xz, jpeg, wavpack, ppmd, AE-x encryption). A reader refuses any other method, so a
# header with another one is random data, not a hidden archive.
_ZIP_METHODS = frozenset({0, 1, 2, 3, 4, 5, 6, 8, 9, 12, 14, 93, 95, 96, 97, 98, 99})
_HTML = re.compile(rb"<(?:script|html|!doctype\s+html)", re.IGNORECASE)


def sniff(
    data: bytes, *, declared_name: str | None = None, max_size: int = MAX_DOCUMENT_BYTES
) -> str:
    """Return the media type of ``data`` or raise ``DocumentRejected`` saying why not."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("The document content must be bytes.")
    if not data:
        raise _rejected("empty")
    if len(data) > max_size:
        raise DocumentRejected("too_large", f"Le fichier dépasse {_size_fr(max_size)}.")
    media_type = _media_type(data)
    if media_type is None:
        if _PDF_MAGIC in data[:HEAD_WINDOW]:  # something before %PDF-: a PDF hiding in another
            raise _rejected("polyglot")
        raise _rejected("unknown_type")
    if _has_zip_local_header(data):
        raise _rejected("polyglot")
    if media_type == PDF:
        _check_pdf(data)
    elif media_type == PNG:
        _check_image_head(data)
        _check_png(data)
    else:
        _check_image_head(data)
        _check_jpeg(data)
    _check_extension(media_type, declared_name)
    return media_type


def _media_type(data: bytes) -> str | None:
    if data.startswith(_PDF_MAGIC):
        return PDF
    if data.startswith(_PNG_SIGNATURE):
        return PNG
    if data.startswith(_JPEG_SOI):
        return JPEG
    return None


def _has_zip_local_header(data: bytes) -> bool:
    """A ZIP local file header anywhere: the signature followed by a real compression method.

    The bare 4-byte signature turns up by chance in about one compressed file in 500 at 8 MB;
    requiring a method readers accept makes that chance negligible, not the check weaker.
    """
    start = data.find(_ZIP_LOCAL_HEADER)
    while start >= 0:
        method = data[start + 8 : start + 10]
        if len(method) < 2 or int.from_bytes(method, "little") in _ZIP_METHODS:
            return True
        start = data.find(_ZIP_LOCAL_HEADER, start + 1)
    return False


def _check_pdf(data: bytes) -> None:
    """Header with a version, no HTML anywhere, ``%%EOF`` at the end followed only by blanks."""
    if not _PDF_HEADER.match(data):
        raise _rejected("malformed")
    if _HTML.search(data):
        raise _rejected("polyglot")
    tail = data[-HEAD_WINDOW:]
    end = tail.rfind(_PDF_EOF)
    if end < 0:
        raise _rejected("malformed")
    if tail[end + len(_PDF_EOF):].strip(_PDF_WHITESPACE):
        raise _rejected("polyglot")


def _check_image_head(data: bytes) -> None:
    """An image must not also start like a PDF or an HTML page."""
    head = data[:HEAD_WINDOW]
    if _PDF_MAGIC in head or _HTML.search(head):
        raise _rejected("polyglot")


def _check_png(data: bytes) -> None:
    """IHDR first, chunks that chain up to an empty IEND, and nothing after it."""
    size = len(data)
    if size < len(_PNG_SIGNATURE) + 8 or data[12:16] != b"IHDR" or data[8:12] != b"\0\0\0\x0d":
        raise _rejected("malformed")
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 12 > size:
            raise _rejected("malformed")
        length, chunk_type = struct.unpack_from(">I4s", data, pos)
        if not chunk_type.isalpha():
            raise _rejected("malformed")
        pos += 12 + length  # length, type, data, CRC
        if pos > size:
            raise _rejected("malformed")
        if chunk_type == b"IEND":
            if length:
                raise _rejected("malformed")
            break
    if pos != size:
        raise _rejected("polyglot")


def _check_jpeg(data: bytes) -> None:
    """Segments that chain from SOI to EOI (through every scan), and nothing after EOI."""
    size = len(data)
    pos = 2  # after SOI
    while True:
        if pos >= size or data[pos] != 0xFF:
            raise _rejected("malformed")
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            raise _rejected("malformed")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            continue
        if marker in (0x00, 0xD8) or pos + 2 > size:
            raise _rejected("malformed")
        (length,) = struct.unpack_from(">H", data, pos)
        pos += length
        if length < 2 or pos > size:
            raise _rejected("malformed")
        if marker == 0xDA:  # SOS: entropy-coded data follows the header
            pos = _end_of_scan(data, pos)
    if pos != size:
        raise _rejected("polyglot")


def _end_of_scan(data: bytes, pos: int) -> int:
    """Offset of the first marker after entropy-coded data (FF00 and RSTn belong to the scan)."""
    while True:
        found = data.find(b"\xff", pos)
        if found < 0 or found + 1 >= len(data):
            raise _rejected("malformed")
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos = found + 2
            continue
        return found


def _check_extension(media_type: str, declared_name: str | None) -> None:
    """A declared extension, when there is one, must name the type the content has."""
    if not declared_name:
        return
    base = re.split(r"[\\/]", declared_name)[-1].strip().rstrip(".")
    if "." not in base:
        return
    extension = "." + base.rsplit(".", 1)[1].lower()
    if EXTENSIONS.get(extension) != media_type:
        raise DocumentRejected(
            "extension_mismatch",
            f"L'extension {extension[:16]} ne correspond pas au contenu du fichier "
            f"({_SHORT_NAMES[media_type]}).",
        )


def _rejected(code: str) -> DocumentRejected:
    return DocumentRejected(code, MESSAGES[code])


def _size_fr(size: int) -> str:
    """10485760 → '10 Mo' (binary multiples, as file managers show them)."""
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} Mo"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} Ko"
    return f"{size} octets"
