"""Time-limited read links (SAS) to a package's archived files.

With a connection string (local runs) the links are signed with the account key. With
identity-based storage (Azure) there is no key: the links are signed with a user delegation key,
which the app's managed identity obtains from the blob service (it needs the Storage Blob
Delegator role, part of Storage Blob Data Contributor). A delegation key is valid for hours, so
one is kept per process and renewed when it gets close to its end.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    UserDelegationKey,
    generate_blob_sas,
)

from shared.api.models import DocumentLink, DocumentLinks
from shared.config import Settings
from shared.storage import names
from shared.storage.packages import PackageRecord
from shared.storage.store import Store

CLOCK_SKEW = timedelta(minutes=5)
DELEGATION_KEY_LIFETIME = timedelta(hours=6)

_delegation_keys: dict[str, tuple[UserDelegationKey, datetime]] = {}
_delegation_lock = threading.Lock()


def _delegation_key(service: BlobServiceClient, needed_until: datetime) -> UserDelegationKey:
    with _delegation_lock:
        cached = _delegation_keys.get(service.url)
        if cached is not None and cached[1] >= needed_until:
            return cached[0]
        start = datetime.now(UTC) - CLOCK_SKEW
        expiry = max(needed_until, datetime.now(UTC) + DELEGATION_KEY_LIFETIME)
        key = service.get_user_delegation_key(key_start_time=start, key_expiry_time=expiry)
        _delegation_keys[service.url] = (key, expiry)
        return key


def signed_url(service: BlobServiceClient, container: str, blob_name: str, expiry: datetime,
               download_name: str | None = None) -> str:
    """A read-only URL for one blob, valid until `expiry`."""
    credential = service.credential
    account_key = getattr(credential, "account_key", None)
    common = {
        "account_name": service.account_name,
        "container_name": container,
        "blob_name": blob_name,
        "permission": BlobSasPermissions(read=True),
        "expiry": expiry,
        "start": datetime.now(UTC) - CLOCK_SKEW,
        "content_disposition": f"attachment; filename*=UTF-8''{quote(download_name)}" if download_name else None,
    }
    if account_key:
        sas = generate_blob_sas(account_key=account_key, **common)  # type: ignore[arg-type]
    else:
        sas = generate_blob_sas(user_delegation_key=_delegation_key(service, expiry), **common)  # type: ignore[arg-type]
    blob_url = service.get_blob_client(container, blob_name).url
    return f"{blob_url}?{sas}"


def document_links(store: Store, settings: Settings, record: PackageRecord) -> DocumentLinks:
    expiry = datetime.now(UTC) + timedelta(minutes=settings.api_link_expiry_min)
    service = store.clients.blob_service
    links = [
        DocumentLink(name=str(entry["name"]), kind=str(entry.get("kind") or "file"),
                     url=signed_url(service, names.SIGNED_CONTAINER, str(entry["blob"]), expiry, str(entry["name"])),
                     content_type=entry.get("contentType"))
        for entry in record.archived_files if entry.get("blob")
    ]
    return DocumentLinks(package_ref=record.ref, expires_at=expiry.replace(microsecond=0), documents=links)
