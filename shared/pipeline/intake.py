"""Intake: turn an uploaded input into a package row (Received) and a `package-requests` message.

Intake only validates and records; creating the package at Connective is `shared.pipeline.creation`'s
job, behind the queue. Every input gets a packageRef derived from its container, name and ETag, so a
repeated trigger for the same upload finds its row and changes nothing. Bad input never raises: it
gets an error report in `signing-errors/`, a row in state InputRejected and an event, and the
original stays where it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError
from azure.storage.blob import BlobClient
from pydantic import ValidationError

from shared.config import Settings
from shared.logging import get_logger, log_event, package_scope
from shared.pipeline import routing
from shared.pipeline.documents import StoredDocument, check_document, stored
from shared.pipeline.errors_report import Rejection
from shared.pipeline.inputs import BlobInput, describe_blob, package_ref_for_blob, uploaded_trace
from shared.pipeline.layout import check_explicit_markers, marker_for, resolve_signing_fields
from shared.pipeline.manifest import MAX_MANIFEST_BYTES, batch_document_path, parse_manifest
from shared.pipeline.recording import already_handled, record_accepted_checked, record_rejected, unexpected
from shared.pipeline.spec import PackageRequest
from shared.storage.packages import PackageRecord
from shared.storage.store import Store
from shared.telemetry import package_step
from shared.webhooks.delivery import url_policy
from shared.webhooks.ssrf import UnsafeUrlError, check_url

logger = get_logger(__name__)

# What an input's check yields: the request, its documents and each document's signing fields.
Checked = tuple[PackageRequest, list[StoredDocument], list[list[dict[str, Any]]]]


# ---------------------------------------------------------------------------------------------------
# The request


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


def unsafe_subscriber(settings: Settings, request: PackageRequest) -> tuple[int, UnsafeUrlError] | None:
    """The first subscriber the delivery guard would refuse (SSRF), with the guard's reason: every way in
    reports it at once rather than dead-lettering its webhooks later."""
    policy = url_policy(settings)
    for index, url in enumerate(request.subscribers):
        try:
            check_url(url, policy)
        except UnsafeUrlError as error:
            return index, error
    return None


def check_subscribers(settings: Settings, request: PackageRequest) -> None:
    """A Rejection for the first unsafe subscriber (see `unsafe_subscriber`)."""
    unsafe = unsafe_subscriber(settings, request)
    if unsafe is not None:
        index, error = unsafe
        raise Rejection("subscriber_unsafe", f"subscribers[{index}] cannot receive webhooks: {error}")



# ---------------------------------------------------------------------------------------------------
# One input, from its trigger to its row


def _intake(store: Store, blob: BlobClient, *, prefix: str, source: str,
            check: Callable[[BlobInput], Checked]) -> PackageRecord | None:
    """Check one uploaded input and record the outcome: accepted (Received) or refused with a report.

    A blob deleted or replaced since its trigger fired is left alone (the new version triggers anew);
    storage errors propagate, since the trigger's retry is their remedy.
    """
    described = describe_blob(blob)
    if described is None:
        log_event(logger, "intake.blob_gone", blob=blob.blob_name)
        return None
    ref = package_ref_for_blob(prefix, described.container, described.name, described.etag)
    with package_scope(ref), package_step("package.intake", ref, uploaded_trace(described.metadata)):
        if already_handled(store, ref):
            return store.packages.get(ref)
        try:
            request, documents, fields = check(described)
            return record_accepted_checked(store, ref=ref, source=source, source_uri=described.uri,
                                           request=request, documents=documents, signing_fields=fields)
        except Rejection as rejection:
            return record_rejected(store, ref=ref, source=source, container=described.container,
                                   blob_name=described.name, etag=described.etag, rejection=rejection)
        except ResourceModifiedError:
            log_event(logger, "intake.blob_changed", blob=described.name)  # the new version triggers anew
            return None
        except AzureError:
            raise  # storage unreachable or refusing: the trigger's retry is the remedy
        except Exception as error:
            return record_rejected(store, ref=ref, source=source, container=described.container,
                                   blob_name=described.name, etag=described.etag, rejection=unexpected(error))


# ---------------------------------------------------------------------------------------------------
# Inbox: one PDF


def intake_inbox_blob(store: Store, settings: Settings, blob: BlobClient) -> PackageRecord | None:
    """A PDF in `signing-inbox/`: signers from its metadata or its folder's routing profile."""
    return _intake(store, blob, prefix="inb", source="inbox",
                   check=lambda described: _check_inbox(store, settings, blob, described))


def _check_inbox(store: Store, settings: Settings, blob: BlobClient, described: BlobInput) -> Checked:
    try:
        request_wire, marker_template = routing.single_pdf_request(
            blob_name=described.name, metadata=described.metadata, profiles=routing.load_profiles(store, settings))
        default_language(settings, request_wire)
        request = _validated(request_wire)
        markers = [marker_for(marker_template, n) for n in range(1, len(request.signers) + 1)]
        facts = check_document(settings, blob, etag=described.etag, size=described.size, markers=markers)
        document = stored(described.container, described.name, described.etag, described.size, facts,
                          request, 0)
        return request, [document], resolve_signing_fields(request, [document], marker_template)
    except Rejection:
        raise
    except (UnicodeDecodeError, ValueError) as error:
        raise Rejection("metadata_invalid", f"blob metadata could not be read: {error}") from None


# ---------------------------------------------------------------------------------------------------
# Batches: a manifest and the documents it names


def intake_batch_manifest(store: Store, settings: Settings, manifest_blob: BlobClient) -> PackageRecord | None:
    """A `manifest.json` in `signing-batches/{batch}/`: the documents it names, next to it."""
    return _intake(store, manifest_blob, prefix="bat", source="batch",
                   check=lambda described: _check_batch(store, settings, manifest_blob, described))


def _check_batch(store: Store, settings: Settings, manifest_blob: BlobClient,
                 described: BlobInput) -> Checked:
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
        facts = check_document(settings, document_blob, etag=found.etag, size=found.size, markers=markers)
        documents.append(stored(found.container, found.name, found.etag, found.size, facts, request, index))
    check_explicit_markers(request, documents)
    return request, documents, resolve_signing_fields(request, documents, routing.DEFAULT_MARKER_TEMPLATE)
