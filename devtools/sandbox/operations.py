"""The API v3 operations: the 19 of the connector swagger, Delete Document and Set Process Information v3.1."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devtools.sandbox import fields, lifecycle
from devtools.sandbox.auditproof import audit_proof_xml
from devtools.sandbox.clock import iso_z, parse_timestamp
from devtools.sandbox.documents import build_document, detected_locations, locations_from_fields
from devtools.sandbox.errors import ApiError, bad_request, conflict, not_found
from devtools.sandbox.model import PACKAGE_STATUSES, Document, Package, new_id
from devtools.sandbox.process import EMAIL, parse_process, v3_locations, v31_locations
from devtools.sandbox.sandbox import Sandbox
from devtools.sandbox.views import location_summary, locations_view, status_view
from devtools.sandbox.wire import ApiRequest, Reply

Handler = Callable[[Sandbox, ApiRequest], Reply]
SORT_FIELDS = {"creationtimestamp": lambda p: p.created, "packagename": lambda p: p.name.lower(),
               "packagestatus": lambda p: p.status, "externalpackagereference": lambda p: p.external_reference or ""}


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # relative to the version's base path; {name} parameters
    handler: Handler
    versions: tuple[str, ...] = ("3",)
    creates: bool = False


# ----- helpers ------------------------------------------------------------------------------------

def _draft(package: Package, what: str) -> None:
    if package.status != "Draft":
        raise conflict("Package.InvalidStatus",
                       f"{what} needs a Draft package; package {package.id} is {package.status}")


def _timestamp(body: dict[str, Any], name: str, where: str) -> datetime | None:
    value = fields.text(body, name, where=where)
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise bad_request(f"{where}.{name}.Invalid", f"{name} must be an ISO-8601 date-time") from None


def _future_expiry(sandbox: Sandbox, body: dict[str, Any], where: str, required: bool = False) -> datetime | None:
    expiry = _timestamp(body, "ExpiryTimestamp", where)
    if expiry is None and required:
        raise bad_request(f"{where}.ExpiryTimestamp.Required", "ExpiryTimestamp is required")
    if expiry is not None and expiry <= sandbox.clock.now():
        raise bad_request(f"{where}.ExpiryTimestamp.Invalid", "ExpiryTimestamp must lie in the future")
    return expiry


def _new_package(sandbox: Sandbox, request: ApiRequest, fallback_name: str | None = None) -> Package:
    body = request.data
    where = "Package"
    name = fields.display_name(body, "PackageName", required=fallback_name is None, where=where) or fallback_name
    initiator = fields.text(body, "Initiator", required=True, where=where) or ""
    if not EMAIL.match(initiator):
        raise bad_request("Package.Initiator.Invalid", "Initiator must be the email address of a portal user")
    correlation_id = fields.text(body, "CorrelationId", where=where)
    if correlation_id and not sandbox.knobs.audit_proofs:
        raise conflict("AuditProof.Disabled", "CorrelationId needs the audit-proof feature, which is disabled")
    days = fields.integer(body, "ActionUrlExpirationPeriodInDays", where=where)
    if days is not None and days <= 0:
        raise bad_request("Package.ActionUrlExpirationPeriodInDays.Invalid", "must be a positive number of days")
    extra: dict[str, Any] = {key: fields.boolean(body, key, where=where)
                             for key in ("DownloadUnsignedFiles", "ReassignEnabled")}
    extra["ThemeCode"] = fields.text(body, "ThemeCode", where=where)
    extra["ActionUrlExpirationPeriodInDays"] = days
    return Package(
        id=new_id(), name=name or "package", initiator=initiator, created=sandbox.clock.now(), owner=request.user,
        callback_url=fields.absolute_url(body, "CallBackUrl", where=where),
        notification_callback_url=fields.absolute_url(body, "NotificationCallBackUrl", where=where),
        correlation_id=correlation_id, external_reference=fields.text(body, "ExternalPackageReference", where=where),
        expiry=_future_expiry(sandbox, body, where),
        document_group_code=fields.text(body, "DocumentGroupCode", where=where) or "00001",
        f2f_redirect_url=fields.absolute_url(body, "F2FRedirectUrl", where=where), extra=extra,
    )


def _upload(sandbox: Sandbox, request: ApiRequest, part: str, required: bool) -> Path | None:
    """A document's bytes, from a multipart part or a base64 property, saved to disk."""
    if part.lower() in request.files:
        return request.files.pop(part.lower())
    encoded = fields.get(request.data, part)
    if encoded is None or encoded == "":
        if required:
            raise bad_request(f"Document.{part}.Required", f"{part} is required (base64, or a multipart part)")
        return None
    if not isinstance(encoded, str):
        raise bad_request(f"Document.{part}.Invalid", f"{part} must be a base64 string")
    return sandbox.store.save_base64(encoded, f"Document.{part}")


def _received_document(sandbox: Sandbox, request: ApiRequest) -> tuple[Document, Any, list[Path]]:
    content = _upload(sandbox, request, "Document", required=True)
    assert content is not None
    files = [content]
    try:
        representation = _upload(sandbox, request, "Representation", required=False)
        if representation is not None:
            files.append(representation)
        document, info = build_document(request.data, content, representation, sandbox.clock.now(),
                                        sandbox.knobs.max_document_mb)
    except Exception:
        for path in files:
            path.unlink(missing_ok=True)
        raise
    return document, info, files


def _check_correlation(sandbox: Sandbox, others: list[Document], document: Document) -> None:
    if document.correlation_id is None:
        return
    if not sandbox.knobs.audit_proofs:
        raise conflict("AuditProof.Disabled", "CorrelationId needs the audit-proof feature, which is disabled")
    if any(other.correlation_id == document.correlation_id for other in others):
        raise bad_request("Document.CorrelationId.Duplicate", "a document CorrelationId must be unique in the package")


def _finished(package: Package) -> None:
    if package.status != "Finished":
        raise conflict(f"Package.NotSigned:{package.id}", f"package is {package.status}, not fully signed")


def _audit_enabled(sandbox: Sandbox) -> None:
    if not sandbox.knobs.audit_proofs:
        raise conflict("AuditProof.Disabled", "the audit-proof feature is disabled")


def _proof_xml(sandbox: Sandbox, parts: list[tuple[Package, list[Document]]]) -> bytes:
    knobs = sandbox.knobs
    return audit_proof_xml(parts, wrapper=knobs.audit_proof_wrapper,
                           per_session=knobs.audit_proof_uploads == "per-session")


def _xml(content: bytes, package_id: str | None = None) -> Reply:
    return Reply(body=content, content_type="application/xml; charset=utf-8", package_id=package_id)


# ----- packages -----------------------------------------------------------------------------------

def create_package(sandbox: Sandbox, request: ApiRequest) -> Reply:
    package = _new_package(sandbox, request)
    with sandbox.lock:
        sandbox.add_package(package)
    # `Z`, as a real captured answer has it (the reference's examples show +00:00).
    return Reply(201, {"PackageId": package.id, "CreationTimestamp": iso_z(package.created)},
                 package_id=package.id, mutated=True)


def add_document(sandbox: Sandbox, request: ApiRequest) -> Reply:
    package_id = request.params["id"]
    with sandbox.lock:
        _draft(sandbox.package(package_id), "Add Document")
    document, info, files = _received_document(sandbox, request)
    try:
        signing_fields = fields.objects(request.data, "SigningFields", where="Document")
        locations = (locations_from_fields(document, info, signing_fields) if signing_fields
                     else detected_locations(document, info))
        with sandbox.lock:
            package = sandbox.package(package_id)
            _draft(package, "Add Document")
            _check_correlation(sandbox, package.documents, document)
            package.documents.append(document)
    except Exception:
        for path in files:
            path.unlink(missing_ok=True)
        raise
    return Reply(json={"DocumentId": document.id, "CreationTimestamp": iso_z(document.created),
                       "Locations": [location_summary(location) for location in locations]},
                 package_id=package.id, mutated=True)


def _document(package: Package, document_id: str) -> Document:
    document = package.find_document(document_id)
    if document is None:
        raise not_found(f"Document.NotFound:{document_id}", "no such document in the package")
    return document


def delete_document(sandbox: Sandbox, request: ApiRequest) -> Reply:
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        document = _document(package, request.params["documentid"])
        _draft(package, "Delete Document")
        package.documents.remove(document)
        gone = {location.id for location in document.locations}
        for _, actor in package.actors():
            actor.location_ids = [lid for lid in actor.location_ids if lid not in gone]
    sandbox.delete_files(document)
    return Reply(package_id=package.id, mutated=True)


def get_locations(sandbox: Sandbox, request: ApiRequest) -> Reply:
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        return Reply(json=locations_view(package), package_id=package.id)


def set_process(sandbox: Sandbox, request: ApiRequest) -> Reply:
    resolver = v31_locations if request.version == "3.1" else v3_locations
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        _draft(package, "Set Process Information")
        package.stakeholders = parse_process(package, request.data, request.version, resolver)
        package.process_version = request.version
    return Reply(package_id=package.id, mutated=True)


def set_status(sandbox: Sandbox, request: ApiRequest) -> Reply:
    wanted = fields.choice(request.data, "Status", ("Pending", "Revoked"), where="Status")
    if wanted is None:
        wanted = fields.choice(request.query, "status", ("Pending", "Revoked"), where="Status")
    if wanted is None:
        raise bad_request("Status.Status.Required", "Status is required: Pending or Revoked")
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        now = sandbox.clock.now()
        if wanted == "Pending":
            events = lifecycle.start(package, now)
            sandbox.issue_links(package)
        else:
            events = lifecycle.revoke(package, now)
        sandbox.emit(events)
        view = status_view(package, sandbox.link_base)
    sandbox.wake()
    return Reply(json=view, package_id=package.id, mutated=True)


def get_status(sandbox: Sandbox, request: ApiRequest) -> Reply:
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        return Reply(json=status_view(package, sandbox.link_base), package_id=package.id)


def create_instant_package(sandbox: Sandbox, request: ApiRequest) -> Reply:
    document, info, files = _received_document(sandbox, request)
    try:
        package = _new_package(sandbox, request, fallback_name=document.name)
        _check_correlation(sandbox, [], document)
        package.documents.append(document)

        def inline_fields(actor_body: dict[str, Any], where: str) -> list[str]:
            signing_fields = fields.objects(actor_body, "SigningFields", where=where)
            return [location.id for location in locations_from_fields(document, info, signing_fields, where)]

        package.stakeholders = parse_process(package, request.data, "instant", inline_fields)
        package.process_version = "3"
        with sandbox.lock:
            events = lifecycle.start(package, sandbox.clock.now())
            sandbox.add_package(package)
            sandbox.issue_links(package)
            sandbox.emit(events)
            view = status_view(package, sandbox.link_base, with_locations=True)
    except Exception:
        for path in files:
            path.unlink(missing_ok=True)
        raise
    sandbox.wake()
    return Reply(json={"PackageId": package.id, **view, "Warnings": []}, package_id=package.id, mutated=True)


def _sort_field(variant: str, given: str | None) -> str:
    """SortField's values are documented nowhere: the `list_sort_field` knob plays the server's choices."""
    wanted = (given or "").strip("\"' ").lower()
    if wanted and variant == "refuse":
        raise bad_request("PackageList.SortField.Invalid", "SortField is not supported")
    if not wanted or variant == "ignore":
        return "creationtimestamp"
    if wanted not in SORT_FIELDS:
        raise bad_request("PackageList.SortField.Invalid", f"SortField must be one of {', '.join(SORT_FIELDS)}")
    return wanted


def _status_filter(variant: str, given: str | None) -> str | None:
    """The Status filter in the casing the `list_status_case` knob accepts (the real one is unconfirmed)."""
    value = (given or "").strip("\"' ")
    if not value:
        return None
    accepted = {"any": PACKAGE_STATUSES, "exact": PACKAGE_STATUSES,
                "upper": tuple(status.upper() for status in PACKAGE_STATUSES)}[variant]
    match = next((status for status, shown in zip(PACKAGE_STATUSES, accepted, strict=True)
                  if shown == value or (variant == "any" and shown.lower() == value.lower())), None)
    if match is None:
        raise bad_request("PackageList.Status.Invalid", f"Status must be one of {', '.join(accepted)}")
    return match


def list_packages(sandbox: Sandbox, request: ApiRequest) -> Reply:
    query = request.query
    max_quantity = fields.integer(query, "maxquantity", where="PackageList", default=100) or 0
    if not 1 <= max_quantity <= 1000:
        raise bad_request("PackageList.MaxQuantity.Invalid", "MaxQuantity must be 1..1000")
    sort_field = _sort_field(sandbox.knobs.list_sort_field, query.get("sortfield"))
    sort_order = (query.get("sortorder") or "ASC").strip("\"' ").upper()
    if sort_order not in ("ASC", "DESC"):
        raise bad_request("PackageList.SortOrder.Invalid", "SortOrder must be ASC or DESC")
    status = _status_filter(sandbox.knobs.list_status_case, query.get("status"))
    before = _timestamp(query, "createdbeforedate", "PackageList")
    after = _timestamp(query, "createdafterdate", "PackageList")
    query_key = repr((sort_field, sort_order, status, before, after))
    with sandbox.lock:
        offset = 0
        token = (query.get("continuationtoken") or "").strip()
        if token:
            cursor = sandbox.list_cursors.get(token.lower())
            if cursor is None or cursor[0] != query_key:
                raise bad_request("PackageList.ContinuationToken.Invalid", "unknown or mismatched ContinuationToken")
            offset = cursor[1]
        now = sandbox.clock.now()
        for package in sandbox.packages.values():
            sandbox.emit(lifecycle.expire_if_due(package, now))
        matching = [package for package in sandbox.packages.values()
                    if (status is None or package.status == status)
                    and (before is None or package.created < before) and (after is None or package.created > after)]
        matching.sort(key=lambda p: p.id)
        matching.sort(key=SORT_FIELDS[sort_field], reverse=sort_order == "DESC")
        page = matching[offset:offset + max_quantity]
        next_token = None
        if offset + max_quantity < len(matching):
            next_token = new_id()
            sandbox.list_cursors[next_token] = (query_key, offset + max_quantity)
        upper = sandbox.knobs.list_status_case == "upper"
        items = [{"Id": p.id, "PackageStatus": p.status.upper() if upper else p.status,
                  "ExternalPackageReference": p.external_reference} for p in page]
    return Reply(json={"ContinuationToken": next_token, "MaxQuantity": max_quantity, "Total": len(matching),
                       "Items": items})


def skip_signers(sandbox: Sandbox, request: ApiRequest) -> Reply:
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        sandbox.emit(lifecycle.skip_signers(package, sandbox.clock.now()))
    return Reply(package_id=package.id, mutated=True)


def attachment(filename: str) -> str:
    """A Content-Disposition header value for any file name.

    HTTP headers are Latin-1 at most, so a non-ASCII name goes in the RFC 5987 `filename*=` form, beside
    an ASCII fallback in `filename=` for clients that read only that one.
    """
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download_package(sandbox: Sandbox, request: ApiRequest) -> Reply:
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        _finished(package)
        documents = list(package.documents)
    archive = sandbox.store.new_path(".zip")
    names: set[str] = set()
    # Stored, not deflated: PDFs are compressed already, and 100 MB documents must go out quickly.
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:
        for document in documents:
            extension = ".xml" if document.document_type == "application/xml" else ".pdf"
            name = document.name + extension
            counter = 1
            while name in names:
                counter += 1
                name = f"{document.name} ({counter}){extension}"
            names.add(name)
            bundle.write(sandbox.signed_file(document), arcname=name)
    return Reply(file=archive, delete_file=True, content_type="application/zip", package_id=package.id,
                 headers={"Content-Disposition": attachment(f"{package.name}.zip")})


def download_document(sandbox: Sandbox, request: ApiRequest) -> Reply:
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        document = _document(package, request.params["documentid"])
        _finished(package)
    extension = ".xml" if document.document_type == "application/xml" else ".pdf"
    return Reply(file=sandbox.signed_file(document), content_type=document.document_type, package_id=package.id,
                 headers={"Content-Disposition": attachment(f"{document.name}{extension}")})


def extend_expiry(sandbox: Sandbox, request: ApiRequest) -> Reply:
    expiry = _future_expiry(sandbox, request.data, "Expiry", required=True)
    assert expiry is not None
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        sandbox.emit(lifecycle.extend_expiry(package, expiry, sandbox.clock.now()))
    return Reply(package_id=package.id, mutated=True)


def send_reminders(sandbox: Sandbox, request: ApiRequest) -> Reply:
    with sandbox.lock:
        try:
            package = sandbox.package(request.params["id"])
        except ApiError as error:  # the swagger answers 400 here, not 404
            raise bad_request(error.code, error.message) from None
        if package.status != "Pending":
            raise conflict("Package.InvalidStatus", f"reminders need a Pending package; it is {package.status}")
        package.reminders += 1
        for _, actor in package.actors():
            if actor.status in ("Available", "InProgress"):
                actor.reminders += 1
    sandbox.stats.record_reminder(package.id)
    return Reply(package_id=package.id, mutated=True)


def delete_package(sandbox: Sandbox, request: ApiRequest) -> Reply:
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        if package.status in ("Pending", "Expired"):
            raise conflict("Package.InvalidStatus", f"a {package.status} package cannot be deleted; revoke it first")
        if package.status == "Draft" and sandbox.knobs.delete_draft_conflict:
            raise conflict("Package.InvalidStatus", "a Draft package cannot be deleted")
        sandbox.forget(package)
    return Reply(package_id=package.id, mutated=True)


# ----- audit proofs -------------------------------------------------------------------------------

def package_audit_proof(sandbox: Sandbox, request: ApiRequest) -> Reply:
    _audit_enabled(sandbox)
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        _finished(package)
        return _xml(_proof_xml(sandbox, [(package, package.documents)]), package.id)


def document_audit_proof(sandbox: Sandbox, request: ApiRequest) -> Reply:
    _audit_enabled(sandbox)
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        document = _document(package, request.params["documentid"])
        _finished(package)
        return _xml(_proof_xml(sandbox, [(package, [document])]), package.id)


def package_correlation_audit_proof(sandbox: Sandbox, request: ApiRequest) -> Reply:
    _audit_enabled(sandbox)
    correlation_id = request.params["correlationid"]
    with sandbox.lock:
        packages = sandbox.each_package(lambda p: p.correlation_id == correlation_id)
        if not packages:
            raise not_found(f"Correlation.NotFound:{correlation_id}", "no package has this CorrelationId")
        for package in packages:
            _finished(package)
        return _xml(_proof_xml(sandbox, [(package, package.documents) for package in packages]))


def document_correlation_audit_proof(sandbox: Sandbox, request: ApiRequest) -> Reply:
    _audit_enabled(sandbox)
    correlation_id = request.params["correlationid"]
    with sandbox.lock:
        parts = []
        for package in sandbox.packages.values():
            documents = [d for d in package.documents if d.correlation_id == correlation_id]
            if documents:
                _finished(package)
                parts.append((package, documents))
        if not parts:
            raise not_found(f"Correlation.NotFound:{correlation_id}", "no document has this CorrelationId")
        return _xml(_proof_xml(sandbox, parts))


def add_external_proof(sandbox: Sandbox, request: ApiRequest) -> Reply:
    _audit_enabled(sandbox)
    body = request.data
    where = "Proof"
    location_id = fields.text(body, "LocationId", required=True, where=where) or ""
    proof = {name: fields.text(body, name, required=name in ("Name", "Type"), where=where)
             for name in ("Name", "Type", "Description", "Content", "IpAddress")}
    with sandbox.lock:
        package = sandbox.package(request.params["id"])
        location = package.find_location(location_id)
        if location is None:
            raise not_found(f"Location.NotFound:{location_id}", "no such signing location in the package")
        if package.status not in ("Pending", "Finished"):
            raise conflict("Package.InvalidStatus", f"proofs can be added to Pending or Finished packages, "
                           f"not {package.status}")
        location.external_proofs.append(proof)
    return Reply(204, package_id=package.id, mutated=True)


OPERATIONS: tuple[Operation, ...] = (
    Operation("CreateInstantPackage", "POST", "/packages/instant", create_instant_package, creates=True),
    Operation("PackageList", "GET", "/packages", list_packages),
    Operation("CreatePackage", "POST", "/packages", create_package, creates=True),
    Operation("AddDocumentToPackage", "POST", "/packages/{id}/documents", add_document),
    Operation("DeleteDocument", "DELETE", "/packages/{id}/documents/{documentId}", delete_document),
    Operation("GetSigningLocations", "GET", "/packages/{id}/locations", get_locations),
    Operation("SetProcessInformation", "PUT", "/packages/{id}/process", set_process),
    Operation("SetProcessInformationV31", "PUT", "/packages/{id}/process", set_process, versions=("3.1",)),
    Operation("GetPackageStatus", "GET", "/packages/{id}/status", get_status),
    Operation("SetPackageStatus", "PUT", "/packages/{id}/status", set_status),
    Operation("SkipSigners", "POST", "/packages/{id}/skipsigners", skip_signers),
    Operation("DownloadPackage", "GET", "/packages/{id}/download", download_package),
    Operation("DownloadDocumentFromPackage", "GET", "/packages/{id}/download/{documentId}", download_document),
    Operation("ExpiryTimeStamp", "PUT", "/packages/{id}/expirytimestamp", extend_expiry),
    Operation("SendPackageReminders", "POST", "/packages/{id}/reminders", send_reminders),
    Operation("DeletePackage", "DELETE", "/packages/{id}", delete_package),
    Operation("PackageAuditProof", "GET", "/packages/{id}/auditproof/download", package_audit_proof),
    Operation("PackageAuditProofDoc", "GET", "/packages/{id}/auditproof/download/{documentId}", document_audit_proof),
    Operation("PackageCorrelationAuditProof", "GET", "/packagecorrelations/{correlationId}/auditproof/download",
              package_correlation_audit_proof),
    Operation("DocumentCorrelationAuditProof", "GET", "/documentcorrelations/{correlationId}/auditproof/download",
              document_correlation_audit_proof),
    Operation("ProofExternalSource", "POST", "/packages/{id}/auditproof/proofs", add_external_proof),
)
