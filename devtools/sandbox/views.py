"""JSON renderings of the state, in the wire shapes of the reference (absent values are null)."""

from __future__ import annotations

from typing import Any

from devtools.sandbox.clock import iso_z
from devtools.sandbox.model import Actor, Document, Location, Package, Stakeholder


def location_summary(location: Location) -> dict[str, Any]:
    return {"Id": location.id, "Label": location.label, "PageNumber": location.page_number}


def locations_view(package: Package) -> dict[str, Any]:
    return {"Documents": [
        {"DocumentId": document.id, "ExternalDocumentReference": document.external_reference,
         "Locations": [location_summary(location) for location in document.locations]}
        for document in package.documents
    ]}


def document_view(document: Document, with_locations: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {"DocumentId": document.id, "ExternalDocumentReference": document.external_reference,
                            "DocumentName": document.name, "DocumentType": document.document_type}
    if with_locations:
        view["Locations"] = [location_summary(location) for location in document.locations]
    return view


def status_view(package: Package, link_base: str, with_locations: bool = False) -> dict[str, Any]:
    return {
        "PackageName": package.name,
        "CreationTimestamp": iso_z(package.created),
        "Initiator": package.initiator,
        "ExpiryTimestamp": iso_z(package.expiry),
        "ExternalPackageReference": package.external_reference,
        "F2FSigningUrl": f"{link_base}/signinit?packageSignId={package.id}&f2f=True",
        "PackageStatus": package.status,
        "DocumentGroupCode": package.document_group_code,
        "PackageDocuments": [document_view(document, with_locations) for document in package.documents],
        "Stakeholders": [_stakeholder_view(package, holder, link_base) for holder in package.stakeholders],
    }


def _stakeholder_view(package: Package, holder: Stakeholder, link_base: str) -> dict[str, Any]:
    return {
        "Type": holder.type, "EmailAddress": holder.email, "PersonGroupName": holder.person_group_name,
        "ContactGroupCode": holder.contact_group_code, "ExternalStakeholderReference": holder.external_reference,
        "StakeholderId": holder.id,
        "Actors": [_actor_view(package, holder, actor, link_base) for actor in holder.actors],
    }


def action_url(link_base: str, token: str) -> str:
    return f"{link_base}/sign/{token}"


def _actor_view(package: Package, holder: Stakeholder, actor: Actor, link_base: str) -> dict[str, Any]:
    urls = [{"EmailAddress": email, "Url": action_url(link_base, token or "")} for email, token in actor.links]
    view: dict[str, Any] = {
        "Type": actor.type, "ActorId": actor.id, "ActorStatus": actor.status,
        "ActionUrl": urls[0]["Url"] if urls and holder.type == "Person" else None,
        "ActionUrls": urls if holder.type != "Person" else [],
    }
    if actor.type == "Receiver":
        view["CompletedTimestamp"] = iso_z(actor.completed_at)
        return view
    view.update({
        "CompletedBy": actor.completed_by, "CompletedTimestamp": iso_z(actor.completed_at), "Reason": actor.reason,
        "Locations": [{"Id": location_id, "UsedSigningType": _used_type(package, location_id)}
                      for location_id in actor.location_ids],
    })
    return view


def _used_type(package: Package, location_id: str) -> str | None:
    location = package.find_location(location_id)
    return location.used_signing_type if location else None


def list_item(package: Package) -> dict[str, Any]:
    return {"Id": package.id, "PackageStatus": package.status, "ExternalPackageReference": package.external_reference}
