"""The dispatching runner gives pkilint's own results, in pkilint's order, document after document."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pkilint import etsi, loader
from pkilint.pkix import certificate as pkix_certificate

from ca.lint import CERTIFICATE_TYPE, Linter
import ca.lint_dispatch as dispatch
from ca.lint_dispatch import DispatchingRunner
from tests.ca.pki_fixtures import holder_key, holder_subject, rsa_chain
from tests.ca.test_lint import holder_certificate, subject_with


def _pkilint_container():
    return pkix_certificate.create_pkix_certificate_validator_container(
        etsi.create_decoding_validators(CERTIFICATE_TYPE), etsi.create_validators(CERTIFICATE_TYPE)
    )


def _comparable(results) -> list[tuple[str, str, list[tuple[str, str, str | None]]]]:
    return [
        (type(r.validator).__name__, r.node.path,
         [(d.finding.severity.name, d.finding.code, d.message) for d in r.finding_descriptions])
        for r in results
    ]


def _corpus() -> list[tuple[str, bytes]]:
    """Good certificates of several holders and keys, and certificates with many kinds of faults."""
    ca = rsa_chain().issuing
    bad_extension = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.37"), b"\x04\x00")  # EKU not a SEQUENCE
    return [
        ("holder rsa", holder_certificate()),
        ("holder ec", holder_certificate(key=holder_key("p256"))),
        ("other holder", holder_certificate(subject=holder_subject(given_names="Jean-Luc", surname="Le Goff",
                                                                   siren="213502388", siret=None, title="Maire").to_name())),
        ("same holder again", holder_certificate()),
        ("printable surname", holder_certificate(subject=subject_with({NameOID.SURNAME: x509.NameAttribute(
            NameOID.SURNAME, "Dubois", _type=_ASN1Type.PrintableString)}))),
        ("no key usage", holder_certificate(KeyUsage=None)),
        ("server auth", holder_certificate(ExtendedKeyUsage=(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH]), True))),
        ("undecodable EKU", holder_certificate(ExtendedKeyUsage=(bad_extension, False))),
        ("sha384", holder_certificate(hash_algorithm=hashes.SHA384())),
        ("expired", holder_certificate(not_before=dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc))),
        ("CA certificate", ca.certificate.public_bytes(serialization.Encoding.DER)),
        ("holder rsa last", holder_certificate()),
    ]


def test_same_results_as_pkilint_on_a_sequence_of_documents():
    runner = DispatchingRunner(_pkilint_container())
    reference = _pkilint_container()
    corpus = _corpus()
    assert len({der for _name, der in corpus}) > 8
    for name, der in corpus * 2:  # the second pass runs on filled tables and remembered values
        ours = runner.validate(loader.load_der_certificate(der, "certificate").root)
        theirs = reference.validate(loader.load_der_certificate(der, "certificate").root)
        assert _comparable(ours) == _comparable(theirs), name


def test_faulty_certificates_do_have_findings():
    """The corpus above exercises error paths, not only clean certificates."""
    linter = Linter()
    undecodable = dict(_corpus())["undecodable EKU"]
    report = linter.lint_certificate(undecodable)
    assert any("invalid_asn1_syntax" in e or "decod" in e for e in report.errors), report.errors
    assert linter.lint_certificate(dict(_corpus())["server auth"]).errors


@pytest.mark.parametrize("entries", [1, 3])
def test_dispatch_tables_are_bounded(monkeypatch, entries):
    monkeypatch.setattr(dispatch, "MAX_ENTRIES", entries)
    runner = DispatchingRunner(_pkilint_container())
    reference = _pkilint_container()
    for der in (holder_certificate(), holder_certificate(key=holder_key("p256"))):
        ours = runner.validate(loader.load_der_certificate(der, "certificate").root)
        theirs = reference.validate(loader.load_der_certificate(der, "certificate").root)
        assert _comparable(ours) == _comparable(theirs)
    assert all(len(table.entries) <= entries for table in _tables(runner._table))
    assert len(runner._decoded) <= entries


def _tables(table):
    yield table
    for nested in table.nested.values():
        yield from _tables(nested)
