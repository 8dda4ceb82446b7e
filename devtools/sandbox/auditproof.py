"""Audit proof XML in the shape of the connector swagger's `Content` definition, and nothing more.

    <uploads packageId="…" packageCorrelationId="…">
      <upload> <start/> <end/> <signatures> <signature locationId="…"> <proofs>
        <proof ipAddress="…"> <name/> <type/> <index/> </proof> … </proofs> </signature> … </signatures> </upload> …
      <indexes> <index> <identifier/> <content/> </index> … </indexes>
    </uploads>

No element or attribute of our own: an `upload` does not say which document it covers (the real file
may not either), so a reader can only tell from the `locationId`s of its signatures. The real file is
signed XML; this one has no XML-DSig signature. Two knobs play what the swagger leaves open:
`audit_proof_wrapper` puts an element around `uploads`, and `audit_proof_uploads=per-session` makes
one `upload` for the whole package instead of one per document. Several packages (correlation ids)
need a root element to be well-formed XML, so they always sit under the wrapper.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from devtools.sandbox.clock import iso_z
from devtools.sandbox.model import Document, Location, Package

WRAPPER = "auditProof"


def audit_proof_xml(parts: list[tuple[Package, list[Document]]], *, wrapper: bool = False,
                    per_session: bool = False) -> bytes:
    all_uploads = [_uploads(package, documents, per_session) for package, documents in parts]
    if wrapper or len(all_uploads) != 1:
        root = ElementTree.Element(WRAPPER)
        root.extend(all_uploads)
    else:
        root = all_uploads[0]
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _uploads(package: Package, documents: list[Document], per_session: bool) -> ElementTree.Element:
    uploads = ElementTree.Element("uploads", {"packageId": package.id,
                                              "packageCorrelationId": package.correlation_id or ""})
    sessions = [[location for document in documents for location in document.locations]] if per_session else [
        document.locations for document in documents]
    for locations in sessions:
        _upload(uploads, package, locations)
    indexes = ElementTree.SubElement(uploads, "indexes")
    for document in documents:
        index = ElementTree.SubElement(indexes, "index")
        ElementTree.SubElement(index, "identifier").text = "true"
        ElementTree.SubElement(index, "content").text = f"sha256:{document.sha256}"
    return uploads


def _upload(uploads: ElementTree.Element, package: Package, locations: list[Location]) -> None:
    upload = ElementTree.SubElement(uploads, "upload")
    ElementTree.SubElement(upload, "start").text = iso_z(package.pending_since or package.created)
    ElementTree.SubElement(upload, "end").text = iso_z(package.final_at)
    signatures = ElementTree.SubElement(upload, "signatures")
    for location in locations:
        if location.signed_at is None and not location.external_proofs:
            continue
        signature = ElementTree.SubElement(signatures, "signature", {"locationId": location.id})
        proofs = ElementTree.SubElement(signature, "proofs")
        if location.signed_at is not None:
            _proof(proofs, "127.0.0.1", f"Signed by {location.signed_by} at {iso_z(location.signed_at)}",
                   location.used_signing_type or "Manual")
        for external in location.external_proofs:
            _proof(proofs, external.get("IpAddress") or "", external["Name"], external["Type"])


def _proof(proofs: ElementTree.Element, ip_address: str, name: str, kind: str) -> None:
    proof = ElementTree.SubElement(proofs, "proof", {"ipAddress": ip_address})
    ElementTree.SubElement(proof, "name").text = name
    ElementTree.SubElement(proof, "type").text = kind
    ElementTree.SubElement(proof, "index").text = "false"
