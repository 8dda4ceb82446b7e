"""The audit proof's shape as the connector swagger's `Content` definition gives it, for the tests to hold XML to.

Element -> (child elements, attributes). The swagger's `signatures` items are unnamed; `signature` is the
name the reference gives them. Every other name here is a property of `Content` (checked against the
in-repo swagger by tests/sandbox/test_audit_proof_shape.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

SHAPE: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "uploads": (frozenset({"upload", "indexes"}), frozenset({"packageId", "packageCorrelationId"})),
    "upload": (frozenset({"start", "end", "signatures"}), frozenset()),
    "signatures": (frozenset({"signature"}), frozenset()),
    "signature": (frozenset({"proofs"}), frozenset({"locationId"})),
    "proofs": (frozenset({"proof"}), frozenset()),
    "proof": (frozenset({"name", "type", "index"}), frozenset({"ipAddress"})),
    "indexes": (frozenset({"index"}), frozenset()),
    "index": (frozenset({"identifier", "content"}), frozenset()),
}
LEAVES = frozenset({"start", "end", "name", "type", "index", "identifier", "content"})  # text only
INFERRED = frozenset({"signature"})


def shape_errors(element: ElementTree.Element, path: str = "") -> list[str]:
    """Every element or attribute under `element` (an `uploads`) that the shape does not have."""
    here = f"{path}/{element.tag}"
    children, attributes = SHAPE.get(element.tag, (frozenset(), frozenset()))  # a leaf has neither
    errors = [f"{here}@{name}" for name in element.attrib if name not in attributes]
    for child in element:
        errors.extend(shape_errors(child, here) if child.tag in children else [f"{here}/{child.tag}"])
    return errors


def uploads_of(document: bytes) -> list[ElementTree.Element]:
    """The `uploads` elements: the root itself, or the children of a wrapper."""
    root = ElementTree.fromstring(document)
    return [root] if root.tag == "uploads" else root.findall("uploads")
