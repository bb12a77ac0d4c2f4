"""pkilint's certificate document, built from remembered pieces instead of decoded whole.

pkilint reads a certificate as a tree of pyasn1 values (decoded by pyasn1-fasder) wrapped in
``PDUNode`` objects. Building that tree was about a third of a holder certificate's lint, yet
most of it is the same bytes in every certificate of the CA: the version, the signature
algorithm, the issuer, seven of the nine extensions and the entity's part of the subject.

:class:`CertificateLoader` splits a certificate of the usual shape (v3, extensions, DER
lengths) into its top-level pieces, decodes each piece with the schema pyasn1-fasder would use
for it at that place, remembers the decoded pieces that repeat, and assembles the pyasn1
certificate the way pyasn1-fasder does. Anything else (another version, unique identifiers, a
malformed or non-DER outer structure, a piece that does not decode) goes to pkilint's own loader,
so errors are pkilint's own. A test compares the trees built both ways, node by node.

Node trees are grown from *shapes*: for a pyasn1 value, its children's names and shapes as
``PDUNode`` would list them, computed once per remembered value.
"""

from __future__ import annotations

from typing import Any

from pkilint import loader
from pkilint.document import PDUNode
from pkilint.pkix.certificate import RFC5280Certificate
from pyasn1.error import PyAsn1Error
from pyasn1.type.univ import Choice, SequenceAndSetBase, SequenceOfAndSetOfBase
from pyasn1_alt_modules import rfc5280
from pyasn1_fasder import decode_der

from ca.der import read_children, read_tlv

MAX_ENTRIES = 2048  # remembered pieces; a loader fed very varied certificates starts afresh

# (pyasn1 value, ((child name, child shape), ...)), as PDUNode._generate_child_nodes lists them
Shape = tuple[Any, tuple[tuple[str, "Shape"], ...]]

_SET_KWARGS = {"verifyConstraints": False, "matchTags": False, "matchConstraints": False}
_V3 = b"\xa0\x03\x02\x01\x02"
_SEQUENCE, _SET, _BIT_STRING, _INTEGER, _EXTENSIONS = 0x30, 0x31, 0x03, 0x02, 0xA3


def shape_of(pdu: Any) -> Shape:
    """The shape of ``pdu``: what ``PDUNode`` would list as its children, recursively."""
    if isinstance(pdu, Choice):
        children = [(pdu.getName(), pdu.getComponent())]
    elif isinstance(pdu, SequenceOfAndSetOfBase):
        children = [(str(i), component) for i, component in enumerate(pdu)]
    elif isinstance(pdu, SequenceAndSetBase):
        children = [(name, value) for name, value in pdu.items() if value.isValue]
    else:
        return (pdu, ())
    return (pdu, tuple((name, shape_of(child)) for name, child in children))


def grow(document: Any, name: str, shape: Shape, parent: PDUNode | None) -> PDUNode:
    """The node ``PDUNode(document, name, pdu, parent)`` would build, with its subtree."""
    node = PDUNode.__new__(PDUNode)
    attributes = node.__dict__ = {"document": document, "name": name, "pdu": shape[0], "parent": parent,
                                  "path": name if parent is None else f"{parent.path}.{name}"}
    attributes["children"] = {child: grow(document, child, child_shape, node) for child, child_shape in shape[1]}
    return node


class _Unusual(ValueError):
    """The certificate is not of the shape the loader assembles: pkilint's loader reads it."""


def _component(spec: Any, name: str) -> Any:
    return spec.componentType[name].asn1Object


_TBS_TAGS = [0xA0, _INTEGER, _SEQUENCE, _SEQUENCE, _SEQUENCE, _SEQUENCE, _SEQUENCE, _EXTENSIONS]


class CertificateLoader:
    """``pkilint.loader.load_der_certificate`` with remembered pieces; see the module's text."""

    def __init__(self) -> None:
        certificate = rfc5280.Certificate()
        self._certificate_spec = certificate
        self._tbs_spec = _component(certificate, "tbsCertificate")
        self._extensions_spec = _component(self._tbs_spec, "extensions")
        self._name_spec = _component(self._tbs_spec, "subject")
        self._rdns_spec = _component(self._name_spec, "rdnSequence")
        self._specs = {kind: _component(self._tbs_spec, kind) for kind in (
            "version", "serialNumber", "signature", "issuer", "validity", "subjectPublicKeyInfo")}
        self._specs.update(
            rdn=self._rdns_spec.componentType, extension=self._extensions_spec.componentType,
            signatureAlgorithm=_component(certificate, "signatureAlgorithm"),
            signatureValue=_component(certificate, "signature"),
        )
        self._pieces: dict[tuple[str, bytes], Shape] = {}

    def load(self, der: bytes, name: str = "certificate") -> RFC5280Certificate:
        """The document pkilint's loader returns for ``der`` (its errors too: ValueError)."""
        try:
            return self._assemble(der, name)
        except (PyAsn1Error, ValueError):  # _Unusual too
            return loader.load_der_certificate(der, name)

    def _piece(self, kind: str, data: bytes, *, remember: bool = True) -> Shape:
        key = (kind, data)
        found = self._pieces.get(key)
        if found is None:
            pdu, _ = decode_der(data, asn1Spec=self._specs[kind])
            found = shape_of(pdu)
            if remember:
                if len(self._pieces) >= MAX_ENTRIES:
                    self._pieces.clear()
                self._pieces[key] = found
        return found

    def _assemble(self, der: bytes, name: str) -> RFC5280Certificate:
        if not der.startswith(b"\x30"):
            raise _Unusual
        _, start, end = read_tlv(der, 0, len(der))
        if end != len(der):
            raise _Unusual
        top = read_children(der, start, end)
        if [tag for tag, *_ in top] != [_SEQUENCE, _SEQUENCE, _BIT_STRING]:
            raise _Unusual
        (_, _, tbs_start, tbs_end), sigalg, signature = top
        parts = read_children(der, tbs_start, tbs_end)
        if [tag for tag, *_ in parts] != _TBS_TAGS or der[parts[0][1]:parts[0][3]] != _V3:
            raise _Unusual

        piece = self._piece
        shapes = [
            piece(kind, der[parts[index][1]:parts[index][3]], remember=remember)
            for index, kind, remember in _TBS_PIECES
        ]
        shapes.insert(5, self._subject(der, parts[5]))
        shapes.append(self._extensions(der, parts[7]))
        tbs = _sequence(self._tbs_spec, _TBS_POSITIONS, shapes)
        certificate = _sequence(self._certificate_spec, _CERTIFICATE_POSITIONS, [
            tbs,
            piece("signatureAlgorithm", der[sigalg[1]:sigalg[3]]),
            piece("signatureValue", der[signature[1]:signature[3]], remember=False),
        ])
        document = RFC5280Certificate(None, der, name)
        document.root = grow(document, "certificate", certificate, None)
        return document

    def _subject(self, der: bytes, part: tuple[int, int, int, int]) -> Shape:
        rdns = self._sequence_of(der, part[2], part[3], self._rdns_spec, "rdn", _SET)
        subject = self._name_spec.clone()
        subject.setComponentByPosition(0, rdns[0], **_SET_KWARGS)
        return (subject, (("rdnSequence", rdns),))

    def _extensions(self, der: bytes, part: tuple[int, int, int, int]) -> Shape:
        (tag, _, start, end), *rest = read_children(der, part[2], part[3]) or [(None, 0, 0, 0)]
        if tag != _SEQUENCE or rest:
            raise _Unusual
        return self._sequence_of(der, start, end, self._extensions_spec, "extension", _SEQUENCE)

    def _sequence_of(self, der: bytes, start: int, end: int, spec: Any, kind: str, element_tag: int) -> Shape:
        """A SEQUENCE OF or SET OF value of remembered elements (at least one, all with one tag)."""
        elements = []
        for tag, first, _, stop in read_children(der, start, end):
            if tag != element_tag:
                raise _Unusual
            elements.append(self._piece(kind, der[first:stop]))
        if not elements:
            raise _Unusual
        value = spec.clone()
        for position, (element, _) in enumerate(elements):
            value.setComponentByPosition(position, element, **_SET_KWARGS)
        return (value, tuple((str(position), shape) for position, shape in enumerate(elements)))


def _sequence(spec: Any, positions: tuple[tuple[int, str], ...], shapes: list[Shape]) -> Shape:
    """A SEQUENCE value holding the given components, with its shape."""
    value = spec.clone()
    for (position, _), (component, _) in zip(positions, shapes):
        value.setComponentByPosition(position, component, **_SET_KWARGS)
    return (value, tuple((name, shape) for (_, name), shape in zip(positions, shapes)))


_TBS_PIECES = ((0, "version", True), (1, "serialNumber", False), (2, "signature", True), (3, "issuer", True),
               (4, "validity", False), (6, "subjectPublicKeyInfo", False))
_TBS_POSITIONS = ((0, "version"), (1, "serialNumber"), (2, "signature"), (3, "issuer"), (4, "validity"),
                  (5, "subject"), (6, "subjectPublicKeyInfo"), (9, "extensions"))
_CERTIFICATE_POSITIONS = ((0, "tbsCertificate"), (1, "signatureAlgorithm"), (2, "signature"))
