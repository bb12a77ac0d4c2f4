"""Uploaded documents are judged by their content: plain PDF, JPEG or PNG, nothing ambiguous."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from fpdf import FPDF
from PIL import Image, PngImagePlugin

from ra.documents import DocumentRejected
from ra.documents.sniff import JPEG, MAX_DOCUMENT_BYTES, PDF, PNG, sniff

# --- real files, made with real tools ---------------------------------------------------------


def make_pdf(text: str = "Carte nationale d'identite - copie", *, compress: bool = True) -> bytes:
    pdf = FPDF()
    pdf.set_compression(compress)
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def make_png(*, info: PngImagePlugin.PngInfo | None = None) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((64, 48), 50).convert("RGB").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def make_jpeg(size: tuple[int, int] = (256, 192), **options: object) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def make_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("lisez-moi.txt", "bonjour")
    return out.getvalue()


def png_chunk(chunk_type: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(
        ">I", zlib.crc32(chunk_type + data)
    )


def refusal(data: bytes, **kwargs: object) -> DocumentRejected:
    with pytest.raises(DocumentRejected) as caught:
        sniff(data, **kwargs)
    return caught.value


# --- accepted -------------------------------------------------------------------------------


def test_real_pdf_accepted():
    assert sniff(make_pdf(), declared_name="cni.pdf") == PDF


def test_uncompressed_pdf_accepted():
    assert sniff(make_pdf(compress=False)) == PDF


def test_real_png_accepted():
    assert sniff(make_png(), declared_name="cni.png") == PNG


def test_real_jpeg_accepted():
    assert sniff(make_jpeg(), declared_name="cni.jpg") == JPEG


def test_progressive_jpeg_accepted():
    assert sniff(make_jpeg(progressive=True)) == JPEG


def test_jpeg_with_restart_markers_accepted():
    assert sniff(make_jpeg(restart_marker_blocks=4)) == JPEG


def test_jpeg_with_embedded_thumbnail_accepted():
    """A thumbnail's own SOI/EOI sit inside an APP1 segment and do not end the file."""
    app1 = b"Exif\0\0" + make_jpeg((32, 24))
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    jpeg = make_jpeg()
    assert sniff(jpeg[:2] + segment + jpeg[2:]) == JPEG


# --- empty, size ------------------------------------------------------------------------------


def test_empty_file_refused():
    error = refusal(b"")
    assert (error.code, error.message) == ("empty", "Le fichier est vide.")


def test_oversize_refused():
    error = refusal(bytes(MAX_DOCUMENT_BYTES + 1))  # size is checked before anything is read
    assert (error.code, error.message) == ("too_large", "Le fichier dépasse 10 Mo.")


def test_size_limit_is_an_argument():
    pdf = make_pdf()
    assert sniff(pdf, max_size=len(pdf)) == PDF
    assert refusal(pdf, max_size=len(pdf) - 1).code == "too_large"


def test_limit_is_ten_mebibytes():
    assert MAX_DOCUMENT_BYTES == 10 * 1024 * 1024


# --- unknown types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(make_zip(), id="zip"),
        pytest.param(b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200), id="exe"),
        pytest.param(b"<!DOCTYPE html><html><body>CNI</body></html>", id="html"),
        pytest.param(b"GIF89a" + bytes(50), id="gif"),
        pytest.param("Carte d'identité".encode(), id="text"),
    ],
)
def test_unknown_content_with_pdf_name_refused(content):
    error = refusal(content, declared_name="cni.pdf")
    assert error.code == "unknown_type"
    assert error.message == "Type de fichier non accepté : seuls PDF, JPEG et PNG le sont."


# --- extension consistency --------------------------------------------------------------------


def test_pdf_with_png_extension_refused():
    error = refusal(make_pdf(), declared_name="cni.png")
    assert error.code == "extension_mismatch"
    assert error.message == "L'extension .png ne correspond pas au contenu du fichier (PDF)."


def test_png_with_jpeg_extension_refused():
    assert refusal(make_png(), declared_name="photo.jpg").code == "extension_mismatch"


def test_unlisted_extension_refused():
    assert refusal(make_pdf(), declared_name="cni.docx").code == "extension_mismatch"


def test_double_extension_judged_by_the_last():
    assert refusal(make_pdf(), declared_name="cni.pdf.exe").code == "extension_mismatch"


@pytest.mark.parametrize(
    ("name", "maker"),
    [
        ("SCAN.JPG", make_jpeg),
        ("scan.jpeg", make_jpeg),
        ("C:\\Users\\mairie\\Scan.Png", make_png),
        ("dossier/cni.PDF", make_pdf),
    ],
)
def test_extension_compared_without_case_or_folders(name, maker):
    sniff(maker(), declared_name=name)


def test_name_without_extension_accepted():
    assert sniff(make_pdf(), declared_name="scan") == PDF


# --- polyglots --------------------------------------------------------------------------------


def test_jpeg_with_pdf_header_in_first_1024_bytes_refused():
    error = refusal(make_jpeg(comment=b"%PDF-1.4 1 0 obj"))
    assert (error.code, error.message) == ("polyglot", "Fichier ambigu (polyglotte) refusé.")


def test_png_with_pdf_header_in_first_1024_bytes_refused():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "%PDF-1.4")
    assert refusal(make_png(info=info)).code == "polyglot"


def test_png_with_html_in_first_1024_bytes_refused():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    assert refusal(make_png(info=info)).code == "polyglot"


def test_pdf_containing_html_script_refused():
    assert refusal(make_pdf("<script>alert(1)</script>", compress=False)).code == "polyglot"


def test_pdf_with_script_in_upper_case_refused():
    pdf = make_pdf()
    assert refusal(pdf[:9] + b"%<SCRIPT src=x>\n" + pdf[9:]).code == "polyglot"


@pytest.mark.parametrize(
    "prefix", [b"<html>", b"GIF89a;", b"\xef\xbb\xbf", b" "], ids=["html", "gif", "bom", "space"]
)
def test_pdf_starting_with_something_before_header_refused(prefix):
    assert refusal(prefix + make_pdf()).code == "polyglot"


def test_pdf_with_data_after_eof_refused():
    assert refusal(make_pdf() + b"<svg onload=alert(1)>").code == "polyglot"


def test_pdf_with_trailing_blank_lines_accepted():
    assert sniff(make_pdf() + b"\r\n\n") == PDF


def test_png_with_data_appended_after_iend_refused():
    assert refusal(make_png() + b"#!/bin/sh\n").code == "polyglot"


def test_png_with_chunk_after_iend_refused():
    assert refusal(make_png() + png_chunk(b"tEXt", b"k\0v")).code == "polyglot"


def test_jpeg_with_data_appended_after_eoi_refused():
    assert refusal(make_jpeg() + b"hidden").code == "polyglot"


def test_jpeg_with_appended_data_ending_in_eoi_refused():
    """Ending with FFD9 is not enough: the segments are walked up to the real EOI."""
    assert refusal(make_jpeg() + b"payload\xff\xd9").code == "polyglot"


def test_jpeg_with_appended_zip_refused():
    assert refusal(make_jpeg() + make_zip()).code == "polyglot"


def test_png_with_appended_zip_refused():
    assert refusal(make_png() + make_zip()).code == "polyglot"


def test_zip_local_header_anywhere_refused():
    png = make_png()
    iend = len(png) - 12
    hidden = png[:iend] + png_chunk(b"zipP", make_zip()) + png[iend:]  # well past 1024 bytes
    assert refusal(hidden).code == "polyglot"


def test_zip_local_header_inside_pdf_refused():
    pdf = make_pdf()
    assert refusal(pdf[:9] + b"%" + make_zip() + b"\n" + pdf[9:]).code == "polyglot"


def test_zip_signature_by_chance_in_image_data_accepted():
    """The ZIP signature bytes by chance, followed by no compression method a reader knows."""
    png = make_png()
    iend = len(png) - 12
    chance = png_chunk(b"raNd", b"\x00PK\x03\x04\x14\x00\x00\x00\xbe\xef" + bytes(30))
    assert sniff(png[:iend] + chance + png[iend:]) == PNG


# --- broken structure -------------------------------------------------------------------------


def test_truncated_png_refused():
    error = refusal(make_png()[:-20])
    assert (error.code, error.message) == ("malformed", "Le fichier est incomplet ou endommagé.")


def test_png_without_ihdr_first_refused():
    png = make_png()
    assert refusal(png[:8] + png_chunk(b"tEXt", b"k\0v") + png[8:]).code == "malformed"


def test_truncated_jpeg_refused():
    assert refusal(make_jpeg()[:-100]).code == "malformed"


def test_pdf_without_eof_marker_refused():
    assert refusal(make_pdf().replace(b"%%EOF", b"")).code == "malformed"


def test_pdf_without_version_refused():
    assert refusal(b"%PDF-\n%%EOF\n").code == "malformed"
