"""Applying a Connective status read (Get Package Status) to our package row.

This is the one place that maps Connective's answer onto `SigningPackages`: callbacks, deferred
status reads and the timer's reconciliation all call `apply_status`. Its rules:

- The row changes only through `PackageRepository.mutate` (ETag-guarded), and the package status
  only moves forward (`can_move`); a stale read taken before a newer one changes nothing.
- Each signer's state moves forward too (Draft < Available < InProgress < a final actor status),
  so per-signer history survives any order of reads.
- Every change is appended to `PackageEvents` and published to webhook subscribers.
- Finished requests the archive; Rejected, Revoked, Expired and Failed record their reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.connective.models import ActorState, PackageInfo, StakeholderState
from shared.logging import get_logger, log_event
from shared.storage import names
from shared.storage.packages import PackageRecord, same_instant, utcnow
from shared.storage.status import PackageStatus, can_move
from shared.storage.store import Store
from shared.webhooks.publish import EventType, publish_event

_log = get_logger(__name__)

# Actor statuses in the order an actor goes through them; the last group are final.
_ACTOR_RANK = {"draft": 0, "available": 1, "inprogress": 2, "finished": 3, "rejected": 3, "failed": 3, "skipped": 3}
_ACTED = {"finished": "signed", "rejected": "rejected", "failed": "failed", "skipped": "skipped"}
_REASONED = (PackageStatus.REJECTED, PackageStatus.REVOKED, PackageStatus.EXPIRED, PackageStatus.FAILED)
# A Finished row whose archive request is older than this (the message was lost, or went to the
# poison queue) gets another one when something touches the row.
ARCHIVE_REREQUEST_AFTER = timedelta(hours=1)


@dataclass
class SignerChange:
    actor_id: str
    email: str | None
    actor_type: str | None
    previous_status: str | None
    status: str
    completed_at: str | None
    reason: str | None

    @property
    def acted(self) -> bool:
        """A signer (not a receiver) reached a final actor status."""
        return self.status.lower() in _ACTED and (self.actor_type or "Signer").lower() != "receiver"


@dataclass
class ApplyResult:
    record: PackageRecord | None  # the row as stored afterwards; None when there is no row
    previous_status: PackageStatus | None = None
    status_changed: bool = False
    signer_changes: list[SignerChange] = field(default_factory=list)
    archive_requested: bool = False

    @property
    def found(self) -> bool:
        return self.record is not None

    @property
    def status(self) -> PackageStatus | None:
        return self.record.status if self.record else None


def apply_status(store: Store, ref: str, status_response: PackageInfo, *, source: str,
                 now: datetime | None = None, read_lease: datetime | None = None) -> ApplyResult:
    """Merge one Get Package Status answer into the row of `ref`.

    `source` names who read it (callback, status-refresh, reconcile, ...) for the history. `now` is
    when the read was sent (default: now): the answer covers the callbacks that arrived before it,
    and no later one, which may report a change the answer does not hold. `read_lease` is the
    reader's `status_read_until`, released by this write. Safe to call with stale, repeated or
    out-of-order answers.
    """
    read_at = now or utcnow()
    connective_status = _our_status(status_response)
    outcome = ApplyResult(record=None)

    def change(record: PackageRecord) -> bool:
        # mutate() may call this again after an ETag conflict: start from scratch each time.
        outcome.previous_status = record.status
        outcome.status_changed = False
        outcome.signer_changes = _merge_signers(record, status_response, read_at)
        if connective_status is not None and can_move(record.status, connective_status):
            _move(record, connective_status, status_response, read_at)
            outcome.status_changed = True
        if connective_status is not None and record.status == connective_status:
            record.connective_status = status_response.package_status.value
        documents = _documents(status_response, record.documents)
        if documents and documents != record.documents:
            record.documents = documents
        if status_response.expiry_timestamp and (
                record.expiry_timestamp is None or status_response.expiry_timestamp > record.expiry_timestamp):
            # Extensions only push the expiry later; an older read must not undo one.
            record.expiry_timestamp = status_response.expiry_timestamp
        if record.last_status_read_at is None or read_at > record.last_status_read_at:
            record.last_status_read_at = read_at  # a read sent earlier and answered later covers less
        finishing = outcome.status_changed and record.status == PackageStatus.FINISHED
        if read_lease is not None and same_instant(record.status_read_until, read_lease) and not finishing:
            # A reader that moves the row to Finished keeps its lease until it has noted the archive
            # request: meanwhile, callbacks and refreshes leave the request to it (archive_if_forgotten).
            record.status_read_until = None
        return True

    outcome.record = store.packages.mutate(ref, change)
    if outcome.record is None:
        log_event(_log, "status.apply.no_row", package_ref=ref, source=source)
        return outcome
    finished_now = outcome.status_changed and outcome.record.status == PackageStatus.FINISHED
    if finished_now:
        # The archive message goes right after the row's write, before the history and webhook
        # writes: a reader that fails or dies among those must not leave a Finished row that nobody
        # archives (callbacks leave a row read just now to its reader, the timer waits minutes).
        _send_archive_request(store, ref, reason=source)
    _record_history(store, ref, outcome, status_response, source)
    if finished_now:
        _note_archive_requested(store, ref, reason=source, read_lease=read_lease)
        outcome.archive_requested = True
    return outcome


def _our_status(status_response: PackageInfo) -> PackageStatus | None:
    try:
        return PackageStatus.from_connective(status_response.package_status.value)
    except ValueError:
        log_event(_log, "status.apply.unknown_status", connective_status=str(status_response.package_status))
        return None


def _move(record: PackageRecord, status: PackageStatus, status_response: PackageInfo, now: datetime) -> None:
    record.status = status
    if status == PackageStatus.PENDING:
        record.final_reason = None  # back from Expired through an extension
        record.pending_since = record.pending_since or now
    elif status in _REASONED:
        record.final_reason = final_reason(status, status_response)


def final_reason(status: PackageStatus, status_response: PackageInfo) -> str:
    """Why a package ended (or expired), in words a person reading the row understands."""
    actors = status_response.actors()
    if status == PackageStatus.REJECTED:
        rejecting = next((a for a in actors if _status_key(a) == "rejected"), None)
        if rejecting is None:
            return "Rejected at Connective"
        who = rejecting.completed_by or _email_of(status_response, rejecting) or rejecting.actor_id
        return f"Rejected by {who}: {rejecting.reason}" if rejecting.reason else f"Rejected by {who}"
    if status == PackageStatus.FAILED:
        failing = next((a for a in actors if _status_key(a) == "failed"), None)
        detail = failing.reason if failing is not None and failing.reason else "a background operation failed"
        return f"Failed at Connective: {detail}"
    if status == PackageStatus.EXPIRED:
        expiry = status_response.expiry_timestamp
        return f"Expired at {expiry.isoformat()}" if expiry else "Expired"
    return "Revoked at Connective"


def _status_key(actor: ActorState) -> str:
    return str(actor.actor_status or "").lower()


def _email_of(status_response: PackageInfo, actor: ActorState) -> str | None:
    holder = _holder_of(status_response, actor)
    return holder.email_address if holder else None


def _holder_of(status_response: PackageInfo, actor: ActorState) -> StakeholderState | None:
    return next((s for s in status_response.stakeholders if any(a.actor_id == actor.actor_id for a in s.actors)),
                None)


def _documents(status_response: PackageInfo, known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The row's document list from a status answer. A status answer may list no locations (the create
    answers do): the location ids already known for a document are kept."""
    known_locations = {entry.get("document_id"): entry.get("location_ids") or [] for entry in known}
    return [{
        "document_id": document.document_id,
        "name": document.document_name,
        "type": document.document_type or "application/pdf",
        "external_reference": document.external_document_reference,
        "location_ids": [location.id for location in document.locations]
                        or known_locations.get(document.document_id, []),
    } for document in status_response.package_documents]


def _merge_signers(record: PackageRecord, status_response: PackageInfo, now: datetime) -> list[SignerChange]:
    """Bring each actor's entry in `record.signers` forward; returns what changed.

    Entries are matched by ActorId, or (for entries written at intake, before Connective assigned
    ids) by e-mail address. Keys this module does not know are kept. Action URLs are not stored:
    they let anyone sign, and a fresh one is fetched whenever a signer asks.
    """
    changes: list[SignerChange] = []
    signers = [dict(entry) for entry in record.signers]
    for holder in status_response.stakeholders:
        for actor in holder.actors:
            entry = _find_entry(signers, holder, actor)
            if entry is None:
                entry = {}
                signers.append(entry)
            change = _merge_actor(entry, holder, actor, now)
            if change is not None:
                changes.append(change)
    if signers != record.signers:
        record.signers = signers
    return changes


def _find_entry(signers: list[dict[str, Any]], holder: StakeholderState, actor: ActorState) -> dict[str, Any] | None:
    for entry in signers:
        if entry.get("actor_id") == actor.actor_id:
            return entry
    email = (holder.email_address or "").lower()
    actor_type = str(actor.type or "Signer")
    for entry in signers:
        if (not entry.get("actor_id") and email and str(entry.get("email", "")).lower() == email
                and str(entry.get("type", "Signer")).lower() == actor_type.lower()):
            return entry
    return None


def _merge_actor(entry: dict[str, Any], holder: StakeholderState, actor: ActorState,
                 now: datetime) -> SignerChange | None:
    status = str(actor.actor_status) if actor.actor_status is not None else None
    previous = entry.get("status")
    entry.update({key: value for key, value in {
        "actor_id": actor.actor_id,
        "stakeholder_id": holder.stakeholder_id,
        "email": entry.get("email") or holder.email_address,
        "external_reference": holder.external_stakeholder_reference,
        "type": str(actor.type) if actor.type is not None else entry.get("type", "Signer"),
    }.items() if value is not None})
    if status is None or not _actor_moves(previous, status):
        return None
    completed_at = actor.completed_timestamp.isoformat() if actor.completed_timestamp else None
    entry.update({"status": status, "status_changed_at": now.isoformat(), "completed_at": completed_at,
                  "completed_by": actor.completed_by, "reason": actor.reason})
    return SignerChange(actor.actor_id, entry.get("email"), entry.get("type"), previous, status, completed_at,
                        actor.reason)


def _actor_moves(previous: str | None, status: str) -> bool:
    if previous is None:
        return True
    if previous.lower() == status.lower():
        return False
    return _ACTOR_RANK.get(status.lower(), -1) > _ACTOR_RANK.get(previous.lower(), -1)


def _record_history(store: Store, ref: str, outcome: ApplyResult, status_response: PackageInfo, source: str) -> None:
    record = outcome.record
    assert record is not None
    for change in outcome.signer_changes:
        store.events.append(ref, "signer_status_changed", source=source, actor_id=change.actor_id,
                            email=change.email, type=change.actor_type, previous=change.previous_status,
                            status=change.status, completed_at=change.completed_at, reason=change.reason)
        if change.acted:
            publish_event(store, EventType.SIGNER_ACTED, ref, {
                "email": change.email, "actorId": change.actor_id, "action": _ACTED[change.status.lower()],
                "completedAt": change.completed_at, "reason": change.reason, "status": record.status.value,
            })
    if outcome.status_changed:
        previous = outcome.previous_status.value if outcome.previous_status else None
        store.events.append(ref, "status_changed", source=source, previous=previous, status=record.status.value,
                            connective_status=status_response.package_status.value, reason=record.final_reason)
        publish_event(store, EventType.STATUS_CHANGED, ref, {
            "status": record.status.value, "previousStatus": previous, "reason": record.final_reason,
        })
        log_event(_log, "status.changed", package_ref=ref, source=source, previous=previous,
                  status=record.status.value)


def archive_message(ref: str, reason: str) -> dict[str, Any]:
    """The `archive-requests` message: archive the Finished package `ref`."""
    return {"packageRef": ref, "reason": reason}


def request_archive(store: Store, ref: str, *, reason: str, delay_s: int = 0) -> None:
    """Queue the archive of a Finished package, then note the request on the row.

    The message goes first: when the process dies in between, the row still says "not requested"
    and the next callback or refresh (`ensure_archive_requested`) or the timer (the row's `archive`
    index entry, `shared.maintenance.work.resend_archive`) asks again. Archiving is idempotent, so a
    second message costs nothing but a row read.
    """
    _send_archive_request(store, ref, reason=reason, delay_s=delay_s)
    _note_archive_requested(store, ref, reason=reason)


def _send_archive_request(store: Store, ref: str, *, reason: str, delay_s: int = 0) -> None:
    store.clients.send_json(names.ARCHIVE_REQUESTS_QUEUE, archive_message(ref, reason), delay_s=delay_s)


def _note_archive_requested(store: Store, ref: str, *, reason: str, read_lease: datetime | None = None) -> None:
    def note(record: PackageRecord) -> bool:
        record.archive_requested_at = utcnow()
        if read_lease is not None and same_instant(record.status_read_until, read_lease):
            record.status_read_until = None
        return True

    store.packages.mutate(ref, note)
    store.events.append(ref, "archive_requested", reason=reason)
    log_event(_log, "archive.requested", package_ref=ref, reason=reason)


def ensure_archive_requested(store: Store, record: PackageRecord, *, reason: str) -> bool:
    """Ask for the archive of a Finished row that has no recent request. Returns True when it asked."""
    if record.status != PackageStatus.FINISHED:
        return False
    requested = record.archive_requested_at
    if requested is not None and utcnow() - requested < ARCHIVE_REREQUEST_AFTER:
        return False
    request_archive(store, record.ref, reason=reason)
    return True
