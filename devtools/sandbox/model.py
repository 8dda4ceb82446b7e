"""The sandbox's state: packages, documents, signing locations, stakeholders and actors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

FINAL_PACKAGE_STATUSES = ("Finished", "Rejected", "Revoked", "Failed")
PACKAGE_STATUSES = ("Draft", "Pending", "Expired", *FINAL_PACKAGE_STATUSES)
DONE_ACTOR_STATUSES = ("Finished", "Rejected", "Skipped", "Failed")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Location:
    id: str
    document_id: str
    label: str | None
    page_number: int  # 1-based
    # Rectangle in points, origin at the top-left of the page (the API's convention).
    left: float
    top: float
    width: float
    height: float
    signed_by: str | None = None
    signed_at: datetime | None = None
    used_signing_type: str | None = None
    external_proofs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Document:
    id: str
    name: str
    document_type: str
    path: Path
    size: int
    sha256: str
    created: datetime
    language: str | None = None
    external_reference: str | None = None
    correlation_id: str | None = None
    locations: list[Location] = field(default_factory=list)
    signed_path: Path | None = None  # the stamped copy, made when the package finishes


@dataclass
class Person:
    email: str | None
    first_name: str | None = None
    last_name: str | None = None

    @property
    def display_name(self) -> str:
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or (self.email or "unknown signer")


@dataclass
class Actor:
    id: str
    type: str  # Signer | Receiver | Approver
    order_index: int
    location_ids: list[str]
    signing_types: list[dict[str, Any]]
    redirect_url: str | None = None
    status: str = "Draft"
    available_since: datetime | None = None
    completed_by: str | None = None
    completed_at: datetime | None = None
    reason: str | None = None
    reminders: int = 0
    # One signing link per person who may act: [email, token]; a new link replaces the token.
    links: list[list[str | None]] = field(default_factory=list)
    legal_notice: str | None = None

    @property
    def acts(self) -> bool:
        """Signers and approvers act; receivers only receive."""
        return self.type != "Receiver"


@dataclass
class Stakeholder:
    id: str
    type: str  # Person | PersonGroup | ContactGroup
    persons: list[Person]
    actors: list[Actor]
    external_reference: str | None = None
    language: str | None = None
    birth_date: str | None = None
    person_group_name: str | None = None
    contact_group_code: str | None = None

    @property
    def email(self) -> str | None:
        return self.persons[0].email if self.type == "Person" and self.persons else None


@dataclass
class Package:
    id: str
    name: str
    initiator: str
    created: datetime
    owner: str
    callback_url: str | None = None
    notification_callback_url: str | None = None
    correlation_id: str | None = None
    external_reference: str | None = None
    expiry: datetime | None = None
    document_group_code: str = "00001"
    f2f_redirect_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    status: str = "Draft"
    pending_since: datetime | None = None
    final_at: datetime | None = None
    documents: list[Document] = field(default_factory=list)
    stakeholders: list[Stakeholder] = field(default_factory=list)
    reminders: int = 0
    process_version: str | None = None  # "3" or "3.1", as set

    def actors(self) -> list[tuple[Stakeholder, Actor]]:
        return [(holder, actor) for holder in self.stakeholders for actor in holder.actors]

    def find_actor(self, actor_id: str) -> tuple[Stakeholder, Actor] | None:
        for holder, actor in self.actors():
            if actor.id.lower() == actor_id.lower():
                return holder, actor
        return None

    def find_document(self, document_id: str) -> Document | None:
        for document in self.documents:
            if document.id.lower() == document_id.lower():
                return document
        return None

    def find_location(self, location_id: str) -> Location | None:
        for document in self.documents:
            for location in document.locations:
                if location.id.lower() == location_id.lower():
                    return location
        return None
