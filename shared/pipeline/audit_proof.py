"""Cutting each document's audit proof out of the package audit proof, where the proof's shape allows it."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from typing import IO

import defusedxml.ElementTree as SafeElementTree

from shared.logging import get_logger, log_event
from shared.pipeline.archive_plan import PlannedDocument

_log = get_logger(__name__)

def split_audit_proof(source: IO[bytes], planned: list[PlannedDocument]) -> dict[str, bytes]:
    """Each document's part of a package audit proof, where the proof's own shape tells which part is whose.

    The shape is the swagger's `Content` definition, which names no document; what it does name is the
    `locationId` of each signature, and the archive knows each document's locations. One document:
    the whole proof is its proof. Several: each document gets the `upload` elements that hold its
    signatures, keeping only its own signatures (an `upload` may cover one document or a whole upload
    session). A part that cannot be attributed (a signature at a location we do not know, an
    `upload` without signatures) could be anyone's: then no document is cut out here, and the archive
    fetches every document's proof with Document Audit Proof instead. Index entries cannot be told
    apart either: each extract keeps the package's `indexes` whole.
    """
    tree = SafeElementTree.parse(source)
    all_uploads = [(uploads, upload) for uploads in _iter_local(tree.getroot(), "uploads")
                   for upload in uploads if _local(upload.tag) == "upload"]
    if len(planned) == 1:
        return {planned[0].document_id: _extract(all_uploads)} if all_uploads else {}
    owner_of = {location: d.document_id for d in planned for location in d.location_ids}
    parts: dict[str, list[tuple[ElementTree.Element, ElementTree.Element]]] = {}
    for uploads, upload in all_uploads:
        owners = {owner_of.get(_attribute(signature, "locationid").lower())
                  for signature in _iter_local(upload, "signature")}
        if not owners or None in owners:
            log_event(_log, "archive.proof_not_attributable", documents=len(planned))
            return {}
        for owner in owners:
            parts.setdefault(str(owner), []).append((uploads, _only_signatures_of(upload, owner, owner_of)))
    return {document_id: _extract(found) for document_id, found in parts.items()}


def _only_signatures_of(upload: ElementTree.Element, document_id: str | None,
                        owner_of: dict[str, str]) -> ElementTree.Element:
    """A copy of `upload` without the signatures of other documents."""
    kept = copy.deepcopy(upload)
    for container in list(_iter_local(kept, "signatures")):
        for entry in list(container):
            if owner_of.get(_attribute(entry, "locationid").lower()) != document_id:
                container.remove(entry)
    return kept


def _extract(parts: list[tuple[ElementTree.Element, ElementTree.Element]]) -> bytes:
    uploads, _ = parts[0]
    root = ElementTree.Element(uploads.tag, dict(uploads.attrib))
    for _, upload in parts:
        root.append(copy.deepcopy(upload))
    for indexes in (child for child in uploads if _local(child.tag) == "indexes"):
        root.append(copy.deepcopy(indexes))
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _attribute(element: ElementTree.Element, name: str) -> str:
    """An attribute whatever its case and namespace (the element names are unconfirmed upstream)."""
    return next((value for key, value in element.attrib.items() if _local(key).lower() == name), "")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _iter_local(root: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    return (element for element in root.iter() if _local(element.tag) == name)

