"""Handlers of /api/packages: create, read, list, document links and the actions.

Reads come from our own status table (fast, and they spend no Connective call); only
`?refresh=true` and the actions call Connective, through the client with a short rate wait.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
from azure.core.exceptions import HttpResponseError

from shared.api import create
from shared.api.body import query_bool, query_datetime, query_int
from shared.api.context import ApiRequest, json_response
from shared.api.links import document_links
from shared.api.models import AcceptedPackage, ExtendRequest, PackagePage, PackageResource
from shared.api.problems import ApiProblem, FieldError
from shared.connective.errors import NotFoundError
from shared.logging import get_logger, log_event, package_scope
from shared.pipeline.status_sync import apply_status
from shared.storage import names
from shared.storage.packages import ROW_KEY, PackageRecord, utcnow
from shared.storage.status import FINAL_STATUSES, PackageStatus

_log = get_logger(__name__)

# The `wait` parameter of the status resource (the asynchronous request-reply pattern).
WAIT_CREATED = "created"
WAIT_FINAL = "final"
WAIT_VALUES = (WAIT_CREATED, WAIT_FINAL, "true")
_BEFORE_CREATED = frozenset({PackageStatus.RECEIVED, PackageStatus.CREATING})
# Seconds a poller should wait before asking again.
RETRY_AFTER_CREATING_S = 5
RETRY_AFTER_SIGNING_S = 60
DELETABLE = frozenset({PackageStatus.ARCHIVED, PackageStatus.REJECTED, PackageStatus.REVOKED, PackageStatus.FAILED})


def _resource(record: PackageRecord) -> dict[str, Any]:
    return PackageResource.from_record(record).to_json()


def _status_location(request: ApiRequest, ref: str, wait: str) -> str:
    return f"{request.package_url(ref)}?{urlencode({'wait': wait})}"


def post_package(request: ApiRequest) -> func.HttpResponse:
    body = request.json_body()
    key = (request.http.headers.get(create.IDEMPOTENCY_HEADER) or "").strip() or None
    if key is not None and len(key) > 200:
        raise ApiProblem(400, "The Idempotency-Key header is longer than 200 characters.")
    record, _created = create.create_package(request.store, request.settings, body, key)
    accepted = AcceptedPackage(package_ref=record.ref, status=record.status,
                               status_url=request.package_url(record.ref))
    return json_response(accepted, 202, {"Location": _status_location(request, record.ref, WAIT_CREATED),
                                         "Retry-After": str(RETRY_AFTER_CREATING_S)})


def _still_waiting(status: PackageStatus, wait: str) -> bool:
    if wait == WAIT_CREATED:
        return status in _BEFORE_CREATED
    return status not in FINAL_STATUSES


def get_package(request: ApiRequest) -> func.HttpResponse:
    record = request.package()
    wait = (request.http.params.get("wait") or "").strip().lower()
    if wait and wait not in WAIT_VALUES:
        raise ApiProblem(400, "The parameter wait must be created or final.",
                         errors=[FieldError(field="wait", message="expected created or final")])
    if query_bool(request.http, "refresh") and record.connective_package_id:
        with package_scope(record.ref):
            info = request.connective.get_package_status(record.connective_package_id)
            record = apply_status(request.store, record.ref, info, source="api").record or record
    if wait and _still_waiting(record.status, WAIT_FINAL if wait == "true" else wait):
        retry_after = RETRY_AFTER_CREATING_S if record.status in _BEFORE_CREATED else RETRY_AFTER_SIGNING_S
        return json_response(_resource(record), 202, {"Location": _status_location(request, record.ref, wait),
                                                      "Retry-After": str(retry_after)})
    return json_response(_resource(record))


# ---- listing -------------------------------------------------------------------------------------

def _encode_token(token: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(text: str) -> dict[str, Any]:
    try:
        token = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        token = None
    if not isinstance(token, dict) or not all(isinstance(v, str) for v in token.values()):
        raise ApiProblem(400, "The continuationToken is not one this API issued; start again without it.",
                         errors=[FieldError(field="continuationToken", message="invalid token")])
    return token


def list_packages(request: ApiRequest) -> func.HttpResponse:
    params = request.http.params
    top = query_int(request.http, "top", 50, 1, 200)
    clauses, values = ["RowKey eq @rowKey"], {"rowKey": ROW_KEY}
    status = params.get("status")
    if status:
        try:
            values["status"] = PackageStatus(status).value
        except ValueError:
            raise ApiProblem(400, f"The parameter status must be one of {', '.join(s.value for s in PackageStatus)}.",
                             errors=[FieldError(field="status", message="unknown status")]) from None
        clauses.append("Status eq @status")
    created_from, created_to = query_datetime(request.http, "createdFrom"), query_datetime(request.http, "createdTo")
    if created_from:
        clauses.append("CreatedAt ge @createdFrom")
        values["createdFrom"] = created_from  # type: ignore[assignment]
    if created_to:
        clauses.append("CreatedAt lt @createdTo")
        values["createdTo"] = created_to  # type: ignore[assignment]
    token_text = params.get("continuationToken")
    token = _decode_token(token_text) if token_text else None
    table = request.store.clients.table(names.PACKAGES_TABLE)
    pages = table.query_entities(" and ".join(clauses), parameters=values, results_per_page=top).by_page(
        continuation_token=token)  # type: ignore[arg-type]  # the SDK's token is a dict despite the hint
    try:
        items = [PackageResource.from_record(PackageRecord.from_entity(e)) for e in next(pages, [])]
    except HttpResponseError as error:
        if error.status_code == 400 and token is not None:
            raise ApiProblem(400, "The continuationToken is not valid here; start again without it.") from None
        raise
    next_token = pages.continuation_token  # type: ignore[attr-defined]
    page = PackagePage(value=items)
    if next_token:
        page.continuation_token = _encode_token(next_token)
        query = {key: params[key] for key in ("status", "createdFrom", "createdTo") if params.get(key)}
        query.update(top=str(top), continuationToken=page.continuation_token)
        page.next_link = f"{request.url('/packages')}?{urlencode(query)}"
    return json_response(page)


def get_documents(request: ApiRequest) -> func.HttpResponse:
    record = request.package()
    if record.status is not PackageStatus.ARCHIVED or not record.archived_files:
        raise ApiProblem(409, f"The package is {record.status.value}; its documents can be downloaded once it is "
                              "Archived.")
    return json_response(document_links(request.store, request.settings, record))


# ---- actions -------------------------------------------------------------------------------------

def _require(record: PackageRecord, allowed: frozenset[PackageStatus], action: str) -> str:
    if record.status not in allowed or not record.connective_package_id:
        wanted = " or ".join(sorted(s.value for s in allowed))
        raise ApiProblem(409, f"Cannot {action} a package that is {record.status.value}; it must be {wanted}.")
    return record.connective_package_id


_OUT_FOR_SIGNING = frozenset({PackageStatus.PENDING})
_OPEN = frozenset({PackageStatus.PENDING, PackageStatus.EXPIRED})


def _record_action(request: ApiRequest, ref: str, kind: str, change: Any = None, **data: Any) -> PackageRecord:
    record = request.store.packages.mutate(ref, change) if change else request.store.packages.get(ref)
    request.store.events.append(ref, kind, source="api", **data)
    log_event(_log, f"api.package.{kind}", package_ref=ref, **data)
    assert record is not None
    return record


def remind(request: ApiRequest) -> func.HttpResponse:
    record = request.package()
    package_id = _require(record, _OUT_FOR_SIGNING, "send reminders for")
    request.connective.send_package_reminders(package_id)
    now = utcnow()

    def count(row: PackageRecord) -> bool:
        row.reminder_count += 1
        row.last_reminder_at = now
        return True

    return json_response(_resource(_record_action(request, record.ref, "reminder", count)))


def revoke(request: ApiRequest) -> func.HttpResponse:
    record = request.package()
    package_id = _require(record, _OPEN, "revoke")
    info = request.connective.set_package_status(package_id, "Revoked")
    applied = apply_status(request.store, record.ref, info, source="api-revoke")
    _record_action(request, record.ref, "revoke_requested")
    return json_response(_resource(applied.record or record))


def skip_signers(request: ApiRequest) -> func.HttpResponse:
    record = request.package()
    package_id = _require(record, _OUT_FOR_SIGNING, "skip the signers of")
    request.connective.skip_signers(package_id)
    return json_response(_resource(_record_action(request, record.ref, "signers_skipped")))


def extend(request: ApiRequest) -> func.HttpResponse:
    record = request.package()
    body: ExtendRequest = request.body(ExtendRequest)
    package_id = _require(record, _OPEN, "extend")
    now = datetime.now(UTC)
    if body.expiry_timestamp is not None:
        new_expiry = body.expiry_timestamp.astimezone(UTC)
    else:
        new_expiry = max(record.expiry_timestamp or now, now) + timedelta(days=body.days or 0)
    if new_expiry <= now + timedelta(minutes=5):
        raise ApiProblem(400, "The new expiry must lie in the future.",
                         errors=[FieldError(field="expiryTimestamp", message="in the past")])
    request.connective.expiry_time_stamp(package_id, new_expiry)

    def extended(row: PackageRecord) -> bool:
        row.extension_count += 1
        row.expiry_timestamp = new_expiry
        return True

    updated = _record_action(request, record.ref, "extended", extended, expiry=new_expiry.isoformat())
    if record.status is PackageStatus.EXPIRED:
        # An extension reopens an expired package at Connective; read it so the row shows Pending now.
        updated = apply_status(request.store, record.ref, request.connective.get_package_status(package_id),
                               source="api-extend").record or updated
    return json_response(_resource(updated))


def delete_package(request: ApiRequest) -> func.HttpResponse:
    record = request.package()
    if record.connective_deleted_at is not None:
        return json_response(_resource(record))
    if record.status is PackageStatus.FINISHED:
        raise ApiProblem(409, "The package is Finished but not archived yet; delete it once it is Archived, so "
                              "the signed documents are kept.")
    package_id = _require(record, DELETABLE, "delete")
    with contextlib.suppress(NotFoundError):  # already gone at Connective: the row only needs to say so
        request.connective.delete_package(package_id)
    now = utcnow()

    def mark(row: PackageRecord) -> bool:
        row.connective_deleted_at = row.connective_deleted_at or now
        return True

    return json_response(_resource(_record_action(request, record.ref, "deleted_at_connective", mark)))
