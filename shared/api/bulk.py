"""Bulk sends through the HTTP API: POST /bulk-sends, GET /bulk-sends/{job}, POST /bulk-sends/{job}/cancel.

A POST writes the same folder a person would upload: the documents, `recipients.json` and `job.json`
in `signing-bulk/{job}/`, and starts the job through the same code as the blob trigger (which then
finds the upload already started). So a bulk send means the same thing through either door, and its
report lands in the same place.

Idempotency: an `Idempotency-Key` header names the job (`api-` + a hash). POSTing again with the same
key is a re-upload: rows already sent are skipped, new rows are sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import azure.functions as func
from azure.storage.blob import ContentSettings
from pydantic import ConfigDict, Field

from shared.api.context import ApiRequest, json_response
from shared.api.create import IDEMPOTENCY_HEADER, PATH_CONTAINERS
from shared.api.models import ApiModel, RequestModel
from shared.api.problems import ApiProblem, FieldError
from shared.bulk import feeder, jobs
from shared.bulk.report import REPORT_FILE, SUMMARY_FILE, Tally, eta_seconds, tally
from shared.bulk.spec import JOB_FILE, is_valid_job_id
from shared.storage import names
from shared.storage.bulk import BulkJob, JobState
from shared.storage.schedule import bulk_quiet_after

RETRY_AFTER_S = 10
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_LANGUAGES = "da, de, en, es, fi, fr, lv, nb, nl, pl or sv"


# ---- models ----------------------------------------------------------------------------------------

class BulkDocument(RequestModel):
    model_config = ConfigDict(title="Bulk Document")

    path: str | None = Field(default=None, min_length=3, max_length=1024, title="Blob Path",
                             description=f"A PDF already in storage, as container/blob; the container is one of "
                                         f"{', '.join((names.BULK_CONTAINER, *PATH_CONTAINERS))}.")
    content: str | None = Field(default=None, title="File Content",
                                description="The PDF itself, base64-encoded (instead of a path).")
    name: str | None = Field(default=None, max_length=150, title="Document Name",
                             description="The name signers see; default: the file name.")
    language: str | None = Field(default=None, max_length=5, title="Document Language",
                                 description="Language of the signature texts: en, nl, de, fr or es.")


class BulkRecipient(RequestModel):
    model_config = ConfigDict(title="Bulk Recipient")

    email: str = Field(max_length=254, title="Email", description="The recipient's e-mail address.")
    first_name: str | None = Field(default=None, max_length=100, title="First Name",
                                   description="The recipient's first name.")
    last_name: str | None = Field(default=None, max_length=100, title="Last Name",
                                  description="The recipient's last name.")
    language: str | None = Field(default=None, max_length=5, title="Language",
                                 description=f"Language of the recipient's pages and e-mails: {_LANGUAGES}.")
    phone: str | None = Field(default=None, max_length=20, title="Phone",
                              description="Mobile number in E.164 form, for SMS codes.")
    id: str | None = Field(default=None, max_length=200, title="Recipient ID",
                           description="Your own key of the row; default: the e-mail address. A key is sent once.")
    fields: dict[str, str] = Field(default_factory=dict, title="Template Fields",
                                   description="Further values the name template may use, by column name.")


class BulkOtherSigner(RequestModel):
    model_config = ConfigDict(title="Bulk Co-signer")

    name: str = Field(min_length=1, max_length=200, title="Name", description="The person's full name.")
    email: str = Field(max_length=254, title="Email", description="The person's e-mail address.")
    type: str = Field(default="Signer", title="Role", description="Signer or Receiver.")
    order: int = Field(default=2, ge=1, le=1000, title="Order",
                       description="Their place in the signing order (the recipient's is recipientOrder).")
    language: str | None = Field(default=None, max_length=5, title="Language",
                                 description=f"Language of their pages and e-mails: {_LANGUAGES}.")


class BulkSendRequest(RequestModel):
    """A bulk send: the same documents to every recipient, each in a package of their own."""

    model_config = ConfigDict(title="Bulk Send Request")

    name: str = Field(min_length=1, max_length=300, title="Package Name Template",
                      description="Name of each package; {FirstName}, {LastName} and any template field are "
                                  "replaced by the recipient's values.")
    documents: list[BulkDocument] = Field(min_length=1, max_length=30, title="Documents",
                                          description="The documents every recipient signs.")
    recipients: list[BulkRecipient] = Field(min_length=1, max_length=10000, title="Recipients",
                                            description="One package per recipient.")
    others: list[BulkOtherSigner] = Field(default_factory=list, max_length=49, title="Co-signers And Receivers",
                                          description="People who join every package.")
    recipient_order: int = Field(default=1, ge=1, le=1000, title="Recipient Order",
                                 description="The recipient's place in the signing order.")
    marker: str | None = Field(default=None, max_length=100, title="Signing Marker",
                               description="Text in the documents where the recipient signs; default: #SIGN1#, "
                                           "else a box at the bottom of the last page.")
    expiry_days: int | None = Field(default=None, ge=1, le=366, title="Expiry Days",
                                    description="Days each package stays open for signing.")
    initiator: str | None = Field(default=None, max_length=254, title="Initiator",
                                  description="E-mail of the portal user who sends the packages; default: the app's.")
    external_reference: str | None = Field(default=None, max_length=150, title="External Reference",
                                           description="Your reference of the bulk send.")


class AcceptedBulkSend(ApiModel):
    """The answer to a bulk send: accepted, being sent."""

    model_config = ConfigDict(title="Accepted Bulk Send")

    job_id: str = Field(title="Bulk Send ID", description="The bulk send's id; use it in the other bulk calls.")
    state: JobState = Field(title="State", description="Sending at first.")
    status_url: str = Field(title="Status URL", description="Where to read the bulk send's progress.")


class StatusCount(ApiModel):
    model_config = ConfigDict(title="Status Count")

    status: str = Field(title="Status", description="A package status, or Skipped for a bad row.")
    count: int = Field(title="Count", description="How many rows are in that status.")


class BulkFailure(ApiModel):
    model_config = ConfigDict(title="Bulk Failure")

    line: int = Field(title="Line", description="The row's line in the recipients file (the item number in JSON).")
    key: str = Field(title="Row Key", description="The row's id or e-mail address.")
    status: str = Field(title="Status", description="Skipped for a bad row, or the package's status.")
    code: str | None = Field(default=None, title="Reason Code", description="A short code for the reason.")
    reason: str | None = Field(default=None, title="Reason", description="Why the row failed, in plain words.")
    package_ref: str | None = Field(default=None, title="Package Reference",
                                    description="The row's package, when it has one.")


class BulkSendResource(ApiModel):
    """A bulk send's progress, from the app's tables (no Connective call)."""

    model_config = ConfigDict(title="Bulk Send")

    job_id: str = Field(title="Bulk Send ID", description="The bulk send's id.")
    state: JobState = Field(title="State", description="Sending, Tracking, Completed, Cancelling, Cancelled or "
                                                        "InputRejected.")
    is_final: bool = Field(title="Is Final", description="True once every package is final and the report is final.")
    rows: int = Field(title="Rows", description="Rows read so far (good and skipped).")
    packages: int = Field(title="Packages", description="Rows that have a package.")
    skipped: int = Field(title="Skipped Rows", description="Bad rows, skipped; failures says why.")
    statuses: list[StatusCount] = Field(title="Status Counts", description="Rows by status.")
    failures: list[BulkFailure] = Field(title="Failures", description="Skipped rows and refused packages (the first "
                                                                      "100).")
    eta_seconds: int = Field(title="ETA Seconds", description="Seconds until every package is created and, once "
                                                              "signed, archived, at the rate budget; signing time is "
                                                              "not included.")
    estimated_completion_at: datetime | None = Field(default=None, title="Estimated Completion",
                                                     description="Now plus the ETA (UTC), while not final.")
    report: str = Field(title="Report", description="The report.csv blob (container/path), rewritten as the send "
                                                    "progresses.")
    summary: str = Field(title="Summary", description="The summary.json blob (container/path).")
    created_at: datetime = Field(title="Created At", description="When the bulk send was first received (UTC).")
    completed_at: datetime | None = Field(default=None, title="Completed At",
                                          description="When the bulk send became final (UTC).")
    reason: str | None = Field(default=None, title="Reason", description="Why the bulk send was refused, if it was.")
    error_report: str | None = Field(default=None, title="Error Report",
                                     description="The error report blob of a refused bulk send.")

    @classmethod
    def of(cls, job: BulkJob, counts: Tally, eta_s: int) -> BulkSendResource:
        folder = f"{names.BULK_CONTAINER}/{job.job}"
        return cls(
            job_id=job.job, state=job.state, is_final=job.state.is_final, rows=counts.good + counts.skipped,
            packages=counts.good, skipped=counts.skipped,
            statuses=[StatusCount(status=status, count=count) for status, count in sorted(counts.statuses.items())],
            failures=[BulkFailure(line=row.line, key=row.key, status=row.status, code=row.code, reason=row.reason,
                                  package_ref=row.package_ref) for row in counts.failures],
            eta_seconds=eta_s,
            estimated_completion_at=None if job.state.is_final else datetime.now(UTC) + timedelta(seconds=eta_s),
            report=f"{folder}/{REPORT_FILE}", summary=f"{folder}/{SUMMARY_FILE}", created_at=job.created_at,
            completed_at=job.completed_at, reason=job.reason, error_report=job.error_report,
        )


# ---- handlers --------------------------------------------------------------------------------------

def job_id_for(idempotency_key: str | None) -> str:
    if idempotency_key:
        return "api-" + hashlib.sha256(f"bulk-send\n{idempotency_key}".encode()).hexdigest()[:24]
    return "api-" + uuid.uuid4().hex[:24]


def _status_url(request: ApiRequest, job_id: str) -> str:
    return request.url(f"/bulk-sends/{quote(job_id, safe='')}")


def _document_blobs(request: ApiRequest, job_id: str, body: BulkSendRequest) -> list[dict[str, Any]]:
    """Put each document in the job folder; returns job.json's documents."""
    container = request.store.clients.container(names.BULK_CONTAINER)
    documents = []
    for index, document in enumerate(body.documents):
        field = f"documents[{index}]"
        if (document.path is None) == (document.content is None):
            raise ApiProblem(400, f"{field} needs exactly one of path and content.",
                             errors=[FieldError(field=field, message="give path or content")])
        stem = _SAFE_NAME.sub("-", document.name or f"document-{index}").strip("-.")[:80] or f"document-{index}"
        target = container.get_blob_client(f"{job_id}/{index}-{stem.removesuffix('.pdf')}.pdf")
        if document.content is not None:
            try:
                data = base64.b64decode(document.content, validate=True)
            except (binascii.Error, ValueError):
                raise ApiProblem(400, f"{field}.content is not valid base64.",
                                 errors=[FieldError(field=f"{field}.content", message="invalid base64")]) from None
            target.upload_blob(data, overwrite=True, content_settings=ContentSettings(content_type="application/pdf"))
        else:
            source_container, _, blob_name = (document.path or "").partition("/")
            if (source_container not in (names.BULK_CONTAINER, *PATH_CONTAINERS) or not blob_name
                    or ".." in blob_name.split("/")):
                raise ApiProblem(400, f"{field}.path must be container/blob in "
                                      f"{', '.join((names.BULK_CONTAINER, *PATH_CONTAINERS))}.",
                                 errors=[FieldError(field=f"{field}.path", message="unsupported path")])
            source = request.store.clients.container(source_container).get_blob_client(blob_name)
            if not source.exists():
                raise ApiProblem(400, f"{field}.path: {document.path} does not exist.",
                                 errors=[FieldError(field=f"{field}.path", message="no such blob")])
            # Copied through the worker, a chunk at a time: a server-side copy would need a SAS on the source.
            target.upload_blob(source.download_blob().chunks(), overwrite=True,
                               content_settings=ContentSettings(content_type="application/pdf"))
        entry: dict[str, Any] = {"path": target.blob_name.split("/", 1)[1]}
        if document.name:
            entry["name"] = document.name
        if document.language:
            entry["language"] = document.language
        documents.append(entry)
    return documents


def _job_json(body: BulkSendRequest, documents: list[dict[str, Any]]) -> dict[str, Any]:
    recipient: dict[str, Any] = {"order": body.recipient_order}
    if body.marker:
        recipient["locations"] = [{"marker": body.marker, "document": index} for index in range(len(documents))]
    spec: dict[str, Any] = {
        "schemaVersion": "1", "name": body.name, "documents": documents, "recipients": "recipients.json",
        "recipient": recipient,
        "others": [{key: value for key, value in other.model_dump(by_alias=True).items() if value is not None}
                   for other in body.others],
    }
    for key, value in (("expiryDays", body.expiry_days), ("initiator", body.initiator),
                       ("externalReference", body.external_reference)):
        if value is not None:
            spec[key] = value
    return spec


def _recipients_json(body: BulkSendRequest) -> bytes:
    rows = []
    for recipient in body.recipients:
        row: dict[str, str] = dict(recipient.fields)
        row.update({key: value for key, value in recipient.model_dump(by_alias=True, exclude={"fields"}).items()
                    if value is not None})
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False).encode("utf-8")


def post_bulk_send(request: ApiRequest) -> func.HttpResponse:
    body: BulkSendRequest = request.body(BulkSendRequest)
    key = (request.http.headers.get(IDEMPOTENCY_HEADER) or "").strip() or None
    if key is not None and len(key) > 200:
        raise ApiProblem(400, "The Idempotency-Key header is longer than 200 characters.")
    job_id = job_id_for(key)
    existing = request.store.bulk.get(job_id)
    if existing is not None and existing.state in (JobState.CANCELLING, JobState.CANCELLED):
        raise ApiProblem(409, "This bulk send was cancelled; send the rows with a new Idempotency-Key.")
    documents = _document_blobs(request, job_id, body)
    jobs.upload_json(request.store, f"{job_id}/recipients.json", _recipients_json(body))
    etag = jobs.upload_json(request.store, f"{job_id}/{JOB_FILE}", json.dumps(_job_json(body, documents)).encode())
    blob = request.store.clients.container(names.BULK_CONTAINER).get_blob_client(f"{job_id}/{JOB_FILE}")
    job = jobs.start(request.store, request.settings, job_id, blob, etag, source="api")
    if job is None:
        raise ApiProblem(409, "The bulk send changed while it was being accepted; send it again.")
    if job.state is JobState.INPUT_REJECTED:
        raise ApiProblem(400, f"The bulk send cannot be sent: {job.reason}",
                         problem_type="urn:connective-functions:bulk-send-rejected")
    accepted = AcceptedBulkSend(job_id=job.job, state=job.state, status_url=_status_url(request, job.job))
    return json_response(accepted, 202, {"Location": accepted.status_url, "Retry-After": str(RETRY_AFTER_S)})


def _job(request: ApiRequest) -> BulkJob:
    job_id = request.route("job")
    job = request.store.bulk.get(job_id) if is_valid_job_id(job_id) else None
    if job is None:
        raise ApiProblem(404, f"There is no bulk send {job_id[:100]!r}.")
    return job


def _stalled(request: ApiRequest, job: BulkJob) -> bool:
    """A job whose chain of steps has gone quiet for far longer than its longest delay."""
    return not job.state.is_final and datetime.now(UTC) - job.updated_at > bulk_quiet_after(request.settings)


def get_bulk_send(request: ApiRequest) -> func.HttpResponse:
    job = _job(request)
    if _stalled(request, job):
        jobs.send_step(request.store, job)  # a lost step: the job's own step number keeps this single
    counts = tally(request.store, job)
    eta_s = 0 if job.state.is_final else eta_seconds(request.settings, job, counts)
    headers = {} if job.state.is_final else {"Retry-After": str(RETRY_AFTER_S)}
    return json_response(BulkSendResource.of(job, counts, eta_s), 200, headers)


def cancel_bulk_send(request: ApiRequest) -> func.HttpResponse:
    job = _job(request)
    if job.state.is_final:
        raise ApiProblem(409, f"The bulk send is already {job.state.value}.")
    cancelled = feeder.cancel(request.store, job.job) or job
    counts = tally(request.store, cancelled)
    return json_response(BulkSendResource.of(cancelled, counts, 0), 202,
                         {"Location": _status_url(request, job.job), "Retry-After": str(RETRY_AFTER_S)})
