"""One archive run of one package: the signed documents, the audit proofs and the summary, written as blobs.

Files already archived by an earlier, interrupted run (same name, same package id) are not fetched
again, so a retry after a missing rate token spends only the calls that are still missing. Blobs are
written as staged blocks and committed in one step with their metadata, sha256 included, so a blob
exists only complete and a document is never held whole in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from enum import StrEnum
from typing import Any

from azure.storage.blob import BlobClient, ContainerClient, ContentSettings

from shared.connective.client import ConnectiveClient
from shared.connective.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.logging import get_logger, log_event
from shared.pipeline.archive_plan import (
    JSON_TYPE,
    PACKAGE_PROOF_NAME,
    SUMMARY_NAME,
    XML_TYPE,
    PlannedDocument,
    match_members,
    package_folder,
)
from shared.pipeline.audit_proof import split_audit_proof
from shared.storage import names
from shared.storage.blob_sink import BLOCK_BYTES, STAGING_IN_FLIGHT, BlobSink
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store

_log = get_logger(__name__)

class FileKind(StrEnum):
    SIGNED_DOCUMENT = "signed-document"
    DOCUMENT_AUDIT_PROOF = "document-audit-proof"
    PACKAGE_AUDIT_PROOF = "package-audit-proof"
    SUMMARY = "summary"


def _file_entry(blob: BlobClient, folder: str, name: str, kind: FileKind, content_type: str, size: int,
                sha256: str, document_id: str | None = None) -> dict[str, Any]:
    entry = {"name": name, "blob": folder + name, "url": blob.url, "kind": kind.value, "contentType": content_type,
             "size": size, "sha256": sha256}
    if document_id:
        entry["documentId"] = document_id
    return entry


class Archiver:
    """One archive run of one package; a context manager owning the threads that stage its blocks."""

    def __init__(self, store: Store, client: ConnectiveClient, record: PackageRecord) -> None:
        assert record.connective_package_id
        self.store = store
        self.client = client
        self.record = record
        self.package_id: str = record.connective_package_id
        self.folder = package_folder(record)
        self.container: ContainerClient = store.clients.container(names.SIGNED_CONTAINER)
        self.files: list[dict[str, Any]] = []
        self._existing = {
            blob.name[len(self.folder):]: blob
            for blob in self.container.list_blobs(name_starts_with=self.folder, include=["metadata"])
            if (blob.metadata or {}).get("packageid") == self.package_id and (blob.metadata or {}).get("sha256")
        }
        # Created last: a run whose listing failed owns no threads. `__exit__` shuts them down.
        self._staging = ThreadPoolExecutor(max_workers=STAGING_IN_FLIGHT, thread_name_prefix="archive-stage")

    def __enter__(self) -> Archiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._staging.shutdown(wait=True, cancel_futures=True)

    def _blob(self, name: str) -> BlobClient:
        return self.container.get_blob_client(self.folder + name)

    def _metadata(self, kind: FileKind, document_id: str | None = None) -> dict[str, str]:
        metadata = {"packageid": self.package_id, "packageref": self.record.ref, "kind": kind.value}
        if document_id:
            metadata["documentid"] = document_id
        if kind == FileKind.DOCUMENT_AUDIT_PROOF:
            metadata["derivedfrom"] = PACKAGE_PROOF_NAME
        return metadata

    def _reuse(self, name: str, kind: FileKind, document_id: str | None = None) -> bool:
        """Record an already archived file; True when there is one."""
        existing = self._existing.get(name)
        if existing is None:
            return False
        self.files.append(_file_entry(self._blob(name), self.folder, name, kind,
                                      existing.content_settings.content_type or "", existing.size,
                                      existing.metadata["sha256"], document_id))
        return True

    def _commit(self, sink: BlobSink, name: str, kind: FileKind, content_type: str,
                document_id: str | None = None, sha256: str | None = None) -> None:
        sha256 = sink.commit(content_type, self._metadata(kind, document_id), sha256)
        self.files.append(_file_entry(self._blob(name), self.folder, name, kind, content_type, sink.size, sha256,
                                      document_id))

    def _upload_small(self, name: str, kind: FileKind, content_type: str, data: bytes,
                      document_id: str | None = None) -> None:
        sha256 = hashlib.sha256(data).hexdigest()
        self._blob(name).upload_blob(data, overwrite=True, content_settings=ContentSettings(content_type=content_type),
                                     metadata={**self._metadata(kind, document_id), "sha256": sha256})
        self.files.append(_file_entry(self._blob(name), self.folder, name, kind, content_type, len(data), sha256,
                                      document_id))

    # -- signed documents

    def archive_documents(self, planned: list[PlannedDocument]) -> None:
        missing = [doc for doc in planned if not self._reuse(doc.blob_name, FileKind.SIGNED_DOCUMENT, doc.document_id)]
        if not missing:
            return
        if len(planned) > 1:
            missing = self._from_package_zip(missing)
        for document in missing:
            self._download_document(document)

    def _download_document(self, document: PlannedDocument) -> None:
        sink = BlobSink(self._blob(document.blob_name), self._staging, hashed_by_writer=True)
        result = self.client.download_document_from_package(self.package_id, document.document_id, sink)
        self._commit(sink, document.blob_name, FileKind.SIGNED_DOCUMENT, document.content_type, document.document_id,
                     sha256=result.sha256)

    def _from_package_zip(self, missing: list[PlannedDocument]) -> list[PlannedDocument]:
        """Stream the documents out of the package ZIP; returns those the ZIP did not hold."""
        with tempfile.TemporaryFile(prefix="package-", suffix=".zip") as spool:
            self.client.download_package(self.package_id, spool)
            spool.seek(0)
            with zipfile.ZipFile(spool) as bundle:
                members = [info for info in bundle.infolist() if not info.is_dir()]
                by_document = match_members(missing, members)
                for document in missing:
                    member = by_document.get(document.document_id)
                    if member is None:
                        continue
                    sink = BlobSink(self._blob(document.blob_name), self._staging)
                    with bundle.open(member) as source:
                        shutil.copyfileobj(source, sink, BLOCK_BYTES)
                    self._commit(sink, document.blob_name, FileKind.SIGNED_DOCUMENT, document.content_type,
                                 document.document_id)
        unmatched = [document for document in missing if document.document_id not in by_document]
        if unmatched:
            log_event(_log, "archive.zip.unmatched", documents=[d.document_id for d in unmatched])
        return unmatched

    # -- audit proofs

    def archive_proofs(self, planned: list[PlannedDocument]) -> None:
        with tempfile.TemporaryFile(prefix="audit-proof-", suffix=".xml") as spool:
            if self._reuse(PACKAGE_PROOF_NAME, FileKind.PACKAGE_AUDIT_PROOF):
                self._blob(PACKAGE_PROOF_NAME).download_blob().readinto(spool)
            else:
                sink = BlobSink(self._blob(PACKAGE_PROOF_NAME), self._staging)
                self.client.package_audit_proof(self.package_id, _Tee(spool, sink))
                self._commit(sink, PACKAGE_PROOF_NAME, FileKind.PACKAGE_AUDIT_PROOF, XML_TYPE)
            spool.seek(0)
            extracts = split_audit_proof(spool, self._with_locations(planned))
        for document in planned:
            extract = extracts.get(document.document_id)
            if extract is not None:
                self._upload_small(document.proof_blob_name, FileKind.DOCUMENT_AUDIT_PROOF, XML_TYPE, extract,
                                   document.document_id)
            elif not self._reuse(document.proof_blob_name, FileKind.DOCUMENT_AUDIT_PROOF, document.document_id):
                self._download_document_proof(document)

    def _with_locations(self, planned: list[PlannedDocument]) -> list[PlannedDocument]:
        """The documents with their location ids, which tell the package proof's parts apart.

        Creation keeps them on the row. A row without them (a package found by a look-up, a row made
        before they were kept) costs one Get Signing Locations call, fewer than a proof per document.
        """
        lacking = [d for d in planned if not d.location_ids and d.proof_blob_name not in self._existing]
        if len(planned) < 2 or not lacking:
            return planned
        try:
            listed = {d.document_id.lower(): d for d in self.client.get_signing_locations(self.package_id).documents}
        except (ConflictError, NotFoundError, InvalidRequestError) as error:
            log_event(_log, "archive.locations_unavailable", status=error.status)
            return planned
        return [dataclasses.replace(d, location_ids=frozenset(
            location.id.lower() for location in listed[d.document_id.lower()].locations))
            if not d.location_ids and d.document_id.lower() in listed else d for d in planned]

    def _download_document_proof(self, document: PlannedDocument) -> None:
        sink = BlobSink(self._blob(document.proof_blob_name), self._staging)
        self.client.package_audit_proof_doc(self.package_id, document.document_id, sink)
        sha256 = sink.commit(XML_TYPE, {**self._metadata(FileKind.DOCUMENT_AUDIT_PROOF, document.document_id),
                                        "derivedfrom": "connective"})
        self.files.append(_file_entry(self._blob(document.proof_blob_name), self.folder, document.proof_blob_name,
                                      FileKind.DOCUMENT_AUDIT_PROOF, XML_TYPE, sink.size, sha256,
                                      document.document_id))

    # -- summary

    def write_summary(self, archived_at: datetime) -> None:
        record = self.record
        summary = {
            "packageRef": record.ref,
            "packageId": self.package_id,
            "status": PackageStatus.FINISHED.value,
            "source": record.source,
            "sourceUri": record.source_uri,
            "createdAt": record.created_at.isoformat(),
            "archivedAt": archived_at.isoformat(),
            "documents": [{"documentId": d.get("document_id"), "name": d.get("name"), "type": d.get("type")}
                          for d in record.documents],
            "signers": [{key: signer.get(key) for key in ("email", "type", "status", "completed_at", "completed_by",
                                                          "actor_id", "stakeholder_id")}
                        for signer in record.signers],
            "files": self.files,
        }
        data = json.dumps(summary, indent=2, default=str).encode()
        self._upload_small(SUMMARY_NAME, FileKind.SUMMARY, JSON_TYPE, data)


class _Tee:
    """Writes each chunk to two targets (the spool file that is parsed, and the blob)."""

    def __init__(self, *targets: Any) -> None:
        self._targets = targets

    def write(self, data: bytes, /) -> int:
        for target in self._targets:
            target.write(data)
        return len(data)

