"""Connective's callbacks, its new-link requests, and the deferred status reads behind them.

A callback is only a hint that something changed: its body and query are never trusted, the status
is always re-read through the client. What the hint decides is WHEN to spend that read, because the
connection has a small call budget and the sandbox (like Connective) calls back after every actor
action and every package status change:

- a callback for a row that is already final costs no call at all;
- a callback that claims a final status reads the status at once (if a rate token is at hand);
- any other callback is recorded and its read deferred to a `status-refresh` message a few
  seconds later; callbacks arriving meanwhile share that one message and that one read.

Nothing waits for a token: with none at hand the callback is recorded and the read goes to the
queue, so the answer is fast and nothing is lost. A deferred read joins a `status-refresh` already
waiting for the package instead of queueing a second one, so a backlog never turns two callbacks
into two reads. A dropped callback is caught by a later one's read, or by the timer's reconciliation.

Reads of one package never overlap: a reader holds the row's read lease (`status_read_until`, as
long as its longest call) from before its call until its answer is applied. A final callback (or its
duplicate) or a refresh that comes meanwhile joins the queued read instead, which then finds the row
final or reads once. A read covers the callbacks that arrived before it was sent, never a later one.

The reader that moves a row to Finished requests its archive and keeps its lease until it has noted
the request; a callback or refresh that finds the row Finished meanwhile must not ask again (two
archive runs at once fetch every file twice), so it only asks when no reader holds the lease and
the row has been Finished for a while without a request (`archive_if_forgotten`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import azure.functions as func

from shared.api.problems import ApiProblem, problem_response
from shared.config import Settings
from shared.connective.client import ConnectiveClient
from shared.connective.errors import (
    NotFoundError,
    RetryLater,
    ServerError,
    TransportError,
)
from shared.connective.models import ActorState, ActorStatus, PackageInfo, StakeholderState
from shared.logging import get_logger, log_event
from shared.pipeline.creation import longest_step_s
from shared.pipeline.status_sync import apply_status, ensure_archive_requested
from shared.pipeline.tokens import presented_token, verify_callback_token
from shared.retrying import queue_delay_s
from shared.storage import names
from shared.storage.packages import ConcurrentUpdateError, PackageRecord, is_valid_package_ref, same_instant, utcnow
from shared.storage.status import FINAL_STATUSES, PackageStatus
from shared.storage.store import Store
from shared.telemetry import SpanKind, callback_auth_failures, package_step
from shared.webhooks.publish import EventType, publish_event

if TYPE_CHECKING:
    from shared.pipeline.services import Services

_log = get_logger(__name__)

# Errors after which the read is worth trying again later: nothing is wrong with the request.
TRANSIENT_ERRORS = (RetryLater, ServerError, TransportError)
_CONNECTIVE_FINAL = {"finished", "rejected", "revoked", "failed"}
LINK_REQUEST = "link-request"
MAX_AWAITING_CREATION = 6  # refreshes that wait for the creation to record the Connective package id
# A queued status-refresh counts as still waiting when it is due later than this; a message running a
# little before the row's due time (the queue's clock and ours differ) must not count itself.
QUEUED_READ_SLACK = timedelta(seconds=0.5)
# How long the reader that moved a row to Finished has to send its archive request (its history and
# webhook writes come first; seconds under load). Past it, a Finished row without a request is taken
# for a reader that died, and the next callback or refresh asks.
ARCHIVE_REQUEST_GRACE = timedelta(seconds=15)


class Outcome(StrEnum):
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not-found"
    ALREADY_FINAL = "already-final"  # no call spent
    APPLIED = "applied"  # status read and merged
    DEFERRED = "deferred"  # status read queued (no token, or a transient Connective error)
    COALESCED = "coalesced"  # status read queued, or shared with one already queued
    SKIPPED = "skipped"  # status-refresh with nothing new to read
    DROPPED = "dropped"
    TOO_LARGE = "too-large"  # a body no callback needs; never parsed
    BUSY = "busy"  # the row kept changing under concurrent writers: come back later (503 + Retry-After)


@dataclass
class Reply:
    outcome: Outcome
    status_code: int = 200
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    retry_after_s: int | None = None


def http_reply(reply: Reply) -> func.HttpResponse:
    """The HTTP answer of a callback or link request: JSON with the outcome, or an RFC 7807 problem (the
    API's own shape, `urn:connective-functions:<outcome>` as its type) for a refusal."""
    if reply.status_code >= 400:
        headers = {"Retry-After": str(reply.retry_after_s)} if reply.retry_after_s else None
        return problem_response(ApiProblem(reply.status_code, reply.detail, headers=headers,
                                           problem_type=f"urn:connective-functions:{reply.outcome.value}"))
    return func.HttpResponse(json.dumps({"outcome": reply.outcome.value, **reply.data}), status_code=200,
                             mimetype="application/json")


def answer_connective_request(req: func.HttpRequest, settings: Settings,
                              handle: Callable[[str, str | None], Reply]) -> func.HttpResponse:
    """One callback or link request, as both routes answer it: the checks before anything is read
    (`admit`), then `handle(ref, token)`, a contended row answered 503 with Retry-After."""
    ref = req.route_params.get("packageRef", "")
    token = presented_token(dict(req.route_params), dict(req.params))
    refused = admit(settings, ref, token, _declared_length(req), req.get_body)
    if refused is not None:
        return http_reply(refused)
    return http_reply(busy_when_contended(lambda: handle(ref, token)))


def answer_callback(req: func.HttpRequest, use: Services) -> func.HttpResponse:
    """The callback route: Connective says a package's status changed."""
    return answer_connective_request(req, use.settings, lambda ref, token: handle_callback(
        use.store, use.connective(), use.settings, ref, token, claim_from_request(req.params, req.get_body())))


def answer_link_request(req: func.HttpRequest, use: Services) -> func.HttpResponse:
    """The notification route: Connective asks for a fresh signing link for a signer."""
    return answer_connective_request(req, use.settings, lambda ref, token: handle_link_request(
        use.store, use.connective(), use.settings, ref, token, req.get_body(), req.params))


def _declared_length(req: func.HttpRequest) -> int | None:
    value = req.headers.get("Content-Length") or ""
    return int(value) if value.isdigit() else None


# A callback or link request carries a few ids and a status; anything bigger is not from Connective.
MAX_CALLBACK_BODY_BYTES = 64 * 1024
BUSY_RETRY_AFTER_S = 2


def admit(settings: Settings, ref: str, token: str | None, declared_length: int | None,
          body: Callable[[], bytes | None]) -> Reply | None:
    """The checks before anything of a request is looked at: the token from the path (401), then the
    body's size (413), declared or actual. None: go on. `body` is only called once the token is good."""
    if not verify_callback_token(settings, ref, token):
        return Reply(Outcome.UNAUTHORIZED, 401, "missing or invalid callback token")
    too_large = Reply(Outcome.TOO_LARGE, 413, f"a callback body holds at most {MAX_CALLBACK_BODY_BYTES} bytes")
    if (declared_length or 0) > MAX_CALLBACK_BODY_BYTES or len(body() or b"") > MAX_CALLBACK_BODY_BYTES:
        return too_large
    return None


def busy_when_contended(handler: Callable[[], Reply]) -> Reply:
    """Run a handler; a row that kept changing under it (a flood of callbacks) is a 503 with Retry-After,
    which Connective's retry (or the timer's reconciliation) turns into a later read, never a 500."""
    try:
        return handler()
    except ConcurrentUpdateError:
        log_event(_log, "callback.busy", retry_after_s=BUSY_RETRY_AFTER_S)
        return Reply(Outcome.BUSY, 503, "the package is being updated; try again shortly",
                     retry_after_s=BUSY_RETRY_AFTER_S)


@dataclass(frozen=True)
class CallbackClaim:
    """What a callback says happened. Untrusted: it only decides whether a status read is urgent."""

    package_status: str | None = None
    package_id: str | None = None
    actor_id: str | None = None

    @property
    def claims_final(self) -> bool:
        return (self.package_status or "").strip().lower() in _CONNECTIVE_FINAL


def _pick(sources: list[Mapping[str, Any]], *names_: str) -> str | None:
    wanted = {name.lower() for name in names_}
    for source in sources:
        for key, value in source.items():
            if isinstance(key, str) and key.lower() in wanted and isinstance(value, str | int) and str(value):
                return str(value)[:100]
    return None


def parse_body(body: bytes | None) -> dict[str, Any]:
    """The fields of a JSON object body or of a form body (`a=1&b=2`); {} for anything else.

    No public source says how Connective shapes a callback (docs/CONNECTIVE_CONTRACT.md), so every
    plausible form is read; nothing read here is trusted.
    """
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        return _form_fields(body)
    return parsed if isinstance(parsed, dict) else {}


def _form_fields(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("ascii")  # a form body is percent-encoded ASCII
    except UnicodeDecodeError:
        return {}
    try:
        return dict(parse_qsl(text.strip(), keep_blank_values=False, strict_parsing=True, max_num_fields=100))
    except ValueError:
        return {}


def claim_from_request(params: Mapping[str, str], body: bytes | None) -> CallbackClaim:
    sources = [params, parse_body(body)]
    return CallbackClaim(package_status=_pick(sources, "packageStatus", "status"),
                         package_id=_pick(sources, "packageId", "id"),
                         actor_id=_pick(sources, "actorId"))


def authenticate(store: Store, settings: Settings, ref: str, token: str | None) -> tuple[Reply | None,
                                                                                          PackageRecord | None]:
    """401 for a bad token (checked before anything else), 404 for an unknown package."""
    if not verify_callback_token(settings, ref, token):
        callback_auth_failures.add(1)
        return Reply(Outcome.UNAUTHORIZED, 401, "missing or invalid callback token"), None
    record = store.packages.get(ref) if is_valid_package_ref(ref) else None
    if record is None:
        return Reply(Outcome.NOT_FOUND, 404, "unknown package reference"), None
    return None, record


# ---------------------------------------------------------------------------------------------------
# Callback


def handle_callback(store: Store, client: ConnectiveClient, settings: Settings, ref: str, token: str | None,
                    claim: CallbackClaim) -> Reply:
    refused, record = authenticate(store, settings, ref, token)
    if refused is not None or record is None:
        return refused or Reply(Outcome.NOT_FOUND, 404)
    with package_step("package.callback", ref, record.trace_parent, kind=SpanKind.SERVER,
                      **{"callback.claimed_status": claim.package_status}) as span:
        reply = _handle_authenticated_callback(store, client, settings, ref, claim, record)
        span.set_attribute("callback.outcome", reply.outcome.value)
        return reply


def _handle_authenticated_callback(store: Store, client: ConnectiveClient, settings: Settings, ref: str,
                                   claim: CallbackClaim, record: PackageRecord) -> Reply:
    if record.status in FINAL_STATUSES:
        # Nothing about a final row changes: the callback goes to the history only, so a flood of late
        # callbacks never contends for the row.
        _callback_event(store, ref, claim, Outcome.ALREADY_FINAL)
        archive_if_forgotten(store, record, reason="callback")
        return Reply(Outcome.ALREADY_FINAL)
    if not claim.claims_final or not record.connective_package_id:
        scheduled = schedule_refresh(store, ref, reason="callback",
                                     delay_s=settings.status_refresh_delay_s, claim=claim, current=record)
        return Reply(Outcome.COALESCED, data={"refreshScheduled": scheduled})
    reader = client.with_rate_wait(settings.callback_rate_wait_s)
    lease, stored = _record_final_callback(store, ref, claim, read_lease_length(reader), current=record)
    if stored is not None and stored.status in FINAL_STATUSES:
        _callback_event(store, ref, claim, Outcome.ALREADY_FINAL)
        return Reply(Outcome.ALREADY_FINAL)
    if lease is None:
        # Another status read is in flight. It may have been sent before this callback's change, so it
        # does not cover it; reading now as well would spend a call on what that read is about to bring
        # (a duplicate callback, a refresh that started a moment ago). The queued read covers it: it
        # waits for the read in flight to land, and finds the row final or reads once.
        queued = defer_read(store, ref, reason="callback", delay_s=settings.status_refresh_delay_s)
        _callback_event(store, ref, claim, Outcome.COALESCED)
        log_event(_log, "callback.read_in_flight", package_ref=ref, refresh_queued=queued)
        return Reply(Outcome.COALESCED, data={"refreshScheduled": queued, "readInFlight": True})
    _callback_event(store, ref, claim, Outcome.APPLIED)
    return read_now(store, reader, settings, stored or record, source="callback", lease=lease)


def read_lease_length(client: ConnectiveClient) -> timedelta:
    """How long a status read may hold the row's read lease: the longest one call of `client` can take."""
    return timedelta(seconds=longest_step_s(client))


def _read_in_flight(record: PackageRecord, now: datetime) -> bool:
    return record.status_read_until is not None and record.status_read_until > now


def _record_final_callback(store: Store, ref: str, claim: CallbackClaim, length: timedelta,
                           current: PackageRecord) -> tuple[datetime | None, PackageRecord | None]:
    """Record a callback that claims a final status and, unless a read is in flight, take the read lease
    for this callback's read, in one write. Returns the lease (None: don't read now) and the stored row."""
    now = utcnow()
    lease: datetime | None = None

    def change(record: PackageRecord) -> bool:
        nonlocal lease
        lease = None
        if record.status in FINAL_STATUSES:
            return False
        record.last_callback_at = now
        record.callback_count += 1
        if not _read_in_flight(record, now):
            lease = now + length
            record.status_read_until = lease
        return True

    stored = store.packages.mutate(ref, change, current=current)
    return lease, stored


def _take_read_lease(store: Store, ref: str, length: timedelta,
                     current: PackageRecord) -> tuple[datetime | None, PackageRecord | None]:
    """The read lease for a queued read that still has something to read. None when the row is final,
    was read since its last callback, or has a read in flight (checked on the row as stored)."""
    now = utcnow()
    lease: datetime | None = None

    def change(record: PackageRecord) -> bool:
        nonlocal lease
        lease = None
        if record.status in FINAL_STATUSES or _read_since_last_callback(record) or _read_in_flight(record, now):
            return False
        lease = now + length
        record.status_read_until = lease
        return True

    stored = store.packages.mutate(ref, change, current=current)
    return lease, stored


def _release_read_lease(store: Store, ref: str, lease: datetime | None) -> None:
    """Give the lease back after a read that brought no answer to apply."""
    if lease is None:
        return

    def change(record: PackageRecord) -> bool:
        if not same_instant(record.status_read_until, lease):
            return False
        record.status_read_until = None
        return True

    store.packages.mutate(ref, change)


def read_now(store: Store, client: ConnectiveClient, settings: Settings, record: PackageRecord, *, source: str,
             then: dict[str, Any] | None = None, lease: datetime | None = None) -> Reply:
    """Read and apply the status now; on a transient failure queue the read instead (never lost).

    `then` travels with a queued read: its `reason`, and for a link request whom to send the link.
    `lease` is the row's read lease this read holds (`status_read_until`); it is released either way.
    """
    assert record.connective_package_id
    sent_at = utcnow()
    try:
        status = client.get_package_status(record.connective_package_id)
    except TRANSIENT_ERRORS as error:
        _release_read_lease(store, record.ref, lease)
        delay_s = queue_delay_s(error, settings, settings.status_refresh_delay_s)
        extra = then or {}
        reason = extra.get("reason", source)
        if reason == LINK_REQUEST:  # the signer waits for a link: this request needs its own read
            enqueue_refresh(store, record.ref, reason=reason, delay_s=delay_s, extra=extra)
            joined = False
        else:
            joined = not defer_read(store, record.ref, reason=reason, delay_s=delay_s)
        log_event(_log, "callback.read_deferred", package_ref=record.ref, error=type(error).__name__,
                  delay_s=delay_s, joined=joined)
        return Reply(Outcome.DEFERRED, data={"retryInSeconds": delay_s})
    except NotFoundError as error:
        _release_read_lease(store, record.ref, lease)
        _note_error(store, record.ref, f"status read: package not found at Connective ({error.error_code})")
        return Reply(Outcome.DROPPED, detail="package not found at Connective")
    except Exception:
        _release_read_lease(store, record.ref, lease)
        raise
    result = apply_status(store, record.ref, status, source=source, now=sent_at, read_lease=lease)
    if then is not None and then.get("reason") == LINK_REQUEST:
        publish_link(store, record.ref, status, then)
    return Reply(Outcome.APPLIED, data={"status": result.status.value if result.status else None})


@contextlib.contextmanager
def _event_beside(store: Store, ref: str, claim: CallbackClaim, outcome: Outcome) -> Iterator[None]:
    """Write the callback's event while the block runs; done (or its error raised) when the block ends.

    The event row is written beside the row update rather than after it: the caller waits for one round
    trip to Table Storage instead of two (each is tens of milliseconds on a busy instance). The thread
    that writes it lives as long as the block.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="callback-event") as writer:
        # In the caller's context, so the log line keeps the invocation's and the package's attributes.
        event = writer.submit(contextvars.copy_context().run, _callback_event, store, ref, claim, outcome)
        try:
            yield
        finally:
            event.result()


def _callback_event(store: Store, ref: str, claim: CallbackClaim, outcome: Outcome) -> None:
    store.events.append(ref, "callback_received", claimed_status=claim.package_status, actor_id=claim.actor_id,
                        outcome=outcome.value)
    log_event(_log, "callback.received", package_ref=ref, claimed_status=claim.package_status,
              outcome=outcome.value)


def schedule_refresh(store: Store, ref: str, *, reason: str, delay_s: int, claim: CallbackClaim | None = None,
                     current: PackageRecord | None = None) -> bool:
    """Record a callback and make sure one status read is queued for it. Returns True when this call queued it.

    At most one `status-refresh` message per package is waiting at any time: the row's
    `status_refresh_due_at` says when the queued one runs, and callbacks before then join it.
    """
    now = utcnow()
    scheduled = False

    def change(record: PackageRecord) -> bool:
        nonlocal scheduled
        due = record.status_refresh_due_at
        scheduled = due is None or due <= now
        if claim is not None and not scheduled and not _read_since_last_callback(record) \
                and record.last_callback_at is not None:
            # A read is queued for later and an earlier callback already told it to read: it will see
            # whatever this callback announces. Writing nothing keeps a burst of callbacks contention-free.
            return False
        if claim is not None:
            record.last_callback_at = now
            record.callback_count += 1
        if scheduled:
            record.status_refresh_due_at = now + timedelta(seconds=delay_s)
        return claim is not None or scheduled

    with _event_beside(store, ref, claim, Outcome.COALESCED) if claim is not None else contextlib.nullcontext():
        store.packages.mutate(ref, change, current=current)
        if scheduled:
            store.clients.send_json(names.STATUS_REFRESH_QUEUE, refresh_message(ref, reason), delay_s=delay_s)
    return scheduled


def refresh_message(ref: str, reason: str, **extra: Any) -> dict[str, Any]:
    """The `status-refresh` message: read the status of `ref` (why, and for link requests, for whom)."""
    return {"packageRef": ref, "reason": reason, **extra}


def enqueue_refresh(store: Store, ref: str, *, reason: str, delay_s: int, extra: dict[str, Any] | None = None) -> None:
    """Queue a status read unconditionally (a deferred read that must happen), and note when it is due."""
    due = utcnow() + timedelta(seconds=delay_s)

    def change(record: PackageRecord) -> bool:
        record.status_refresh_due_at = max(record.status_refresh_due_at or due, due)
        return True

    store.packages.mutate(ref, change)
    payload = {**(extra or {}), **refresh_message(ref, reason)}
    store.clients.send_json(names.STATUS_REFRESH_QUEUE, payload, delay_s=delay_s)


def defer_read(store: Store, ref: str, *, reason: str, delay_s: int) -> bool:
    """Make sure a status read is queued, joining one that is still waiting. True when this call queued it.

    Whatever is waiting reads after this callback arrived (every callback notes `last_callback_at`
    first), so it reads what this one would have read.
    """
    now = utcnow()
    queued_now = False

    def change(record: PackageRecord) -> bool:
        nonlocal queued_now
        due = record.status_refresh_due_at
        queued_now = due is None or due <= now + QUEUED_READ_SLACK
        if queued_now:
            record.status_refresh_due_at = now + timedelta(seconds=delay_s)
        return queued_now

    store.packages.mutate(ref, change)
    if queued_now:
        store.clients.send_json(names.STATUS_REFRESH_QUEUE, refresh_message(ref, reason), delay_s=delay_s)
    return queued_now


def archive_if_forgotten(store: Store, record: PackageRecord, *, reason: str) -> bool:
    """Ask for the archive of a Finished row that nobody asked for, or asked long ago. True when it asked.

    A row read as Finished just now is left to its reader, which sends the request right after its
    write; a second request would run the archive twice, and two runs at once fetch every file twice.
    The reader of a callback or refresh holds the row's read lease until it has noted its request,
    however slow it is; other readers (creation, the timer) are given ARCHIVE_REQUEST_GRACE.
    """
    now = utcnow()
    read_at = record.last_status_read_at
    if (record.status == PackageStatus.FINISHED and record.archive_requested_at is None
            and (_read_in_flight(record, now) or (read_at is not None and now - read_at < ARCHIVE_REQUEST_GRACE))):
        return False
    return ensure_archive_requested(store, record, reason=reason)


def _note_error(store: Store, ref: str, text: str) -> None:
    def change(record: PackageRecord) -> bool:
        record.last_error = text
        return True

    store.packages.mutate(ref, change)
    log_event(_log, "callback.error", package_ref=ref, error=text)


# ---------------------------------------------------------------------------------------------------
# status-refresh queue


def handle_status_refresh(store: Store, client: ConnectiveClient, settings: Settings,
                          message: dict[str, Any]) -> Reply:
    """One `status-refresh` message: the deferred status read of a callback or link request."""
    ref = str(message.get("packageRef") or "")
    record = store.packages.get(ref) if is_valid_package_ref(ref) else None
    if record is None:
        log_event(_log, "refresh.dropped", package_ref=ref or None, why="unknown package")
        return Reply(Outcome.DROPPED, detail="unknown package")
    link_request = message.get("reason") == LINK_REQUEST
    if record.status in FINAL_STATUSES:
        archive_if_forgotten(store, record, reason="status-refresh")
        return Reply(Outcome.ALREADY_FINAL)
    if not record.connective_package_id:
        return _await_creation(store, settings, record, message)
    if not link_request and _read_since_last_callback(record):
        return Reply(Outcome.SKIPPED, detail="no callback since the last read")
    queue_client = client.with_rate_wait(settings.queue_rate_wait_s)
    if link_request:  # the signer waits for a link: this request needs its own read
        return read_now(store, queue_client, settings, record, source="status-refresh", then=message)
    reason = str(message.get("reason") or "callback")
    lease, stored = _take_read_lease(store, ref, read_lease_length(queue_client), current=record)
    if lease is None:
        if stored is None or stored.status in FINAL_STATUSES or _read_since_last_callback(stored):
            return Reply(Outcome.SKIPPED, detail="read meanwhile, or final")
        # A read is in flight and may have been sent before the callbacks this one is for: read after it.
        delay_s = settings.status_refresh_delay_s
        defer_read(store, ref, reason=reason, delay_s=delay_s)
        return Reply(Outcome.DEFERRED, detail="a status read is in flight", data={"retryInSeconds": delay_s})
    return read_now(store, queue_client, settings, stored or record, source="status-refresh",
                    then={"reason": reason}, lease=lease)


def _read_since_last_callback(record: PackageRecord) -> bool:
    read_at, callback_at = record.last_status_read_at, record.last_callback_at
    return read_at is not None and (callback_at is None or read_at >= callback_at)


def _await_creation(store: Store, settings: Settings, record: PackageRecord, message: dict[str, Any]) -> Reply:
    """A callback came before creation recorded the package id: look again a little later, a few times."""
    waited = int(message.get("awaitingCreation") or 0) + 1
    if waited > MAX_AWAITING_CREATION or record.status not in (PackageStatus.RECEIVED, PackageStatus.CREATING):
        log_event(_log, "refresh.dropped", package_ref=record.ref, why="no Connective package id")
        return Reply(Outcome.DROPPED, detail="no Connective package id")
    store.clients.send_json(names.STATUS_REFRESH_QUEUE, {**message, "awaitingCreation": waited},
                            delay_s=settings.status_refresh_delay_s)
    return Reply(Outcome.DEFERRED, detail="awaiting creation")


# ---------------------------------------------------------------------------------------------------
# NotificationCallBackUrl: a signer asks for a new link


def link_request_from(params: Mapping[str, str], body: bytes | None) -> dict[str, Any]:
    """Who asks for a new link: any of the ids or the e-mail address, from the query, a JSON or a form body.

    Names are matched in any casing; a request that names nobody is still served (`publish_link`).
    """
    sources = [params, parse_body(body)]
    return {"reason": LINK_REQUEST, "actorId": _pick(sources, "ActorId"),
            "stakeholderId": _pick(sources, "StakeholderId"),
            "stakeholderReference": _pick(sources, "ExternalStakeholderReference"),
            "email": _pick(sources, "EmailAddress", "Email")}


def handle_link_request(store: Store, client: ConnectiveClient, settings: Settings, ref: str, token: str | None,
                        body: bytes | None, params: Mapping[str, str] | None = None) -> Reply:
    """Record the request, fetch a fresh action URL and tell the subscribers, who deliver it."""
    refused, record = authenticate(store, settings, ref, token)
    if refused is not None or record is None:
        return refused or Reply(Outcome.NOT_FOUND, 404)
    request = link_request_from(params or {}, body)
    with package_step("package.link_request", ref, record.trace_parent, kind=SpanKind.SERVER):
        store.events.append(ref, "link_requested", actor_id=request.get("actorId"), email=request.get("email"))
        log_event(_log, "link.requested", package_ref=ref)
        if record.status in FINAL_STATUSES or not record.connective_package_id:
            return Reply(Outcome.ALREADY_FINAL if record.status in FINAL_STATUSES else Outcome.DROPPED)
        return read_now(store, client.with_rate_wait(settings.callback_rate_wait_s), settings, record,
                        source=LINK_REQUEST, then=request)


def _named_actors(status: PackageInfo, request: Mapping[str, Any]) -> list[tuple[StakeholderState, ActorState]]:
    """The actors the request names: by actor id, else by stakeholder id, reference or e-mail (any casing)."""
    wanted = {key: str(request.get(key) or "").lower() for key in
              ("actorId", "stakeholderId", "stakeholderReference", "email")}
    pairs = [(holder, actor) for holder in status.stakeholders for actor in holder.actors]
    by_actor = [pair for pair in pairs if wanted["actorId"] and pair[1].actor_id.lower() == wanted["actorId"]]
    if by_actor:
        return by_actor

    def names_holder(holder: StakeholderState) -> bool:
        return any(wanted[key] and wanted[key] == (value or "").lower() for key, value in (
            ("stakeholderId", holder.stakeholder_id), ("stakeholderReference", holder.external_stakeholder_reference),
            ("email", holder.email_address)))

    return [pair for pair in pairs if names_holder(pair[0])]


def _actors_whose_turn_it_is(status: PackageInfo) -> list[tuple[StakeholderState, ActorState]]:
    return [(holder, actor) for holder in status.stakeholders for actor in holder.actors
            if actor.actor_status in (ActorStatus.AVAILABLE, ActorStatus.IN_PROGRESS)]


def _action_url(holder: StakeholderState, actor: ActorState, email: str) -> str | None:
    email = email or (holder.email_address or "").lower()
    return actor.action_url or next(
        (link.url for link in actor.action_urls if link.url and (not email or (link.email_address or "").lower()
                                                                  == email)), None)


def publish_link(store: Store, ref: str, status: PackageInfo, request: Mapping[str, Any]) -> bool:
    """Publish the fresh action URL of the actor who asked. The URL goes to subscribers, never to logs.

    A request that names nobody we can find (the callback's shape is unconfirmed) gets the link of
    every actor whose turn it is: that is who can be waiting for one.
    """
    email = str(request.get("email") or "").lower()
    named = _named_actors(status, request)
    # Among the named actors, the one whose turn it is first (a stakeholder may also be a receiver).
    candidates = sorted(named, key=lambda pair: pair[1].actor_status not in (ActorStatus.AVAILABLE,
                                                                             ActorStatus.IN_PROGRESS))[:1]
    if not candidates:
        candidates = _actors_whose_turn_it_is(status)
    published = False
    for holder, actor in candidates:
        url = _action_url(holder, actor, email)
        if not url:
            continue
        publish_event(store, EventType.LINK_REQUESTED, ref, {
            "email": holder.email_address or request.get("email"), "actorId": actor.actor_id, "actionUrl": url})
        store.events.append(ref, "link_published", actor_id=actor.actor_id, named=bool(named))
        published = True
    if not published:
        store.events.append(ref, "link_unavailable", actor_id=request.get("actorId"))
        log_event(_log, "link.unavailable", package_ref=ref)
    return published
