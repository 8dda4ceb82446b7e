"""The state machines of packages and actors. Pure functions: each returns the events it caused.

Package: Draft -> Pending -> Finished | Rejected | Revoked | Failed, and Pending <-> Expired.
Actor: Draft -> Available (when every actor with a lower OrderIndex is done) -> InProgress ->
Finished | Rejected | Failed, or -> Skipped. Receivers finish as soon as their turn comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devtools.sandbox.errors import conflict
from devtools.sandbox.model import DONE_ACTOR_STATUSES, FINAL_PACKAGE_STATUSES, Actor, Package, Person, Stakeholder


@dataclass(frozen=True)
class Event:
    """A change that a callback reports."""

    package_id: str
    package_status: str
    external_reference: str | None
    actor_id: str | None = None
    actor_status: str | None = None


def _package_event(package: Package) -> Event:
    return Event(package.id, package.status, package.external_reference)


def _actor_event(package: Package, actor: Actor) -> Event:
    return Event(package.id, package.status, package.external_reference, actor.id, actor.status)


def start(package: Package, now: datetime) -> list[Event]:
    """Draft -> Pending: the first actors become Available."""
    if package.status != "Draft":
        raise conflict("Package.InvalidStatus", f"package {package.id} is {package.status}, not Draft")
    if not package.documents:
        raise conflict("Package.NoDocuments", "the package has no documents")
    if not any(actor.acts for _, actor in package.actors()):
        raise conflict("Package.NoSigners", "the package has no signers; set the process information first")
    package.status = "Pending"
    package.pending_since = now
    return [_package_event(package), *advance(package, now)]


def advance(package: Package, now: datetime) -> list[Event]:
    """Make the next OrderIndex group Available, or finish the package when nobody is left to act."""
    events: list[Event] = []
    if package.status != "Pending":
        return events
    while True:
        waiting = [actor for _, actor in package.actors() if actor.status not in DONE_ACTOR_STATUSES]
        if not any(actor.acts for actor in waiting):
            for actor in waiting:
                _complete(actor, "Finished", now)
                events.append(_actor_event(package, actor))
            package.status = "Finished"
            package.final_at = now
            events.append(_package_event(package))
            return events
        turn = min(actor.order_index for actor in waiting)
        receivers_done = False
        for actor in waiting:
            if actor.order_index != turn or actor.status != "Draft":
                continue
            if actor.acts:
                actor.status = "Available"
                actor.available_since = now
            else:
                _complete(actor, "Finished", now)
                events.append(_actor_event(package, actor))
                receivers_done = True
        if not receivers_done:
            return events


def _complete(actor: Actor, status: str, now: datetime, by: str | None = None, reason: str | None = None) -> None:
    actor.status = status
    actor.completed_at = now
    actor.completed_by = by
    actor.reason = reason


def _require_turn(package: Package, actor: Actor) -> None:
    if package.status != "Pending":
        raise conflict("Package.InvalidStatus", f"package {package.id} is {package.status}, not Pending")
    if actor.status not in ("Available", "InProgress"):
        raise conflict("Actor.InvalidStatus", f"actor {actor.id} is {actor.status}, not Available")


def open_session(package: Package, actor: Actor) -> None:
    """A person opened the signing page: Available -> InProgress."""
    if package.status == "Pending" and actor.status == "Available":
        actor.status = "InProgress"


def sign(package: Package, holder: Stakeholder, actor: Actor, person: Person, now: datetime) -> list[Event]:
    _require_turn(package, actor)
    signing_type = str(actor.signing_types[0].get("SigningType", "Manual")) if actor.signing_types else "Manual"
    for location_id in actor.location_ids:
        location = package.find_location(location_id)
        if location is not None:
            location.signed_by = person.display_name
            location.signed_at = now
            location.used_signing_type = signing_type
    _complete(actor, "Finished", now, by=person.display_name)
    return [_actor_event(package, actor), *advance(package, now)]


def reject(package: Package, actor: Actor, person: Person, reason: str, now: datetime) -> list[Event]:
    _require_turn(package, actor)
    _complete(actor, "Rejected", now, by=person.display_name, reason=reason)
    package.status = "Rejected"
    package.final_at = now
    return [_actor_event(package, actor), _package_event(package)]


def skip_signers(package: Package, now: datetime) -> list[Event]:
    if package.status != "Pending":
        raise conflict(f"Package.NotSigned:{package.id}", f"package is {package.status}, not Pending")
    if not any(actor.acts and actor.status == "Finished" for _, actor in package.actors()):
        raise conflict(f"Package.NotSigned:{package.id}", "nobody has signed the package yet")
    events = []
    for _, actor in package.actors():
        if actor.acts and actor.status not in DONE_ACTOR_STATUSES:
            _complete(actor, "Skipped", now)
            events.append(_actor_event(package, actor))
    return events + advance(package, now)


def revoke(package: Package, now: datetime) -> list[Event]:
    if package.status not in ("Pending", "Expired"):
        raise conflict("Package.InvalidStatus", f"package {package.id} is {package.status}; only Pending or "
                       "Expired packages can be revoked")
    package.status = "Revoked"
    package.final_at = now
    return [_package_event(package)]


def expire_if_due(package: Package, now: datetime) -> list[Event]:
    if package.status == "Pending" and package.expiry is not None and package.expiry <= now:
        package.status = "Expired"
        return [_package_event(package)]
    return []


def extend_expiry(package: Package, expiry: datetime, now: datetime) -> list[Event]:
    if package.status in FINAL_PACKAGE_STATUSES:
        raise conflict("Package.InvalidStatus", f"package {package.id} is {package.status}")
    package.expiry = expiry
    if package.status == "Expired" and expiry > now:
        package.status = "Pending"
        return [_package_event(package)]
    return []


def fail(package: Package, now: datetime, actor: Actor | None = None, reason: str | None = None) -> list[Event]:
    """A background error: the actor (if any) and the package become Failed."""
    if package.status in FINAL_PACKAGE_STATUSES:
        raise conflict("Package.InvalidStatus", f"package {package.id} is already {package.status}")
    events = []
    if actor is not None:
        _complete(actor, "Failed", now, reason=reason)
        events.append(_actor_event(package, actor))
    package.status = "Failed"
    package.final_at = now
    return [*events, _package_event(package)]
