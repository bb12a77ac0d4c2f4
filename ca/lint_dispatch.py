"""Run a pkilint validator tree with a dispatch table instead of asking every validator.

pkilint's ``ValidatorContainer`` asks each of its validators ``match(node)`` at every node of
the document: about 8,000 calls per holder certificate. Most validators
only match one path or one ASN.1 class, and a node's path and class do not change from one
certificate to the next, so :class:`DispatchingRunner` keeps, per container and per
``(path, class)``, the validators whose static filters (``path``, ``path_re``, ``pdu_class``)
admit the node, and asks only those for the full ``match`` (predicates and overridden
``match`` methods still run on every node they could concern; a validator with static filters
only is not asked again). The order in which validators
run, the results and their order are pkilint's own; a test compares them on good and bad
certificates.

This relies on pkilint's convention that an overridden ``match`` first calls
``super().match(node)``, which holds for every validator pkilint 0.13 ships.

The runner also remembers what pkilint's value decoders decoded: the issuer's name, the
CA-wide extensions and most of an entity's subject are the same bytes in every certificate,
and decoding them again was about a sixth of the lint. Decoded ASN.1 values are only read by the
validators; each document still gets its own nodes, grown from the remembered value's shape
(:mod:`ca.lint_document`).
"""

from __future__ import annotations

import logging
from typing import Any

from pkilint.document import NodeVisitor, PDUNode, ValueDecoder, decode_substrate, get_node_name_for_pdu
from pkilint.validation import (
    DecodingValidator,
    ValidationFindingDescription,
    ValidationFindingEncountered,
    ValidationResult,
    Validator,
    ValidatorContainer,
)

from ca.lint_document import Shape, grow, shape_of

logger = logging.getLogger(__name__)

MAX_ENTRIES = 4096  # per table; a linter fed very varied documents starts afresh


class _RememberingDecoder(ValueDecoder):
    """pkilint's ``ValueDecoder``, decoding each (substrate, schema) once."""

    def __init__(self, decoder: ValueDecoder, decoded: dict[tuple[bytes, int], Shape]) -> None:
        super().__init__(type_path=decoder.type_path, value_path=decoder.value_path,
                         type_mappings=decoder.type_mappings, default=decoder.default)
        self._decoded = decoded

    def decode_value(self, node: PDUNode, type_node: PDUNode, value_node: PDUNode, pdu_type: Any) -> PDUNode:
        if any(value_node.children):  # as decode_substrate: decoded already
            return next(iter(value_node.children.values()))
        substrate = bytes(self.retrieve_substrate(value_node))
        key = (substrate, id(pdu_type))
        shape = self._decoded.get(key)
        if shape is None:  # errors are raised here exactly as pkilint raises them
            child = decode_substrate(value_node.document, substrate, pdu_type, value_node)
            if len(self._decoded) >= MAX_ENTRIES:
                self._decoded.clear()
            self._decoded[key] = shape_of(child.pdu)
            return child
        name = get_node_name_for_pdu(shape[0])
        child = value_node.children[name] = grow(value_node.document, name, shape, value_node)
        return child


def _static_match(visitor: NodeVisitor, node: PDUNode) -> bool:
    """The part of ``NodeVisitor.match`` that depends only on the node's path and class."""
    if visitor._path is not None and visitor._path != node.path:
        return False
    if visitor._path_re is not None and visitor._path_re.match(node.path) is None:
        return False
    if visitor._pdu_class is not None and not isinstance(node.pdu, visitor._pdu_class):
        return False
    return True


def _static_only(visitor: NodeVisitor) -> bool:
    """Whether ``match`` is decided by the static filters alone (no predicate, no override)."""
    return (type(visitor).match is NodeVisitor.match and visitor._predicate is None
            and visitor._pdu_supertype is None)


def _is_plain_container(validator: Validator) -> bool:
    return (isinstance(validator, ValidatorContainer)
            and type(validator).validate is ValidatorContainer.validate
            and type(validator).validate_wrapper is Validator.validate_wrapper)


class _Table:
    """For one container: (path, class) → the validators that may match, with their own tables."""

    def __init__(self, container: ValidatorContainer, nested: dict[int, "_Table"]) -> None:
        self.container = container
        self.nested = nested
        # (validator, its table if it is a plain container, whether match() must still be asked)
        self.entries: dict[tuple[str, type], tuple[tuple[Validator, _Table | None, bool], ...]] = {}

    def fill(self, node: PDUNode) -> tuple[tuple[Validator, "_Table | None", bool], ...]:
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.clear()
        found = self.entries[(node.path, type(node.pdu))] = tuple(
            (v, self.nested.get(id(v)), not _static_only(v)) for v in self.container.validators
            if v._pdu_supertype is not None or _static_match(v, node)  # supertype: per instance
        )
        return found


class DispatchingRunner:
    """Validates documents with one validator tree, built once, as pkilint would.

    The tree's plain value decoders are replaced by remembering ones: the runner owns the tree.
    """

    def __init__(self, container: ValidatorContainer) -> None:
        self._decoded: dict[tuple[bytes, int], Shape] = {}
        self._table = self._register(container)

    def _register(self, container: ValidatorContainer) -> _Table:
        """The container's (initially empty) dispatch table; nested plain containers get theirs."""
        nested: dict[int, _Table] = {}
        for validator in container.validators:
            if isinstance(validator, DecodingValidator) and type(validator.decode_func) is ValueDecoder:
                validator.decode_func = _RememberingDecoder(validator.decode_func, self._decoded)
            if _is_plain_container(validator):
                nested[id(validator)] = self._register(validator)  # type: ignore[arg-type]
        return _Table(container, nested)

    def validate(self, node: PDUNode) -> list[ValidationResult]:
        """What ``container.validate(node)`` returns."""
        results: list[ValidationResult] = []
        self._visit(self._table, node, results)
        return results

    def _visit(self, table: _Table, root: PDUNode, results: list[Any]) -> None:
        """``ValidatorContainer._validate_rec`` over the candidates only, without recursion.

        Pre-order, as pkilint: a node's validators run before its children are listed, so the
        nodes a decoder adds are visited too.
        """
        entries = table.entries
        stack = [root]
        pop, push = stack.pop, stack.extend
        while stack:
            node = pop()
            candidates = entries.get((node.path, type(node.pdu)))
            if candidates is None:
                candidates = table.fill(node)
            for validator, nested, ask in candidates:
                if ask and not validator.match(node):
                    continue
                if nested is not None:
                    results.extend(self._validate_container(nested, node))
                    continue
                result = validator.validate_wrapper(node)
                if isinstance(result, list):
                    results.extend(result)
                else:
                    results.append(result)
            if node.children:
                push(reversed(node.children.values()))

    def _validate_container(self, table: _Table, node: PDUNode) -> list[ValidationResult]:
        """``container.validate_wrapper(node)`` for a nested container, findings included."""
        container = table.container
        results: list[ValidationResult] = []
        try:
            self._visit(table, node, results)
            return results
        except ValidationFindingEncountered as exc:
            finding = ValidationFindingDescription(exc.finding, exc.message)
        except Exception as exc:  # pkilint's own wrapper turns any exception into a finding
            logger.exception("Unhandled exception in validator %s on node %s", container.name, node.path)
            finding = ValidationFindingDescription(container.VALIDATION_FINDING_UNHANDLED_EXCEPTION, str(exc))
        return [ValidationResult(container, node, [finding])]
