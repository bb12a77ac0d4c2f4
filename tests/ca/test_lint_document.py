"""The certificate loader builds the very tree pkilint's loader builds, or fails as it fails."""

from __future__ import annotations

import pytest
from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from pkilint import loader
from pyasn1.codec.der.encoder import encode

import ca.lint_document as lint_document
from ca.lint_document import CertificateLoader
from tests.ca.test_lint import holder_certificate
from tests.ca.test_lint_dispatch import _corpus, _pkilint_container
from ca.lint_dispatch import DispatchingRunner


def _same_tree(ours, theirs) -> int:
    """Assert two node trees are alike in every way a validator can see; return the node count."""
    assert (ours.name, ours.path) == (theirs.name, theirs.path)
    assert type(ours.pdu) is type(theirs.pdu), ours.path
    assert ours.pdu.tagSet == theirs.pdu.tagSet, ours.path
    assert ours.pdu.isValue == theirs.pdu.isValue, ours.path
    if ours.pdu.isValue:
        assert encode(ours.pdu) == encode(theirs.pdu), ours.path
    assert list(ours.children) == list(theirs.children), ours.path
    for name, child in ours.children.items():
        assert child.parent is ours and child.document is ours.document
    return 1 + sum(_same_tree(child, theirs.children[name]) for name, child in ours.children.items())


def _load_both(certificate_loader: CertificateLoader, der: bytes):
    try:
        theirs = loader.load_der_certificate(der, "certificate")
    except ValueError as exc:
        with pytest.raises(ValueError) as raised:
            certificate_loader.load(der)
        assert str(raised.value) == str(exc)
        return None, None
    ours = certificate_loader.load(der)
    assert (ours.substrate, ours.name, type(ours)) == (theirs.substrate, theirs.name, type(theirs))
    return ours, theirs


def _tlv(tag: int, contents: bytes, *, long_form: bool = False) -> bytes:
    length = len(contents)
    if length < 0x80 and not long_form:
        return bytes([tag, length]) + contents
    octets = length.to_bytes(max(1, (length.bit_length() + 7) // 8), "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + contents


def _rebuild(der: bytes, edit) -> bytes:
    """The certificate with its TBS rebuilt by ``edit(asn1crypto TBSCertificate)``."""
    certificate = asn1_x509.Certificate.load(der)
    tbs = certificate["tbs_certificate"].copy()
    edit(tbs)
    return _tlv(0x30, tbs.dump() + certificate["signature_algorithm"].dump()
                + certificate["signature_value"].dump())


def _serial_in_long_form(der: bytes) -> bytes:
    certificate = asn1_x509.Certificate.load(der)
    tbs = certificate["tbs_certificate"]
    parts = [tbs[name].dump() for name in ("version", "serial_number", "signature", "issuer", "validity",
                                           "subject", "subject_public_key_info", "extensions")]
    serial = tbs["serial_number"].contents
    parts[1] = _tlv(0x02, serial, long_form=True)
    return _tlv(0x30, _tlv(0x30, b"".join(parts)) + certificate["signature_algorithm"].dump()
                + certificate["signature_value"].dump())


def _explicit_non_critical(der: bytes) -> bytes:
    def edit(tbs):
        extensions = tbs["extensions"]
        first = extensions[-1]
        raw = first.dump()
        # an extension SEQUENCE with critical FALSE written out: DER forbids it (DEFAULT value)
        inner = first["extn_id"].dump() + b"\x01\x01\x00" + first["extn_value"].dump()
        tbs["extensions"] = asn1_x509.Extensions.load(
            _tlv(0x30, b"".join(e.dump() for e in list(extensions)[:-1]) + _tlv(0x30, inner)))
        assert raw != _tlv(0x30, inner)
    return _rebuild(der, edit)


def _odd_shapes() -> list[tuple[str, bytes]]:
    holder = holder_certificate()

    def version_1(tbs):
        tbs["version"] = "v1"
        tbs["extensions"] = None

    def unique_id(tbs):
        tbs["issuer_unique_id"] = core.OctetBitString(b"\x01\x02")

    def empty_subject(tbs):
        tbs["subject"] = asn1_x509.Name.build({})

    return [
        ("version 1", _rebuild(holder, version_1)),
        ("issuer unique id", _rebuild(holder, unique_id)),
        ("empty subject", _rebuild(holder, empty_subject)),
        ("serial length in long form", _serial_in_long_form(holder)),
        ("critical FALSE written out", _explicit_non_critical(holder)),
        ("trailing octets", holder + b"\x00"),
        ("truncated", holder[:-1]),
        ("not a sequence", b"\x04\x02ab"),
        ("empty", b""),
        ("holder again", holder),
    ]


def test_the_tree_is_pkilints_on_good_faulty_and_odd_certificates():
    certificate_loader = CertificateLoader()
    documents = 0
    for name, der in (_corpus() + _odd_shapes()) * 2:  # the second pass uses remembered pieces
        ours, theirs = _load_both(certificate_loader, der)
        if ours is not None:
            documents += 1
            assert _same_tree(ours.root, theirs.root) > 50, name
            assert encode(ours.root.pdu) == der, name
    assert documents >= 2 * 14
    assert certificate_loader._pieces


def test_odd_certificates_do_take_pkilints_loader(monkeypatch):
    """The cases above are read by pkilint's loader; the usual ones never are."""
    calls = []
    real = loader.load_der_certificate
    monkeypatch.setattr(lint_document.loader, "load_der_certificate",
                        lambda der, name: calls.append(der) or real(der, name))
    certificate_loader = CertificateLoader()
    for _name, der in _corpus():
        certificate_loader.load(der)
    assert calls == []
    odd = dict(_odd_shapes())
    for name in ("version 1", "issuer unique id", "empty subject"):
        certificate_loader.load(odd[name])
        assert calls[-1] == odd[name], name
    for name in ("serial length in long form", "critical FALSE written out", "trailing octets"):
        with pytest.raises(ValueError):
            certificate_loader.load(odd[name])
        assert calls[-1] == odd[name], name


def test_the_values_decoded_while_validating_grow_the_same_nodes():
    """The runner's remembered decodings (extension values, names, keys) add pkilint's nodes."""
    certificate_loader = CertificateLoader()
    runner = DispatchingRunner(_pkilint_container())
    reference = _pkilint_container()
    for name, der in _corpus() * 2:
        ours, theirs = _load_both(certificate_loader, der)
        runner.validate(ours.root)
        reference.validate(theirs.root)
        assert _same_tree(ours.root, theirs.root) > 90, name


def test_remembered_pieces_are_bounded(monkeypatch):
    monkeypatch.setattr(lint_document, "MAX_ENTRIES", 5)
    certificate_loader = CertificateLoader()
    for _name, der in _corpus():
        ours, theirs = _load_both(certificate_loader, der)
        _same_tree(ours.root, theirs.root)
        assert len(certificate_loader._pieces) <= 5
