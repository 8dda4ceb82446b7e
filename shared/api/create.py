"""POST /api/packages: a package request from JSON, through the same intake path as a manifest.

Documents come as base64 `content` (staged to `package-staging/{packageRef}/{index}-{name}`) or as
a blob `path` (`container/blob` in the app's document storage, in one of `PATH_CONTAINERS`). Each
is checked like an uploaded one (`shared.pipeline.documents.check_document`), then the Received row
is written and the `package-requests` message sent by `shared.pipeline.recording.record_accepted`.

The intake helpers used here (`default_language`, `stored`, `check_explicit_markers`) are the
batch path's own, so a document means the same thing through either door.

Unlike blob intake, the caller is waiting for an answer, so bad input is refused synchronously
with a 400 problem (and the staged copies are removed) instead of an InputRejected row.

Idempotency: an `Idempotency-Key` header, or else the request's `externalReference`, maps to a
fixed packageRef (`api-` + a hash). Before any side effect the request reserves that ref: a
`{packageRef}/.reservation` blob in `package-staging`, created only if absent, holding a hash of
the body. Only the holder stages documents under the ref, so a request never touches (or cleans up)
another's staged copy. A repeated POST with the same body finds the row and answers the same 202,
or, while the first is still being checked, 409 with Retry-After; the same key with another body is
409. The row keeps the hash (`RequestHash`), so the comparison holds after the reservation is gone.
A reservation left by a request that died is taken over after `RESERVATION_STALE_AFTER`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContentSettings
from pydantic import ValidationError

from shared.api.body import validation_problem
from shared.api.problems import ApiProblem, FieldError
from shared.config import Settings
from shared.logging import get_logger, log_event, package_scope
from shared.pipeline import intake, layout, recording, routing
from shared.pipeline.documents import StoredDocument, check_document, stored
from shared.pipeline.errors_report import Rejection
from shared.pipeline.inputs import describe_blob
from shared.pipeline.spec import PackageRequest, is_control
from shared.storage import names
from shared.storage.packages import PackageRecord, RecordTooLarge
from shared.storage.store import Store

_log = get_logger(__name__)

PATH_CONTAINERS = (names.STAGING_CONTAINER, names.BATCHES_CONTAINER)
IDEMPOTENCY_HEADER = "Idempotency-Key"
RESERVATION_BLOB = ".reservation"
# Longer than any one request takes (documents of up to API_MAX_BODY_MB are checked in seconds).
RESERVATION_STALE_AFTER = timedelta(minutes=15)
IN_PROGRESS_RETRY_AFTER_S = 2
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def package_ref_for(idempotency_key: str | None, external_reference: str | None) -> str:
    """`api-` + a hash of the caller's key (stable across retries), else a fresh random ref."""
    if idempotency_key:
        seed = f"idempotency-key\n{idempotency_key}"
    elif external_reference:
        seed = f"external-reference\n{external_reference}"
    else:
        return f"api-{uuid.uuid4().hex[:24]}"
    return f"api-{hashlib.sha256(seed.encode('utf-8')).hexdigest()[:24]}"


def _parse(settings: Settings, body: dict[str, Any]) -> PackageRequest:
    intake.default_language(settings, body)
    try:
        return PackageRequest.model_validate(body)
    except ValidationError as error:
        raise validation_problem(error) from None


def _check_subscribers(settings: Settings, request: PackageRequest) -> None:
    unsafe = intake.unsafe_subscriber(settings, request)
    if unsafe is not None:
        index, error = unsafe
        raise ApiProblem(400, f"subscribers[{index}] cannot receive webhooks: {error}.",
                         errors=[FieldError(field=f"subscribers[{index}]", message=str(error))])


def _staged_name(ref: str, index: int, name: str | None) -> str:
    stem = _SAFE_NAME.sub("-", name or f"document-{index}").strip("-.")[:100] or f"document-{index}"
    return f"{ref}/{index}-{stem}.pdf" if not stem.lower().endswith(".pdf") else f"{ref}/{index}-{stem}"


def _stage(store: Store, ref: str, request: PackageRequest) -> list[tuple[str, str]]:
    """Upload base64 documents; returns (container, blob) for every document, in order."""
    locations: list[tuple[str, str]] = []
    staging = store.clients.container(names.STAGING_CONTAINER)
    for index, document in enumerate(request.documents):
        if document.content is None:
            container, _, blob_name = (document.path or "").partition("/")
            if (container not in PATH_CONTAINERS or not blob_name or ".." in blob_name.split("/")
                    or any(is_control(character) for character in blob_name)):
                raise ApiProblem(400, f"documents[{index}].path must be container/blob with a container among "
                                      f"{', '.join(PATH_CONTAINERS)}.",
                                 errors=[FieldError(field=f"documents[{index}].path", message="unsupported path")])
            locations.append((container, blob_name))
            continue
        try:
            data = base64.b64decode(document.content, validate=True)
        except (binascii.Error, ValueError):
            raise ApiProblem(400, f"documents[{index}].content is not valid base64.",
                             errors=[FieldError(field=f"documents[{index}].content", message="invalid base64")]) \
                from None
        blob_name = _staged_name(ref, index, document.name)
        staging.upload_blob(blob_name, data, overwrite=True,
                            content_settings=ContentSettings(content_type="application/pdf"))
        locations.append((names.STAGING_CONTAINER, blob_name))
    return locations


def _unstage(store: Store, ref: str) -> None:
    """Remove this request's staged copies and its reservation (it holds the reservation: nobody else staged)."""
    staging = store.clients.container(names.STAGING_CONTAINER)
    for blob in staging.list_blobs(name_starts_with=f"{ref}/"):
        staging.delete_blob(blob.name)


def request_hash(body: dict[str, Any]) -> str:
    """The body's identity for idempotency: the same JSON value in any key order or spacing hashes the same."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _key_reused(ref: str) -> ApiProblem:
    return ApiProblem(409, f"The {IDEMPOTENCY_HEADER} (or externalReference) of this request was used before with "
                           "a different body; send a new key for a new package.")


def _compare(record: PackageRecord, body_hash: str) -> None:
    if record.request_hash and record.request_hash != body_hash:
        raise _key_reused(record.ref)


def _reserve(store: Store, ref: str, body_hash: str) -> PackageRecord | None:
    """Take the ref for this request before any side effect. Returns the row when one exists already
    (a repeat); raises 409 when another request holds the ref (in progress, or another body)."""
    reservation = store.clients.container(names.STAGING_CONTAINER).get_blob_client(f"{ref}/{RESERVATION_BLOB}")
    for _ in range(2):
        try:
            reservation.upload_blob(body_hash.encode(), overwrite=False)
            return None
        except ResourceExistsError:
            pass
        existing = store.packages.get(ref)  # the holder may have finished meanwhile
        if existing is not None:
            return existing
        try:
            held = reservation.download_blob()
            holder_hash = held.readall().decode()
        except ResourceNotFoundError:
            continue  # released meanwhile: try again
        if holder_hash != body_hash:
            raise _key_reused(ref)
        if datetime.now(UTC) - held.properties.last_modified > RESERVATION_STALE_AFTER:
            with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
                reservation.delete_blob(etag=held.properties.etag, match_condition=MatchConditions.IfNotModified)
            continue
        raise ApiProblem(409, "A request with this key is still being processed; send it again shortly.",
                         headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER_S)})
    raise ApiProblem(409, "A request with this key is still being processed; send it again shortly.",
                     headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER_S)})


def _release(store: Store, ref: str) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        store.clients.container(names.STAGING_CONTAINER).delete_blob(f"{ref}/{RESERVATION_BLOB}")


def _check_documents(store: Store, settings: Settings, request: PackageRequest,
                     locations: list[tuple[str, str]]) -> list[StoredDocument]:
    signer_count = sum(1 for signer in request.signers if signer.type == "Signer")
    markers = [layout.marker_for(routing.DEFAULT_MARKER_TEMPLATE, n) for n in range(1, signer_count + 1)]
    markers += [location.marker for signer in request.signers for location in signer.locations if location.marker]
    documents: list[StoredDocument] = []
    for index, (container, blob_name) in enumerate(locations):
        blob = store.clients.container(container).get_blob_client(blob_name)
        found = describe_blob(blob)
        if found is None:
            raise Rejection("document_missing", f"documents[{index}]: {container}/{blob_name} does not exist")
        facts = check_document(settings, blob, etag=found.etag, size=found.size, markers=markers)
        documents.append(stored(found.container, found.name, found.etag, found.size, facts,
                                        request, index))
    layout.check_explicit_markers(request, documents)
    return documents


def _with_staged_paths(request: PackageRequest, locations: list[tuple[str, str]]) -> PackageRequest:
    """The request as the row keeps it: every document named by its blob path, no bytes."""
    documents = [document.model_copy(update={"path": f"{container}/{blob}", "content": None})
                 for document, (container, blob) in zip(request.documents, locations, strict=True)]
    return request.model_copy(update={"documents": documents})


def create_package(store: Store, settings: Settings, body: dict[str, Any],
                   idempotency_key: str | None) -> tuple[PackageRecord, bool]:
    """Accept a package request. Returns (row, created); raises ApiProblem for bad input."""
    body_hash = request_hash(body)
    request = _parse(settings, body)
    ref = package_ref_for(idempotency_key, request.external_reference)
    with package_scope(ref):
        existing = store.packages.get(ref) or _reserve(store, ref, body_hash)
        if existing is not None:
            _compare(existing, body_hash)
            log_event(_log, "api.package.repeated", status=existing.status.value)
            return existing, False
        try:
            _check_subscribers(settings, request)
            locations = _stage(store, ref, request)
            documents = _check_documents(store, settings, request, locations)
            fields = layout.resolve_signing_fields(request, documents, routing.DEFAULT_MARKER_TEMPLATE)
            record = recording.record_accepted(store, ref=ref, source="api", source_uri=f"api/{ref}",
                                            request=_with_staged_paths(request, locations), documents=documents,
                                            signing_fields=fields, request_hash=body_hash)
        except Rejection as rejection:
            _unstage(store, ref)
            raise ApiProblem(400, rejection.message, problem_type=f"urn:connective-functions:{rejection.code}") \
                from None
        except RecordTooLarge as error:
            _unstage(store, ref)
            raise ApiProblem(400, f"{error}.", problem_type="urn:connective-functions:package_too_large") from None
        except Exception:
            _unstage(store, ref)  # a 400 problem, or an error: nothing of this request stays behind
            raise
        _release(store, ref)
        return record, True
