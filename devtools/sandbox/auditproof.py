"""Audit proof XML in the reference's shape (§5): uploads > upload > signatures > signature > proofs > proof.

The real file is signed XML whose element names are unconfirmed; this one carries the same structure
without an XML-DSig signature. Several packages (correlation ids) sit side by side under <auditProofs>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from devtools.sandbox.clock import iso_z
from devtools.sandbox.model import Document, Package


def audit_proof_xml(parts: list[tuple[Package, list[Document]]]) -> bytes:
    root = ElementTree.Element("auditProofs")
    for package, documents in parts:
        uploads = ElementTree.SubElement(root, "uploads", {"packageId": package.id,
                                                           "packageCorrelationId": package.correlation_id or ""})
        for document in documents:
            _upload(uploads, package, document)
        indexes = ElementTree.SubElement(uploads, "indexes")
        for document in documents:
            index = ElementTree.SubElement(indexes, "index")
            ElementTree.SubElement(index, "identifier").text = "true"
            ElementTree.SubElement(index, "content").text = f"{document.id} sha256:{document.sha256}"
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _upload(uploads: ElementTree.Element, package: Package, document: Document) -> None:
    upload = ElementTree.SubElement(uploads, "upload", {"documentId": document.id,
                                                        "documentCorrelationId": document.correlation_id or ""})
    ElementTree.SubElement(upload, "start").text = iso_z(package.pending_since or package.created)
    ElementTree.SubElement(upload, "end").text = iso_z(package.final_at)
    signatures = ElementTree.SubElement(upload, "signatures")
    for location in document.locations:
        if location.signed_at is None and not location.external_proofs:
            continue
        signature = ElementTree.SubElement(signatures, "signature", {"locationId": location.id})
        proofs = ElementTree.SubElement(signature, "proofs")
        if location.signed_at is not None:
            _proof(proofs, "127.0.0.1", f"Signed by {location.signed_by} at {iso_z(location.signed_at)}",
                   location.used_signing_type or "Manual")
        for external in location.external_proofs:
            _proof(proofs, external.get("IpAddress") or "", external["Name"], external["Type"],
                   description=external.get("Description"), content=external.get("Content"))


def _proof(proofs: ElementTree.Element, ip_address: str, name: str, kind: str, description: str | None = None,
           content: str | None = None) -> None:
    proof = ElementTree.SubElement(proofs, "proof", {"ipAddress": ip_address})
    ElementTree.SubElement(proof, "name").text = name
    ElementTree.SubElement(proof, "type").text = kind
    ElementTree.SubElement(proof, "index").text = "false"
    if description is not None:
        ElementTree.SubElement(proof, "description").text = description
    if content is not None:
        ElementTree.SubElement(proof, "content").text = content
