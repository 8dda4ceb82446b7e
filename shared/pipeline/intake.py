"""Intake: turn an uploaded input into a package row (Received) and a `package-requests` message.

Intake only validates and records; creating the package at Connective is `shared.pipeline.creation`'s
job, behind the queue. Every input gets a packageRef derived from its container, name and ETag, so a
repeated trigger for the same upload finds its row and changes nothing. Bad input never raises: it
gets an error report in `signing-errors/`, a row in state InputRejected and an event, and the
original stays where it was.

Documents are never held in memory nor copied to disk: the PDF check reads the ranges it needs
from the blob in a child process (see `pdfcheck`), while the document is hashed range by range.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient
from pydantic import BaseModel, ValidationError

from shared.config import Settings
from shared.logging import get_logger, log_event, package_scope
from shared.pipeline import routing
from shared.pipeline.errors_report import Rejection, write_report
from shared.pipeline.pdfcheck import MARKER_SCAN_MAX_PAGES, PdfFacts, PdfRejected, RangeReader, inspect_pdf
from shared.pipeline.spec import MAX_LOCATIONS_PER_DOCUMENT, PackageRequest
from shared.storage import names
from shared.storage.packages import PackageRecord, RecordTooLarge
from shared.storage.status import UNCREATED, PackageStatus
from shared.storage.store import Store
from shared.telemetry import TRACEPARENT, current_traceparent, intake_rejections, package_step
from shared.webhooks.delivery import url_policy
from shared.webhooks.publish import EventType, publish_event
from shared.webhooks.ssrf import UnsafeUrlError, check_url

logger = get_logger(__name__)

MAX_MANIFEST_BYTES = 1024 * 1024
# The hash pass reads the document in ranges of this size: fewer, larger GETs are much faster than the
# blob SDK's default 4 MiB chunks, and only one range is held at a time.
HASH_READ_BYTES = 8 * 1024 * 1024
MANIFEST_NAME = names.BATCH_MANIFEST_NAME
# Default signing box (points) where a document has neither a marker nor a signature field for a signer.
DEFAULT_BOX = (160.0, 50.0)
DEFAULT_MARGIN = 36.0
DEFAULT_GAP = 10.0


# ---------------------------------------------------------------------------------------------------
# Identity


def package_ref_for_blob(prefix: str, container: str, blob_name: str, etag: str) -> str:
    """A short id that is the same for every trigger of one upload (one ETag) and differs for a new one."""
    digest = hashlib.sha256(f"{container}\n{blob_name}\n{etag.strip(chr(34))}".encode()).hexdigest()
    return f"{prefix}-{digest[:20]}"


@dataclass(frozen=True)
class BlobInput:
    container: str
    name: str
    etag: str
    size: int
    metadata: dict[str, str]

    @property
    def uri(self) -> str:
        return f"{self.container}/{self.name}"


def describe_blob(blob: BlobClient) -> BlobInput | None:
    """The blob's identity and metadata, or None when it was deleted since the trigger fired."""
    try:
        properties = blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    return BlobInput(container=blob.container_name, name=blob.blob_name, etag=str(properties.etag),
                     size=int(properties.size or 0), metadata=dict(properties.metadata or {}))


# ---------------------------------------------------------------------------------------------------
# Documents


class StoredDocument(BaseModel):
    """A validated document as creation will read it: the exact blob version, its size and hash."""

    container: str
    blob: str
    etag: str
    size: int
    sha256: str
    name: str
    language: str
    external_reference: str | None = None
    pages: int
    last_page_size: tuple[float, float]
    signature_fields: list[str] = []
    markers_found: list[str] = []


def uploaded_trace(metadata: dict[str, str]) -> str | None:
    """The uploader's W3C trace context, when it put one in the blob's `traceparent` metadata."""
    return next((value for key, value in metadata.items() if key.lower() == TRACEPARENT), None)


def max_document_bytes(settings: Settings) -> int:
    return settings.intake_max_document_mb * 1024 * 1024


def _blob_ranges(blob: BlobClient, etag: str) -> RangeReader:
    """Ranged reads of one blob version: each fails with ResourceModifiedError once the blob has changed."""
    def read_range(offset: int, length: int) -> bytes:
        return blob.download_blob(offset=offset, length=length, etag=etag,
                                  match_condition=MatchConditions.IfNotModified).readall()

    return read_range


def _sha256(read_range: RangeReader, size: int) -> str:
    """The hash of the whole document, read in HASH_READ_BYTES ranges (one GET each), never held whole."""
    digest = hashlib.sha256()
    for offset in range(0, size, HASH_READ_BYTES):
        digest.update(read_range(offset, min(HASH_READ_BYTES, size - offset)))
    return digest.hexdigest()


def check_document(settings: Settings, blob: BlobClient, *, etag: str, size: int,
                   markers: list[str]) -> tuple[str, PdfFacts]:
    """Validate one PDF blob version; returns (sha256, facts) or raises Rejection.

    The PDF check (a child process reading the few ranges pypdf needs) and the hash (one pass over
    every byte) run side by side. Both read the blob under its ETag: a blob replaced meanwhile raises
    ResourceModifiedError.
    """
    where = blob.blob_name
    if size == 0:
        raise Rejection("empty_document", f"{where} is empty")
    limit = max_document_bytes(settings)
    if size > limit:
        # Judged before any download and any Connective call: Connective refuses documents over 30 MB.
        raise Rejection("document_too_large",
                        f"{where} is {size / 1048576:.1f} MB; the limit is {limit / 1048576:g} MB",
                        [{"document": where, "sizeBytes": size, "limitBytes": limit}])
    read_range = _blob_ranges(blob, etag)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-pdfcheck") as pool:
        checking = pool.submit(contextvars.copy_context().run, inspect_pdf, read_range, size, markers)
        sha256 = _sha256(read_range, size)
        try:
            facts = checking.result()
        except PdfRejected as rejected:
            raise Rejection(rejected.code, f"{where}: {rejected}") from None
    return sha256, facts


def marker_for(template: str, position: int) -> str:
    # Plain replacement, never str.format: the template comes from users.
    return template.replace("{n}", str(position))


# ---------------------------------------------------------------------------------------------------
# Signing locations


def resolve_signing_fields(request: PackageRequest, documents: list[StoredDocument],
                           marker_template: str) -> list[list[dict[str, Any]]]:
    """Per document, the SigningFields to send, each labelled `s{signer}-{n}` so it maps back to its signer.

    A signer with explicit locations gets exactly those. A signer without any signs every document:
    on the text marker for their position (`#SIGN1#`, `#SIGN2#`, ...), else on the document's n-th empty
    signature field, else in a box at the bottom right of the last page (stacked upwards per signer).
    """
    per_document: list[list[dict[str, Any]]] = [[] for _ in documents]
    position = 0
    for signer_index, signer in enumerate(request.signers):
        if signer.type != "Signer":
            continue
        position += 1
        if signer.locations:
            for location in signer.locations:
                index = request.document_index(location.document)
                per_document[index].append(_explicit_field(location, documents[index]))
        else:
            for index, document in enumerate(documents):
                per_document[index].append(_default_field(document, marker_for(marker_template, position), position))
        for fields in per_document:
            for number, field in enumerate(fields):
                field.setdefault("Label", f"s{signer_index}-{number}")
    for index, fields in enumerate(per_document):
        if len(fields) > MAX_LOCATIONS_PER_DOCUMENT:
            raise Rejection("too_many_locations", f"document {documents[index].blob} would get {len(fields)} "
                                                  f"signing locations; Connective allows {MAX_LOCATIONS_PER_DOCUMENT}")
    return per_document


def _explicit_field(location: Any, document: StoredDocument) -> dict[str, Any]:
    if location.marker is not None:
        return {"MarkerOrFieldId": location.marker}
    page = location.page if location.page > 0 else document.pages + 1 + location.page
    if not 1 <= page <= document.pages:
        raise Rejection("location_invalid", f"{document.blob} has {document.pages} pages; "
                                            f"a location names page {location.page}")
    return {"PageNumber": page, "Left": _points(location.left), "Top": _points(location.top),
            "Width": _points(location.width), "Height": _points(location.height)}


def _default_field(document: StoredDocument, marker: str, position: int) -> dict[str, Any]:
    if marker in document.markers_found:
        return {"MarkerOrFieldId": marker}
    if len(document.signature_fields) >= position:
        return {"MarkerOrFieldId": document.signature_fields[position - 1]}
    width, height = DEFAULT_BOX
    page_width, page_height = document.last_page_size
    left = max(0.0, page_width - DEFAULT_MARGIN - width)
    top = max(0.0, page_height - DEFAULT_MARGIN - height - (position - 1) * (height + DEFAULT_GAP))
    return {"PageNumber": document.pages, "Left": _points(left), "Top": _points(top),
            "Width": _points(width), "Height": _points(height)}


def _points(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------------------------------
# Recording


def record_accepted(store: Store, *, ref: str, source: str, source_uri: str, request: PackageRequest,
                    documents: list[StoredDocument], signing_fields: list[list[dict[str, Any]]],
                    bulk: tuple[str, str] | None = None, request_hash: str | None = None) -> PackageRecord:
    """Insert the Received row (or find the existing one) and ask for creation.

    `bulk` is (job, row key) for a package of a bulk send (shared.bulk); `request_hash` identifies an HTTP
    request's body for idempotency (shared.api.create).
    """
    wire = request.to_json_dict()
    for document in wire["documents"]:
        document.pop("content", None)  # the bytes live in the staged blob, never in the row
    record = PackageRecord(
        ref=ref, source=source, source_uri=source_uri,
        spec={"request": wire, "documents": [d.model_dump(mode="json") for d in documents],
              "signingFields": signing_fields},
        request_hash=request_hash,
        reminder_policy=request.reminders.to_json_dict() if request.reminders else {},
        subscribers=list(request.subscribers),
        bulk_job=bulk[0] if bulk else None, bulk_row=bulk[1] if bulk else None,
        trace_parent=current_traceparent(),
        # Matched to Connective's actors by email at the first status read (status_sync).
        signers=[{"email": str(signer.email), "name": signer.name, "type": signer.type, "order": signer.order}
                 for signer in request.signers],
    )
    stored, created = store.packages.insert(record)
    if created:
        store.events.append(ref, "received", source=source, source_uri=source_uri, documents=len(documents))
        log_event(logger, "intake.accepted", source=source, documents=len(documents), signers=len(request.signers))
    if stored.status is PackageStatus.RECEIVED:
        store.clients.send_json(names.PACKAGE_REQUESTS_QUEUE, {"packageRef": ref})
    return stored


def record_rejected(store: Store, *, ref: str, source: str, container: str, blob_name: str, etag: str | None,
                    rejection: Rejection) -> PackageRecord:
    """Error report, InputRejected row and event. Repeating it for the same ref changes nothing."""
    existing = store.packages.get(ref)
    if existing is not None:
        return existing
    report = write_report(store, source_container=container, blob_name=blob_name, etag=etag, package_ref=ref,
                          rejection=rejection)
    record = PackageRecord(ref=ref, status=PackageStatus.INPUT_REJECTED, source=source,
                           source_uri=f"{container}/{blob_name}", final_reason=str(rejection)[:1000],
                           error_report=f"{names.ERRORS_CONTAINER}/{report}")
    stored, created = store.packages.insert(record)
    if created:
        _announce_rejection(store, stored, rejection)
    return stored


def may_refuse(record: PackageRecord) -> bool:
    """True while an accepted input can still be refused: its row is Received or Creating and no status read
    saw its package past Draft. A package that went out for signing is real, and its row follows Connective
    whatever a late refusal says (status ranks alone would let any row up to Finished become InputRejected)."""
    return record.status in UNCREATED and (record.connective_status or "Draft").lower() == "draft"


def record_rejection_of_row(store: Store, ref: str, rejection: Rejection) -> PackageRecord | None:
    """Refuse an input that was accepted at intake but that Connective (or a later check) refused.

    Only a row that `may_refuse` changes; any other is returned as it is, with no report written.
    """
    record = store.packages.get(ref)
    if record is None or not may_refuse(record):
        if record is not None:
            log_event(logger, "intake.refusal_ignored", logging.WARNING, package_ref=ref, code=rejection.code,
                      status=record.status.value)
        return record
    container, _, blob_name = record.source_uri.partition("/")
    input_etag = (record.spec.get("documents") or [{}])[0].get("etag") if record.source == "inbox" else None
    report = write_report(store, source_container=container or record.source, blob_name=blob_name or ref,
                          etag=input_etag, package_ref=ref, rejection=rejection)

    def change(current: PackageRecord) -> bool:
        if not may_refuse(current):
            return False
        current.status = PackageStatus.INPUT_REJECTED
        current.final_reason = str(rejection)[:1000]
        current.error_report = f"{names.ERRORS_CONTAINER}/{report}"
        current.creation_lease_until = None
        return True

    stored = store.packages.mutate(ref, change)
    if stored is not None and stored.error_report == f"{names.ERRORS_CONTAINER}/{report}":
        _announce_rejection(store, stored, rejection)
    return stored


def _announce_rejection(store: Store, record: PackageRecord, rejection: Rejection) -> None:
    store.events.append(record.ref, "input_rejected", code=rejection.code, message=rejection.message[:1000],
                        report=record.error_report)
    publish_event(store, EventType.INPUT_REJECTED, record.ref, {
        "packageRef": record.ref, "source": record.source_uri, "code": rejection.code,
        "message": rejection.message, "errorReport": record.error_report,
    })
    intake_rejections.add(1, {"reason": rejection.code})
    log_event(logger, "intake.rejected", logging.WARNING, code=rejection.code, reason=rejection.message[:300],
              report=record.error_report)


def _already_handled(store: Store, ref: str) -> bool:
    """True when an earlier trigger recorded this input; a Received row gets its queue message again."""
    existing = store.packages.get(ref)
    if existing is None:
        return False
    if existing.status is PackageStatus.RECEIVED:
        store.clients.send_json(names.PACKAGE_REQUESTS_QUEUE, {"packageRef": ref})
    log_event(logger, "intake.duplicate_trigger", status=existing.status.value)
    return True


def _validated(request: dict[str, Any]) -> PackageRequest:
    try:
        return PackageRequest.model_validate(request)
    except ValidationError as error:
        details = routing.validation_details(error)
        raise Rejection(_rejection_code(details), _summary(details), details) from None


def _rejection_code(details: list[dict[str, Any]]) -> str:
    """The most specific code for a set of validation errors (a bad email is more useful than 'schema')."""
    for detail in details:
        path, message = detail["path"], detail["message"]
        if path.endswith("/email") or path.endswith("initiator"):
            return "signer_email_invalid"
        if "language" in message and "unsupported" in message:
            return "language_unsupported"
        if "signing type" in message:
            return "signing_type_unsupported"
    return "schema_invalid"


def _summary(details: list[dict[str, Any]]) -> str:
    shown = "; ".join(f"{d['path'] or '(root)'}: {d['message']}" for d in details[:5])
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return f"{len(details)} problem(s): {shown}{more}"


def default_language(settings: Settings, request: dict[str, Any]) -> None:
    fallback = settings.default_document_language
    for document in request.get("documents", []):
        if isinstance(document, dict) and not document.get("language"):
            document["language"] = fallback


# ---------------------------------------------------------------------------------------------------
# Inbox: one PDF


def intake_inbox_blob(store: Store, settings: Settings, blob: BlobClient) -> PackageRecord | None:
    """A PDF in `signing-inbox/`: signers from its metadata or its folder's routing profile."""
    described = describe_blob(blob)
    if described is None:
        log_event(logger, "intake.blob_gone", blob=blob.blob_name)
        return None
    ref = package_ref_for_blob("inb", described.container, described.name, described.etag)
    with package_scope(ref), package_step("package.intake", ref, uploaded_trace(described.metadata)):
        if _already_handled(store, ref):
            return store.packages.get(ref)
        try:
            request_wire, marker_template = routing.single_pdf_request(
                blob_name=described.name, metadata=described.metadata, profiles=routing.load_profiles(store, settings))
            default_language(settings, request_wire)
            request = _validated(request_wire)
            markers = [marker_for(marker_template, n) for n in range(1, len(request.signers) + 1)]
            sha256, facts = check_document(settings, blob, etag=described.etag, size=described.size,
                                           markers=markers)
            document = stored(described.container, described.name, described.etag, described.size, sha256, facts,
                               request, 0)
            fields = resolve_signing_fields(request, [document], marker_template)
            return _record_accepted_checked(store, ref=ref, source="inbox", source_uri=described.uri,
                                            request=request, documents=[document], signing_fields=fields)
        except Rejection as rejection:
            return record_rejected(store, ref=ref, source="inbox", container=described.container,
                                   blob_name=described.name, etag=described.etag, rejection=rejection)
        except (UnicodeDecodeError, ValueError) as error:
            unreadable = Rejection("metadata_invalid", f"blob metadata could not be read: {error}")
            return record_rejected(store, ref=ref, source="inbox", container=described.container,
                                   blob_name=described.name, etag=described.etag, rejection=unreadable)
        except ResourceModifiedError:
            log_event(logger, "intake.blob_changed", blob=described.name)  # the new version triggers anew
            return None
        except AzureError:
            raise  # storage unreachable or refusing: the trigger's retry is the remedy
        except Exception as error:
            return record_rejected(store, ref=ref, source="inbox", container=described.container,
                                   blob_name=described.name, etag=described.etag, rejection=unexpected(error))


def unexpected(error: Exception) -> Rejection:
    """An error no check foresaw. Retrying would fail the same way and end in the poison queue without a
    word to the uploader, so the input is refused with a report; the exception's type is kept, its message
    (which may quote the input) is not."""
    log_event(logger, "intake.unexpected_error", logging.ERROR, error_type=type(error).__name__)
    return Rejection("intake_failed", f"the input could not be checked ({type(error).__name__}); "
                                      "it is kept as it is, and the error was logged")


def _record_accepted_checked(store: Store, **accepted: Any) -> PackageRecord:
    try:
        return record_accepted(store, **accepted)
    except RecordTooLarge as error:
        raise Rejection("package_too_large", str(error)) from None


def stored(container: str, blob_name: str, etag: str, size: int, sha256: str, facts: PdfFacts,
            request: PackageRequest, index: int) -> StoredDocument:
    spec = request.documents[index]
    return StoredDocument(
        container=container, blob=blob_name, etag=etag, size=size, sha256=sha256,
        name=spec.name or _file_stem(blob_name), language=spec.language or "en",
        external_reference=spec.external_reference, pages=facts.pages, last_page_size=facts.last_page_size,
        signature_fields=facts.signature_fields, markers_found=facts.markers_found,
    )


def _file_stem(blob_name: str) -> str:
    return routing.printable_name(re.sub(r"\.pdf$", "", blob_name.rpartition("/")[2], flags=re.IGNORECASE))


# ---------------------------------------------------------------------------------------------------
# Batches: a manifest and the documents it names


class _DuplicateKeys(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeys(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_manifest(raw: bytes, name: str = MANIFEST_NAME) -> dict[str, Any]:
    """The manifest as a dict, or a Rejection saying exactly why it is not acceptable JSON."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise Rejection("manifest_too_large", f"{name} is {len(raw)} bytes; the limit is {MAX_MANIFEST_BYTES}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Rejection("manifest_not_utf8", f"{name} is not UTF-8 text (byte {error.start})") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
    except _DuplicateKeys as error:
        raise Rejection("manifest_duplicate_key", str(error)) from None
    except json.JSONDecodeError as error:
        raise Rejection("manifest_not_json", f"{name} is not JSON: {error.msg} at line {error.lineno}, "
                                             f"column {error.colno}") from None
    except RecursionError:
        raise Rejection("manifest_too_deep", f"{name} nests too deeply") from None
    except ValueError as error:  # NaN/Infinity, or an integer with thousands of digits
        raise Rejection("manifest_not_json", f"{name} holds an unacceptable value: {error}") from None
    if not isinstance(parsed, dict):
        raise Rejection("schema_invalid", f"{name} must hold one JSON object")
    return parsed


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def batch_document_path(batch_folder: str, path: str) -> str:
    """The blob name of a manifest document; paths are relative to the batch folder and stay inside it."""
    segments = path.split("/")
    if (path.startswith("/") or "\\" in path or _CONTROL.search(path)
            or any(segment in ("", ".", "..") for segment in segments)):
        raise Rejection("document_path_invalid",
                        f"document path {path[:200]!r} must be relative to the batch folder, without '..', "
                        f"'.', empty segments, backslashes or control characters")
    if segments[-1].lower() == MANIFEST_NAME:
        raise Rejection("document_path_invalid", "the manifest cannot be one of its own documents")
    return f"{batch_folder}/{path}" if batch_folder else path


def intake_batch_manifest(store: Store, settings: Settings, manifest_blob: BlobClient) -> PackageRecord | None:
    """A `manifest.json` in `signing-batches/{batch}/`: the documents it names, next to it."""
    described = describe_blob(manifest_blob)
    if described is None:
        log_event(logger, "intake.blob_gone", blob=manifest_blob.blob_name)
        return None
    ref = package_ref_for_blob("bat", described.container, described.name, described.etag)
    with package_scope(ref), package_step("package.intake", ref, uploaded_trace(described.metadata)):
        if _already_handled(store, ref):
            return store.packages.get(ref)
        try:
            request, documents, fields = _check_batch(store, settings, manifest_blob, described)
            return _record_accepted_checked(store, ref=ref, source="batch", source_uri=described.uri,
                                            request=request, documents=documents, signing_fields=fields)
        except Rejection as rejection:
            return record_rejected(store, ref=ref, source="batch", container=described.container,
                                   blob_name=described.name, etag=described.etag, rejection=rejection)
        except ResourceModifiedError:
            log_event(logger, "intake.blob_changed", blob=described.name)
            return None
        except AzureError:
            raise
        except Exception as error:
            return record_rejected(store, ref=ref, source="batch", container=described.container,
                                   blob_name=described.name, etag=described.etag, rejection=unexpected(error))


def _check_batch(store: Store, settings: Settings, manifest_blob: BlobClient,
                 described: BlobInput) -> tuple[PackageRequest, list[StoredDocument], list[list[dict[str, Any]]]]:
    if described.size > MAX_MANIFEST_BYTES:
        raise Rejection("manifest_too_large",
                        f"manifest.json is {described.size} bytes; the limit is {MAX_MANIFEST_BYTES}")
    raw = manifest_blob.download_blob(etag=described.etag, match_condition=MatchConditions.IfNotModified).readall()
    manifest = parse_manifest(raw)
    default_language(settings, manifest)
    request = _validated(manifest)
    check_subscribers(settings, request)
    batch_folder = described.name.rpartition("/")[0]
    container = store.clients.container(described.container)
    documents: list[StoredDocument] = []
    signer_count = sum(1 for signer in request.signers if signer.type == "Signer")
    markers = [marker_for(routing.DEFAULT_MARKER_TEMPLATE, n) for n in range(1, signer_count + 1)]
    markers += [location.marker for signer in request.signers for location in signer.locations if location.marker]
    for index, spec in enumerate(request.documents):
        if spec.path is None:
            raise Rejection("document_content_not_allowed",
                            f"documents[{index}] gives content; a manifest names documents by path")
        blob_name = batch_document_path(batch_folder, spec.path)
        document_blob = container.get_blob_client(blob_name)
        found = describe_blob(document_blob)
        if found is None:
            raise Rejection("document_missing", f"documents[{index}]: {spec.path!r} does not exist "
                                                f"in {described.container}/{batch_folder or '(root)'}")
        sha256, facts = check_document(settings, document_blob, etag=found.etag, size=found.size, markers=markers)
        documents.append(stored(found.container, found.name, found.etag, found.size, sha256, facts, request, index))
    check_explicit_markers(request, documents)
    return request, documents, resolve_signing_fields(request, documents, routing.DEFAULT_MARKER_TEMPLATE)


def check_subscribers(settings: Settings, request: PackageRequest) -> None:
    """A subscriber the delivery guard would refuse (SSRF) is reported now rather than dead-lettered later."""
    policy = url_policy(settings)
    for index, url in enumerate(request.subscribers):
        try:
            check_url(url, policy)
        except UnsafeUrlError as error:
            raise Rejection("subscriber_unsafe", f"subscribers[{index}] cannot receive webhooks: {error}") from None


def check_explicit_markers(request: PackageRequest, documents: list[StoredDocument]) -> None:
    """A marker that names nothing in its document would make Connective refuse the package later."""
    for signer_index, signer in enumerate(request.signers):
        for location in signer.locations:
            if location.marker is None:
                continue
            document = documents[request.document_index(location.document)]
            if document.pages > MARKER_SCAN_MAX_PAGES:
                continue  # markers are looked for on the first pages only; Connective checks the rest
            if location.marker in document.markers_found or location.marker in document.signature_fields:
                continue
            raise Rejection("marker_not_found", f"signers[{signer_index}]: marker {location.marker!r} is neither "
                                                f"text nor an empty signature field in {document.blob}")
