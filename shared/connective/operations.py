"""The API v3 operations as data: method, path template, and whether a sent request may be repeated.

`Replay` is the rule the retry policy applies once a request may have reached Connective (a read
timeout, a dropped connection, or 500/502/504):
- SAFE: repeating it changes nothing (reads; PUTs that set a value; deletes).
- UNSAFE: repeating it acts twice (reminders would email the signers twice; Skip Signers would answer
  409 after it had worked). The caller gets `AmbiguousRequestError` and re-reads the package.
- CREATE: repeating it may create a duplicate. The caller gets `AmbiguousCreateError` and reconciles
  by ExternalPackageReference.
Failures before anything was sent (connect errors), 429 and 503 mean "not processed": every
operation retries those.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import quote


class Replay(enum.Enum):
    SAFE = "safe"
    UNSAFE = "unsafe"
    CREATE = "create"


class ApiVersion(enum.Enum):
    V3 = "v3"
    V31 = "v3.1"


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    replay: Replay
    version: ApiVersion = ApiVersion.V3

    def render(self, **params: str) -> str:
        return self.path.format(**{key: quote(str(value), safe="") for key, value in params.items()})


_S, _U, _C = Replay.SAFE, Replay.UNSAFE, Replay.CREATE

CREATE_PACKAGE = Operation("create_package", "POST", "/packages", _C)
ADD_DOCUMENT_TO_PACKAGE = Operation("add_document_to_package", "POST", "/packages/{package_id}/documents", _C)
GET_SIGNING_LOCATIONS = Operation("get_signing_locations", "GET", "/packages/{package_id}/locations", _S)
SET_PROCESS_INFORMATION = Operation("set_process_information", "PUT", "/packages/{package_id}/process", _S)
SET_PROCESS_INFORMATION_V31 = Operation("set_process_information_v31", "PUT", "/packages/{package_id}/process", _S,
                                        ApiVersion.V31)
SET_PACKAGE_STATUS = Operation("set_package_status", "PUT", "/packages/{package_id}/status", _S)
CREATE_INSTANT_PACKAGE = Operation("create_instant_package", "POST", "/packages/instant", _C)
GET_PACKAGE_STATUS = Operation("get_package_status", "GET", "/packages/{package_id}/status", _S)
PACKAGE_LIST = Operation("package_list", "GET", "/packages", _S)
SKIP_SIGNERS = Operation("skip_signers", "POST", "/packages/{package_id}/skipsigners", _U)
DOWNLOAD_PACKAGE = Operation("download_package", "GET", "/packages/{package_id}/download", _S)
DOWNLOAD_DOCUMENT_FROM_PACKAGE = Operation("download_document_from_package", "GET",
                                           "/packages/{package_id}/download/{document_id}", _S)
EXPIRY_TIME_STAMP = Operation("expiry_time_stamp", "PUT", "/packages/{package_id}/expirytimestamp", _S)
SEND_PACKAGE_REMINDERS = Operation("send_package_reminders", "POST", "/packages/{package_id}/reminders", _U)
DELETE_PACKAGE = Operation("delete_package", "DELETE", "/packages/{package_id}", _S)
DELETE_DOCUMENT = Operation("delete_document", "DELETE", "/packages/{package_id}/documents/{document_id}", _S)
PACKAGE_AUDIT_PROOF = Operation("package_audit_proof", "GET", "/packages/{package_id}/auditproof/download", _S)
PACKAGE_AUDIT_PROOF_DOC = Operation("package_audit_proof_doc", "GET",
                                    "/packages/{package_id}/auditproof/download/{document_id}", _S)
PACKAGE_CORRELATION_AUDIT_PROOF = Operation("package_correlation_audit_proof", "GET",
                                            "/packagecorrelations/{correlation_id}/auditproof/download", _S)
DOCUMENT_CORRELATION_AUDIT_PROOF = Operation("document_correlation_audit_proof", "GET",
                                             "/documentcorrelations/{correlation_id}/auditproof/download", _S)
PROOF_EXTERNAL_SOURCE = Operation("proof_external_source", "POST", "/packages/{package_id}/auditproof/proofs", _C)

ALL_OPERATIONS: tuple[Operation, ...] = (
    CREATE_PACKAGE, ADD_DOCUMENT_TO_PACKAGE, GET_SIGNING_LOCATIONS, SET_PROCESS_INFORMATION,
    SET_PROCESS_INFORMATION_V31, SET_PACKAGE_STATUS, CREATE_INSTANT_PACKAGE, GET_PACKAGE_STATUS, PACKAGE_LIST,
    SKIP_SIGNERS, DOWNLOAD_PACKAGE, DOWNLOAD_DOCUMENT_FROM_PACKAGE, EXPIRY_TIME_STAMP, SEND_PACKAGE_REMINDERS,
    DELETE_PACKAGE, DELETE_DOCUMENT, PACKAGE_AUDIT_PROOF, PACKAGE_AUDIT_PROOF_DOC, PACKAGE_CORRELATION_AUDIT_PROOF,
    DOCUMENT_CORRELATION_AUDIT_PROOF, PROOF_EXTERNAL_SOURCE,
)
