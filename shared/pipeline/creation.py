"""Creating a recorded package at Connective, exactly once.

`create(ref)` runs for each `package-requests` message. The row is the lock and the memory:

1. Received → Creating, with a lease (`creation_lease_until`) so a duplicate message never runs
   in parallel with a live attempt. The lease is short (`CREATION_LEASE_S`) and the live attempt
   renews it before each Connective call, so that it always outlasts the call (`longest_step_s`).
   A Creating row whose lease has lapsed belongs to a dead or failed attempt, and the new attempt
   resumes it; an attempt that finds its lease taken over stops.
2. Resuming, the package may exist at Connective although the row never learnt its id (the
   create's answer was lost). So before creating anything, a resumed attempt looks it up by
   ExternalPackageReference (= packageRef) in Get Package List. A Draft found is completed; a
   package past Draft is only recorded.
3. One document: Create Instant Package (1 call). Several: Create Package, Add Document per
   document, Set Process Information, Set Package Status Pending (N + 3 calls). The package id is
   written to the row as soon as it is known.
4. The create/status answer (which already has the package status and its actors) goes through
   `status_sync.apply_status`, which moves the row to Pending and records signers, documents and
   expiry, with the history and webhook events. No extra status read.

Errors: RateLimitDeferred or 429 → the message comes back later; AmbiguousCreateError and other
transient errors → raise, the host retries, and the next attempt looks the package up first; a
look-up that Connective refuses (LookupFailed) is retried the same way and never refuses the input;
400/409 → the input is refused (InputRejected with an error report) and a Draft left behind is
deleted, but only while the package is still a Draft: a package that has left Draft was started by
an attempt whose answer got lost, and it is recorded like any status read (never InputRejected).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import IO, Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.config import Settings
from shared.connective.client import ConnectiveClient
from shared.connective.errors import (
    ConflictError,
    ConnectiveError,
    ConnectiveHTTPError,
    InvalidRequestError,
    NotFoundError,
    RetryLater,
)
from shared.connective.models import (
    Actor,
    ActorType,
    DocumentLocations,
    Location,
    PackageInfo,
    PackageListItem,
    SigningField,
    SigningTypeInfo,
    Stakeholder,
)
from shared.connective.models import PackageStatus as ConnectiveStatus
from shared.logging import get_logger, log_event, package_scope
from shared.pipeline import status_sync, tokens
from shared.pipeline.documents import HashedStream, StoredDocument
from shared.pipeline.errors_report import Rejection
from shared.pipeline.recording import record_rejection_of_row
from shared.pipeline.spec import STORED, PackageRequest
from shared.retrying import queue_delay_s
from shared.storage import names
from shared.storage.packages import PackageRecord, same_instant, utcnow
from shared.storage.status import PackageStatus
from shared.storage.store import Store

logger = get_logger(__name__)

# Time between two Connective calls of one attempt (row writes, each retried by azure-core through a
# short storage outage) that the lease must cover on top of the longest call.
LEASE_MARGIN_S = 15.0
# Connective's clock and ours may disagree; the look-up window starts this much before the row.
LOOKUP_CLOCK_SLACK = timedelta(minutes=15)
LOOKUP_PAGE_SIZE = 100
_UNCREATED = frozenset({PackageStatus.RECEIVED, PackageStatus.CREATING})


class Outcome(StrEnum):
    CREATED = "created"  # the package is at Connective and the row says so
    RECORDED = "recorded"  # an earlier attempt had created it; this one recorded it
    NOTHING_TO_DO = "nothing_to_do"  # no row, or the row is past creation
    BUSY = "busy"  # another attempt holds the lease; the message comes back later
    DEFERRED = "deferred"  # no rate token; the message comes back later
    REJECTED = "rejected"  # Connective refused the input


def longest_step_s(client: ConnectiveClient) -> float:
    """The longest one Connective call of an attempt may take: its wait for a rate token, its retries
    (bounded by CONNECTIVE_RETRY_TOTAL_S) and the timeouts of its last attempt."""
    config = client.config
    return client.rate_wait_s + config.retry.total_s + config.connect_timeout_s + config.read_timeout_s


def lease_length(settings: Settings, client: ConnectiveClient) -> timedelta:
    """CREATION_LEASE_S, raised when needed so that a renewed lease outlasts the longest call."""
    return timedelta(seconds=max(settings.creation_lease_s, longest_step_s(client) + LEASE_MARGIN_S))


class LeaseLost(Exception):
    """The row left Creating, or another attempt took it over after this attempt's lease lapsed."""


class _Lease:
    """This attempt's hold on the row: taken by the claim, renewed before each Connective call."""

    def __init__(self, store: Store, ref: str, length: timedelta, renew_below: timedelta,
                 now: Callable[[], datetime]) -> None:
        self.store, self.ref, self.length, self.renew_below, self.now = store, ref, length, renew_below, now
        self.until: datetime | None = None
        self.resuming = False
        self.busy_for_s = 0.0

    def renew(self) -> None:
        """Make sure the lease outlasts the next call; LeaseLost when the row is no longer this attempt's."""
        at = self.now()
        if self.until is not None and self.until - at > self.renew_below:
            return
        renewed = at + self.length
        held = False

        def change(record: PackageRecord) -> bool:
            nonlocal held
            held = record.status == PackageStatus.CREATING and same_instant(record.creation_lease_until, self.until)
            if held:
                record.creation_lease_until = renewed
            return held

        self.store.packages.mutate(self.ref, change)
        if not held:
            raise LeaseLost(self.ref)
        self.until = renewed


def create(ref: str, *, store: Store, settings: Settings, client: ConnectiveClient,
           now: Callable[[], datetime] = utcnow) -> Outcome:
    with package_scope(ref):
        step = timedelta(seconds=longest_step_s(client) + LEASE_MARGIN_S)
        claim = _Lease(store, ref, lease_length(settings, client), step, now)
        record = _claim(store, ref, claim, now())
        if record is None:
            log_event(logger, "creation.nothing_to_do")
            return Outcome.NOTHING_TO_DO
        if claim.busy_for_s > 0:
            delay = int(claim.busy_for_s) + 1
            store.clients.send_json(names.PACKAGE_REQUESTS_QUEUE, {"packageRef": ref}, delay_s=delay)
            log_event(logger, "creation.busy", retry_in_s=delay)
            return Outcome.BUSY
        try:
            try:
                return _run(store, settings, client, record, claim)
            except (InvalidRequestError, ConflictError) as refused:
                return _refused(store, client, ref, refused)
            except Rejection as rejection:
                return _refused_input(store, client, ref, rejection)
            except ResourceModifiedError:
                changed = Rejection("document_changed",
                                    "a document changed after it was validated; upload it again")
                return _refused_input(store, client, ref, changed)
        except LeaseLost:
            # Another attempt resumed the row (or it moved on): that attempt finishes the work.
            log_event(logger, "creation.lease_lost", logging.WARNING)
            return Outcome.BUSY
        except RetryLater as deferred:
            delay = queue_delay_s(deferred, settings)
            # Neither a deferred nor a throttled call was processed. When this attempt started fresh and
            # holds no package id, nothing exists at Connective: the next attempt needs no look-up.
            _release(store, ref, back_to_received=not claim.resuming)
            store.clients.send_json(names.PACKAGE_REQUESTS_QUEUE, {"packageRef": ref}, delay_s=delay)
            log_event(logger, "creation.deferred", retry_in_s=delay)
            return Outcome.DEFERRED
        except Exception:
            # AmbiguousCreateError, 5xx, transport: the next attempt may start at once and looks up first.
            _release(store, ref)
            raise


def _claim(store: Store, ref: str, claim: _Lease, at: datetime) -> PackageRecord | None:
    """Take the row for this attempt. None: nothing to do. `claim.busy_for_s` > 0: someone else has it."""

    def change(record: PackageRecord) -> bool:
        claim.resuming, claim.busy_for_s = False, 0.0
        if record.status == PackageStatus.RECEIVED:
            record.status = PackageStatus.CREATING
        elif record.status == PackageStatus.CREATING:
            lease = record.creation_lease_until
            if lease is not None and lease > at:
                claim.busy_for_s = min((lease - at).total_seconds(), claim.length.total_seconds())
                return False
            claim.resuming = True
        else:
            return False
        record.creation_lease_until = at + claim.length
        return True

    record = store.packages.mutate(ref, change)
    if record is None or record.status != PackageStatus.CREATING:
        return None
    claim.until = record.creation_lease_until
    return record


def _release(store: Store, ref: str, back_to_received: bool = False) -> None:
    def change(record: PackageRecord) -> bool:
        if record.status != PackageStatus.CREATING or record.creation_lease_until is None:
            return False
        record.creation_lease_until = None
        if back_to_received and record.connective_package_id is None:
            record.status = PackageStatus.RECEIVED
        return True

    store.packages.mutate(ref, change)


# ---------------------------------------------------------------------------------------------------


def _run(store: Store, settings: Settings, client: ConnectiveClient, record: PackageRecord,
         lease: _Lease) -> Outcome:
    plan = _Plan(store, settings, record)
    package_id = record.connective_package_id
    if lease.resuming and package_id is None:
        lease.renew()
        found = _look_up(client, record)
        if found is not None:
            package_id = found.id
            _remember_package_id(store, record.ref, package_id)
            log_event(logger, "creation.found_by_reference", package_id=package_id,
                      connective_status=str(found.package_status))
    if package_id is not None:
        lease.renew()
        info = client.get_package_status(package_id)
        if info.package_status is not ConnectiveStatus.DRAFT:
            _finish(store, record.ref, package_id, info)
            return Outcome.RECORDED
        _complete_draft(store, client, plan, lease, package_id)
        return Outcome.RECORDED
    lease.renew()
    if len(plan.documents) == 1:
        instant = client.create_instant_package(plan.instant_request(), plan.document_source(0),
                                                document_length=plan.documents[0].size)
        _finish(store, record.ref, instant.package_id, instant, plan.sent_hashes())
    else:
        created = client.create_package(plan.package_fields())
        _remember_package_id(store, record.ref, created.package_id)
        _complete_draft(store, client, plan, lease, created.package_id, fresh=True)
    log_event(logger, "creation.created", documents=len(plan.documents))
    return Outcome.CREATED


def _complete_draft(store: Store, client: ConnectiveClient, plan: _Plan, lease: _Lease, package_id: str,
                    fresh: bool = False) -> None:
    """Add the documents the Draft lacks, set the process and start it."""
    existing: dict[str, DocumentLocations] = {}
    if not fresh:
        lease.renew()
        for document in client.get_signing_locations(package_id).documents:
            if document.external_document_reference:
                existing[document.external_document_reference] = document
    location_ids: dict[str, str] = {}
    # Each document's locations, kept on the row: the archive tells the audit proof's parts apart by them.
    locations_by_document: dict[str, list[Location]] = {}
    for index in range(len(plan.documents)):
        reference = plan.document_reference(index)
        if reference in existing:
            document_id, locations = existing[reference].document_id, existing[reference].locations
        else:
            lease.renew()
            added = client.add_document_to_package(package_id, plan.add_document_request(index),
                                                   plan.document_source(index),
                                                   document_length=plan.documents[index].size)
            document_id, locations = added.document_id, added.locations
        locations_by_document[document_id] = locations
        location_ids.update({f"{index}:{location.label}": location.id for location in locations if location.label})
    lease.renew()
    client.set_process_information(package_id, {"Stakeholders": plan.stakeholders(location_ids)})
    lease.renew()
    info = client.set_package_status(package_id, ConnectiveStatus.PENDING)
    for listed in info.package_documents:
        if not listed.locations:
            listed.locations = locations_by_document.get(listed.document_id, [])
    _finish(store, plan.ref, package_id, info, plan.sent_hashes())


class LookupFailed(Exception):
    """Get Package List refused the look-up. Nothing is wrong with the user's input: the attempt is retried."""


def _look_up(client: ConnectiveClient, record: PackageRecord) -> PackageListItem | None:
    """The package an earlier attempt created for this row, if any.

    No SortField and no SortOrder: no public source lists SortField's values, and a server that
    refuses ours must not stop the recovery. Every page created since the row is read, whatever order
    the server keeps. A refused look-up raises LookupFailed, never an error that would reject the input.
    """
    wanted = record.ref.lower()
    since = record.created_at - LOOKUP_CLOCK_SLACK
    try:
        for item in client.iter_package_list(page_size=LOOKUP_PAGE_SIZE, created_after_date=since):
            if (item.external_package_reference or "").lower() == wanted:
                return item
    except (InvalidRequestError, ConflictError, NotFoundError) as refused:
        log_event(logger, "creation.lookup_failed", logging.WARNING, status=refused.status,
                  error_code=refused.error_code)
        raise LookupFailed(f"Package List answered {refused.status} {refused.error_code or ''}".strip()) from refused
    return None


def _remember_package_id(store: Store, ref: str, package_id: str) -> None:
    def change(record: PackageRecord) -> bool:
        if record.connective_package_id == package_id:
            return False
        record.connective_package_id = package_id
        return True

    store.packages.mutate(ref, change)


def _finish(store: Store, ref: str, package_id: str, info: PackageInfo,
            sent_hashes: dict[int, str] | None = None) -> None:
    """Record the package id, the hashes of the documents sent and the answer that created the package;
    apply_status moves the row forward."""

    def change(record: PackageRecord) -> bool:
        record.connective_package_id = package_id
        record.creation_lease_until = None
        for index, sha256 in (sent_hashes or {}).items():
            record.spec["documents"][index]["sha256"] = sha256
        return True

    store.packages.mutate(ref, change)
    status_sync.apply_status(store, ref, info, source="creation")


# ---------------------------------------------------------------------------------------------------
# Refusals


def _refused(store: Store, client: ConnectiveClient, ref: str, error: ConnectiveHTTPError) -> Outcome:
    code = "connective_rejected" if error.status == 400 else "connective_conflict"
    rejection = Rejection(code, f"Connective answered {error.status} {error.error_code or ''}: {error.message}"
                          .replace("  ", " "),
                          [{"operation": error.operation, "status": error.status, "errorCode": error.error_code}])
    return _refused_input(store, client, ref, rejection)


def _refused_input(store: Store, client: ConnectiveClient, ref: str, rejection: Rejection) -> Outcome:
    """Refuse the input, unless its package already went out for signing.

    A refusal can come from a step repeated after an unclear attempt (Set Package Status answering
    409 because the lost attempt started the package and a signer finished it). A package that has
    left Draft is real: it is recorded and its row follows Connective. Only a row still being
    created can become InputRejected; a callback may have moved it on meanwhile.
    """
    record = store.packages.get(ref)
    if record is None or record.status not in _UNCREATED:
        log_event(logger, "creation.refusal_overtaken", code=rejection.code,
                  status=record.status.value if record else None)
        return Outcome.NOTHING_TO_DO
    package_id = record.connective_package_id
    if package_id:
        info = client.get_package_status(package_id)
        if info.package_status is not ConnectiveStatus.DRAFT:
            log_event(logger, "creation.refusal_overtaken", code=rejection.code, package_id=package_id,
                      connective_status=info.package_status.value)
            _finish(store, ref, package_id, info)
            return Outcome.RECORDED
        _delete_draft(client, package_id)
    record_rejection_of_row(store, ref, rejection)
    return Outcome.REJECTED


def _delete_draft(client: ConnectiveClient, package_id: str) -> None:
    """A refused package stays a Draft at Connective; delete it so no half-made package lingers."""
    try:
        client.delete_package(package_id)
    except ConnectiveError as error:
        log_event(logger, "creation.draft_not_deleted", logging.WARNING, package_id=package_id, error=str(error))


# ---------------------------------------------------------------------------------------------------
# Requests built from the row




class _Plan:
    """The Connective requests for one recorded package."""

    def __init__(self, store: Store, settings: Settings, record: PackageRecord) -> None:
        self.store = store
        self.settings = settings
        self.ref = record.ref
        self.created_at = record.created_at
        self.request = PackageRequest.model_validate(record.spec["request"], context={STORED: True})
        self.documents = [StoredDocument.model_validate(d) for d in record.spec["documents"]]
        self.signing_fields: list[list[dict[str, Any]]] = record.spec["signingFields"]
        self._sent: dict[int, HashedStream] = {}

    def sent_hashes(self) -> dict[int, str]:
        """The SHA-256 of each document this attempt sent whole, by index."""
        return {index: stream.sha256() for index, stream in self._sent.items()
                if stream.bytes_read == self.documents[index].size}

    def document_reference(self, index: int) -> str:
        return f"{self.ref}-{index}"

    def _initiator(self) -> str:
        initiator = self.request.initiator or self.settings.default_initiator
        if not initiator:
            raise Rejection("initiator_missing", "the request names no initiator and DEFAULT_INITIATOR is not set")
        return str(initiator)

    def _expiry(self) -> datetime | None:
        if self.request.expires_at is not None:
            if self.request.expires_at <= datetime.now(UTC):
                # Valid when submitted, passed while the package waited (for rate tokens, say): Connective
                # would refuse it, and no retry can help. The input is refused with that reason.
                raise Rejection("expiry_passed", f"expiresAt ({self.request.expires_at.isoformat()}) passed "
                                                 "before the package could be created; submit it with a later expiry")
            return self.request.expires_at
        if self.request.expiry_days is not None:
            return datetime.now(UTC).replace(microsecond=0) + timedelta(days=self.request.expiry_days)
        return None

    def package_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "Initiator": self._initiator(),
            "PackageName": self.request.name,
            "ExternalPackageReference": self.ref,
            "CallBackUrl": tokens.callback_url(self.settings, self.ref),
            "NotificationCallBackUrl": tokens.notification_url(self.settings, self.ref),
            "DocumentGroupCode": self.request.document_group_code,
            "CorrelationId": self.request.correlation_id,
        }
        expiry = self._expiry()
        if expiry is not None:
            fields["ExpiryTimestamp"] = expiry.isoformat().replace("+00:00", "Z")
        return {key: value for key, value in fields.items() if value is not None}

    def _document_fields(self, index: int) -> dict[str, Any]:
        document = self.documents[index]
        fields = {"DocumentName": document.name, "DocumentLanguage": document.language,
                  "ExternalDocumentReference": self.document_reference(index)}
        if any("Itsme" in signer.signing_types for signer in self.request.signers):
            # itsme signs PDF/A only, and Connective does not convert on its own (docs/CONNECTIVE_CONTRACT.md).
            fields["TargetType"] = self.settings.itsme_target_type
        return fields

    def instant_request(self) -> dict[str, Any]:
        # Create Instant Package has no PackageName in the connector's swagger: the package takes the
        # document's name, so a one-document package's name is the name given to its document.
        package = {key: value for key, value in self.package_fields().items() if key != "PackageName"}
        return {**package, **self._document_fields(0), "Stakeholders": self.stakeholders(inline_document=0)}

    def add_document_request(self, index: int) -> dict[str, Any]:
        return {**self._document_fields(index), "SigningFields": self.signing_fields[index]}

    def document_source(self, index: int) -> Callable[[], IO[bytes]]:
        """A fresh stream of the validated blob version for each (re)send; it never sits in memory."""
        document = self.documents[index]
        blob = self.store.clients.container(document.container).get_blob_client(document.blob)

        def open_stream() -> IO[bytes]:
            try:
                downloader = blob.download_blob(etag=document.etag, match_condition=MatchConditions.IfNotModified)
            except ResourceNotFoundError:
                raise Rejection("document_missing", f"{document.blob} was deleted before the package was created"
                                ) from None
            # The last stream opened is the one a successful send read: a re-send opens a new one.
            self._sent[index] = HashedStream(downloader)  # type: ignore[arg-type]  # it has read(size)
            return self._sent[index]  # type: ignore[return-value]  # read(size) is all the upload uses

        return open_stream

    def stakeholders(self, location_ids: dict[str, str] | None = None,
                     inline_document: int | None = None) -> list[dict[str, Any]]:
        """One stakeholder per signer. Actors sign on inline SigningFields (instant) or on location ids."""
        stakeholders = []
        default_language = self.documents[0].language
        for signer_index, signer in enumerate(self.request.signers):
            first_name, last_name = signer.first_and_last_name
            actor = Actor(
                type=ActorType(signer.type), order_index=signer.order, phonenumber=signer.phone,
                send_notifications=True,
                signing_types=[SigningTypeInfo(signing_type=t) for t in signer.signing_types]
                if signer.type == "Signer" else None,
            )
            mine = f"s{signer_index}-"
            if signer.type == "Signer" and inline_document is not None:
                actor.signing_fields = [SigningField.model_validate(field)
                                        for field in self.signing_fields[inline_document]
                                        if str(field.get("Label", "")).startswith(mine)]
            elif signer.type == "Signer" and location_ids is not None:
                actor.location_ids = [location_id for key, location_id in location_ids.items()
                                      if key.split(":", 1)[1].startswith(mine)]
            stakeholder = Stakeholder(
                email_address=str(signer.email), first_name=first_name, last_name=last_name or None,
                language=signer.language or default_language,
                external_stakeholder_reference=signer.external_reference, actors=[actor],
            )
            stakeholders.append(stakeholder.to_wire())
        return stakeholders
