"""`ConnectiveClient`: one method per API v3 operation, named after the connector's operationId.

    client = ConnectiveClient(ConnectiveConfig(base_url=..., username=..., password=...))
    created = client.create_package(CreatePackageRequest(initiator=..., package_name=...))
    queue_client = client.with_rate_wait(2.0)   # queue and timer work: short wait, then RateLimitDeferred

Requests take a model or a plain mapping (validated into the model). Downloads take a target with
`write(bytes)` and return a `DownloadResult`, or, without a target, return an open `Download` to
iterate. What is retried and what is not is described in `operations` and `transport`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar, overload

import requests

from shared.connective import operations as ops
from shared.connective.config import ConnectiveConfig
from shared.connective.errors import ConflictError, NotFoundError
from shared.connective.models import (
    AddDocumentRequest,
    AddedDocument,
    CreatedPackage,
    CreateInstantPackageRequest,
    CreatePackageRequest,
    ExternalProofRequest,
    InstantPackage,
    PackageInfo,
    PackageList,
    PackageListItem,
    PackageStatus,
    SetProcessRequest,
    SetProcessV31Request,
    SigningLocations,
    SortOrder,
    WireModel,
)
from shared.connective.ratelimit import RateLimiter, connection_limiter
from shared.connective.retry import Clock
from shared.connective.streaming import Download, DownloadResult, Writable
from shared.connective.transport import Transport
from shared.connective.uploads import DocumentSource, JsonBody, RequestBody, document_body

ModelT = TypeVar("ModelT", bound=WireModel)

_ANY_CONTENT = "*/*"
_XML = "application/xml, */*;q=0.5"

def _model(model_class: type[ModelT], value: ModelT | Mapping[str, Any]) -> ModelT:
    return value if isinstance(value, model_class) else model_class.model_validate(value)


def _timestamp(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


def status_reached(current: PackageStatus, wanted: PackageStatus) -> bool:
    """True when a package in `current` has the `wanted` status or has gone past it.

    A package leaves Draft only by being set Pending, so any later status (Expired or a final one,
    e.g. Finished after a quick signer) means a Pending request took effect. Other statuses are
    final and exclusive: a package that Finished was not Revoked.
    """
    if current is wanted:
        return True
    return wanted is PackageStatus.PENDING and current is not PackageStatus.DRAFT


class ConnectiveClient:
    def __init__(self, config: ConnectiveConfig, limiter: RateLimiter | None = None, *,
                 session: requests.Session | None = None, clock: Clock | None = None) -> None:
        # Without a limiter, the connection's limiter in this process (one per connection and budget,
        # whoever asks first); the app injects the one its settings choose (shared.connection).
        limiter = limiter or connection_limiter(config.budget_key)
        self._transport = Transport(config, limiter, session=session, clock=clock)
        # A plain client waits for a rate token as long as it would spend retrying.
        self._rate_wait_s = config.retry.total_s

    @classmethod
    def _with_transport(cls, transport: Transport, rate_wait_s: float) -> ConnectiveClient:
        client = cls.__new__(cls)
        client._transport = transport
        client._rate_wait_s = rate_wait_s
        return client

    def with_rate_wait(self, seconds: float) -> ConnectiveClient:
        """The same connection (session, config, limiter), waiting at most `seconds` for a rate token.

        Past that wait, calls raise `RateLimitDeferred(retry_after_s)` and send nothing; a 429 asking
        for a longer wait raises `ThrottledError`. Queue and timer work put the message back instead.
        """
        return self._with_transport(self._transport, max(0.0, seconds))

    @property
    def config(self) -> ConnectiveConfig:
        return self._transport.config

    @property
    def limiter(self) -> RateLimiter:
        return self._transport.limiter

    @property
    def session(self) -> requests.Session:
        return self._transport.session

    @property
    def rate_wait_s(self) -> float:
        return self._rate_wait_s

    # -- plumbing ----------------------------------------------------------------------------------

    def _call(self, operation: ops.Operation, *, body: RequestBody | None = None, stream: bool = False,
              query: dict[str, Any] | None = None, accept: str | None = None, **path_params: str) -> requests.Response:
        return self._transport.call(operation, path_params=path_params, query=query, body=body, stream=stream,
                                    rate_wait_s=self._rate_wait_s, accept=accept)

    def _download(self, operation: ops.Operation, target: Writable | None, accept: str,
                  **path_params: str) -> Download | DownloadResult:
        response = self._transport.call(operation, path_params=path_params, stream=True, accept=accept,
                                        rate_wait_s=self._rate_wait_s)
        download = Download(response, chunk_bytes=self.config.download_chunk_bytes, operation=operation.name)
        if target is None:
            return download
        with download:
            return download.write_to(target)

    def _document_body(self, metadata: dict[str, Any], document: DocumentSource, document_length: int | None,
                       representation: bytes | None) -> RequestBody:
        return document_body(metadata, document, threshold_bytes=self.config.multipart_threshold_bytes,
                             length=document_length, filename=f"{metadata.get('DocumentName') or 'document'}.pdf",
                             representation=representation)

    # -- packages ----------------------------------------------------------------------------------

    def create_package(self, request: CreatePackageRequest | Mapping[str, Any]) -> CreatedPackage:
        """Create Package (Draft). An unknown outcome raises `AmbiguousCreateError`, never a second create."""
        response = self._call(ops.CREATE_PACKAGE, body=JsonBody(_model(CreatePackageRequest, request).to_wire()))
        return CreatedPackage.model_validate_json(response.content)

    def create_instant_package(self, request: CreateInstantPackageRequest | Mapping[str, Any],
                               document: DocumentSource, *, document_length: int | None = None,
                               representation: bytes | None = None) -> InstantPackage:
        """Create Instant Package: package, one document, process and status Pending in one call."""
        metadata = _model(CreateInstantPackageRequest, request).to_wire()
        response = self._call(ops.CREATE_INSTANT_PACKAGE,
                              body=self._document_body(metadata, document, document_length, representation))
        return InstantPackage.model_validate_json(response.content)

    def get_package_status(self, package_id: str) -> PackageInfo:
        response = self._call(ops.GET_PACKAGE_STATUS, package_id=package_id)
        return PackageInfo.model_validate_json(response.content)

    def set_package_status(self, package_id: str, status: PackageStatus | str) -> PackageInfo:
        """Set Package Status (`Pending` starts the flow, `Revoked` cancels it).

        When an earlier attempt may have been applied and the retry answers 409, the package is read:
        if it already has the wanted status, or has moved past it (`status_reached`), that is the answer.
        """
        wanted = PackageStatus(status)
        try:
            response = self._call(ops.SET_PACKAGE_STATUS, body=JsonBody({"Status": wanted.value}),
                                  package_id=package_id)
        except ConflictError as conflict:
            if not conflict.possibly_applied:
                raise
            current = self.get_package_status(package_id)
            if not status_reached(current.package_status, wanted):
                raise
            return current
        return PackageInfo.model_validate_json(response.content)

    def package_list(self, *, continuation_token: str | None = None, max_quantity: int | None = None,
                     sort_field: str | None = None, sort_order: SortOrder | str | None = None,
                     created_before_date: datetime | str | None = None,
                     created_after_date: datetime | str | None = None,
                     status: PackageStatus | str | None = None) -> PackageList:
        """One page of Get Package List. `iter_package_list` follows the continuation tokens."""
        query = {
            "ContinuationToken": continuation_token,
            "MaxQuantity": max_quantity,
            "SortField": sort_field,
            "SortOrder": SortOrder(sort_order).value if sort_order else None,
            "CreatedBeforeDate": _timestamp(created_before_date) if created_before_date else None,
            # Lower-case c, as the swagger names it.
            "createdAfterDate": _timestamp(created_after_date) if created_after_date else None,
            "Status": PackageStatus(status).value if status else None,
        }
        response = self._call(ops.PACKAGE_LIST, query={k: v for k, v in query.items() if v is not None})
        return PackageList.model_validate_json(response.content)

    def iter_package_list(self, *, page_size: int | None = None, **filters: Any) -> Iterator[PackageListItem]:
        """Every package matching the filters, page after page, until no continuation token is given."""
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            page = self.package_list(continuation_token=token, max_quantity=page_size, **filters)
            yield from page.items
            token = page.continuation_token or None
            if not page.items or token is None or token in seen_tokens:
                return
            seen_tokens.add(token)

    def find_packages_by_external_reference(self, external_package_reference: str,
                                            **filters: Any) -> list[PackageListItem]:
        """Packages carrying this ExternalPackageReference: how an ambiguous create is reconciled."""
        return [item for item in self.iter_package_list(**filters)
                if item.external_package_reference == external_package_reference]

    def skip_signers(self, package_id: str) -> None:
        self._call(ops.SKIP_SIGNERS, package_id=package_id)

    def expiry_time_stamp(self, package_id: str, expiry_timestamp: datetime | str) -> None:
        """Package Expiry Extension: set or extend the expiry (an Expired package returns to Pending)."""
        self._call(ops.EXPIRY_TIME_STAMP, body=JsonBody({"ExpiryTimestamp": _timestamp(expiry_timestamp)}),
                   package_id=package_id)

    def send_package_reminders(self, package_id: str) -> None:
        """Emails every actor who has not acted. Never repeated after an unclear outcome (no double emails)."""
        self._call(ops.SEND_PACKAGE_REMINDERS, package_id=package_id)

    def delete_package(self, package_id: str) -> None:
        """Delete Package. A 404 on a retry after an unclear attempt is success: that attempt deleted it."""
        self._delete(ops.DELETE_PACKAGE, package_id=package_id)

    def _delete(self, operation: ops.Operation, **path_params: str) -> None:
        try:
            self._transport.call(operation, path_params=path_params, rate_wait_s=self._rate_wait_s)
        except NotFoundError as not_found:
            if not not_found.possibly_applied:
                raise

    # -- documents and process ---------------------------------------------------------------------

    def add_document_to_package(self, package_id: str, request: AddDocumentRequest | Mapping[str, Any],
                                document: DocumentSource, *, document_length: int | None = None,
                                representation: bytes | None = None) -> AddedDocument:
        """Add Document. Small byte strings go as base64 JSON; streams and large documents as multipart.

        `document` is bytes, a binary stream (its length known by seeking or given as `document_length`),
        or a callable returning a fresh stream (so a retry can send it again).
        """
        metadata = _model(AddDocumentRequest, request).to_wire()
        response = self._call(ops.ADD_DOCUMENT_TO_PACKAGE,
                              body=self._document_body(metadata, document, document_length, representation),
                              package_id=package_id)
        return AddedDocument.model_validate_json(response.content)

    def delete_document(self, package_id: str, document_id: str) -> None:
        """Delete Document from Package (Draft packages). 404 on a retry after an unclear attempt is success."""
        self._delete(ops.DELETE_DOCUMENT, package_id=package_id, document_id=document_id)

    def get_signing_locations(self, package_id: str) -> SigningLocations:
        response = self._call(ops.GET_SIGNING_LOCATIONS, package_id=package_id)
        return SigningLocations.model_validate_json(response.content)

    def set_process_information(self, package_id: str, request: SetProcessRequest | Mapping[str, Any]) -> None:
        """Set Process Information (v3): stakeholders with actors on location ids."""
        self._call(ops.SET_PROCESS_INFORMATION, body=JsonBody(_model(SetProcessRequest, request).to_wire()),
                   package_id=package_id)

    def set_process_information_v31(self, package_id: str,
                                    request: SetProcessV31Request | Mapping[str, Any]) -> None:
        """Set Process Information v3.1 (person groups, contact groups, approvers, per-location notices)."""
        self._call(ops.SET_PROCESS_INFORMATION_V31,
                   body=JsonBody(_model(SetProcessV31Request, request).to_wire()), package_id=package_id)

    # -- downloads ---------------------------------------------------------------------------------

    @overload
    def download_package(self, package_id: str) -> Download: ...
    @overload
    def download_package(self, package_id: str, target: Writable) -> DownloadResult: ...

    def download_package(self, package_id: str, target: Writable | None = None) -> Download | DownloadResult:
        """The ZIP of the signed documents."""
        return self._download(ops.DOWNLOAD_PACKAGE, target, _ANY_CONTENT, package_id=package_id)

    @overload
    def download_document_from_package(self, package_id: str, document_id: str) -> Download: ...
    @overload
    def download_document_from_package(self, package_id: str, document_id: str,
                                       target: Writable) -> DownloadResult: ...

    def download_document_from_package(self, package_id: str, document_id: str,
                                       target: Writable | None = None) -> Download | DownloadResult:
        """One signed document (PDF, or XML for XML documents)."""
        return self._download(ops.DOWNLOAD_DOCUMENT_FROM_PACKAGE, target, _ANY_CONTENT,
                              package_id=package_id, document_id=document_id)

    @overload
    def package_audit_proof(self, package_id: str) -> Download: ...
    @overload
    def package_audit_proof(self, package_id: str, target: Writable) -> DownloadResult: ...

    def package_audit_proof(self, package_id: str, target: Writable | None = None) -> Download | DownloadResult:
        """The audit proofs (XML) of every document of a package."""
        return self._download(ops.PACKAGE_AUDIT_PROOF, target, _XML, package_id=package_id)

    @overload
    def package_audit_proof_doc(self, package_id: str, document_id: str) -> Download: ...
    @overload
    def package_audit_proof_doc(self, package_id: str, document_id: str, target: Writable) -> DownloadResult: ...

    def package_audit_proof_doc(self, package_id: str, document_id: str,
                                target: Writable | None = None) -> Download | DownloadResult:
        """The audit proof (XML) of one document."""
        return self._download(ops.PACKAGE_AUDIT_PROOF_DOC, target, _XML, package_id=package_id,
                              document_id=document_id)

    @overload
    def package_correlation_audit_proof(self, correlation_id: str) -> Download: ...
    @overload
    def package_correlation_audit_proof(self, correlation_id: str, target: Writable) -> DownloadResult: ...

    def package_correlation_audit_proof(self, correlation_id: str,
                                        target: Writable | None = None) -> Download | DownloadResult:
        """The audit proofs of every package with this CorrelationId."""
        return self._download(ops.PACKAGE_CORRELATION_AUDIT_PROOF, target, _XML, correlation_id=correlation_id)

    @overload
    def document_correlation_audit_proof(self, correlation_id: str) -> Download: ...
    @overload
    def document_correlation_audit_proof(self, correlation_id: str, target: Writable) -> DownloadResult: ...

    def document_correlation_audit_proof(self, correlation_id: str,
                                         target: Writable | None = None) -> Download | DownloadResult:
        """The audit proofs of every document with this document CorrelationId."""
        return self._download(ops.DOCUMENT_CORRELATION_AUDIT_PROOF, target, _XML, correlation_id=correlation_id)

    def proof_external_source(self, package_id: str, request: ExternalProofRequest | Mapping[str, Any]) -> None:
        """Add Proof from External Source (204). Not repeated after an unclear outcome."""
        self._call(ops.PROOF_EXTERNAL_SOURCE, body=JsonBody(_model(ExternalProofRequest, request).to_wire()),
                   package_id=package_id)
