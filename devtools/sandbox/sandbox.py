"""The sandbox's state and the actions shared by the API, the admin endpoints, the signer page and the ticker."""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from devtools.sandbox import lifecycle
from devtools.sandbox.callbacks import CallbackDispatcher
from devtools.sandbox.clock import SandboxClock
from devtools.sandbox.documents import DocumentStore
from devtools.sandbox.errors import ApiError, conflict, not_found
from devtools.sandbox.knobs import Knobs
from devtools.sandbox.lifecycle import Event
from devtools.sandbox.model import Actor, Document, Package, Person, Stakeholder
from devtools.sandbox.pdf import Rect, Stamp, stamp_pdf
from devtools.sandbox.stats import Stats
from devtools.sandbox.throttle import SlidingWindowThrottle

LOG = logging.getLogger("devtools.sandbox")
TICK_S = 0.05


class Sandbox:
    def __init__(self, defaults: Knobs, users: dict[str, str], bind_url: str) -> None:
        self.defaults = defaults
        self.knobs = defaults.copy()
        self.users = users
        self.bind_url = bind_url
        self.lock = threading.RLock()
        self.clock = SandboxClock()
        self.throttle = SlidingWindowThrottle()
        self.stats = Stats()
        self.rng = random.Random(defaults.seed)
        self.store = DocumentStore()
        self.callbacks = CallbackDispatcher(self.knobs, self.stats, self.rng)
        self.packages: dict[str, Package] = {}
        self.links: dict[str, tuple[str, str, int]] = {}  # token -> (package id, actor id, person index)
        self.list_cursors: dict[str, tuple[str, int]] = {}  # continuation token -> (query key, offset)
        self.references: dict[str, str] = {}  # package id -> ExternalPackageReference, kept after a delete
        self._stamp_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="sandbox-ticker", daemon=True)
        self._ticker.start()

    # ----- configuration ---------------------------------------------------------------------------
    @property
    def link_base(self) -> str:
        return (self.knobs.public_url or self.bind_url).rstrip("/")

    def configure(self, changes: dict[str, Any]) -> None:
        with self.lock:
            updated = self.knobs.copy()
            updated.update(changes)  # raises ValueError before anything changes
            self.knobs = updated
            self.callbacks.set_knobs(updated)
            if "seed" in changes and updated.seed is not None:
                self.rng.seed(updated.seed)
        self._wake.set()

    def reset(self) -> None:
        with self.lock:
            self.packages.clear()
            self.links.clear()
            self.list_cursors.clear()
            self.references.clear()
            self.knobs = self.defaults.copy()
            self.callbacks.set_knobs(self.knobs)
            self.callbacks.clear()
            self.rng.seed(self.knobs.seed)
            self.clock.reset()
            self.throttle.reset()
            self.stats.reset()
            self.store.clear()

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        self.callbacks.stop()
        self.store.close()

    # ----- packages --------------------------------------------------------------------------------
    def add_package(self, package: Package) -> None:
        self.packages[package.id] = package
        if package.external_reference:
            self.references[package.id] = package.external_reference

    def package(self, package_id: str, code: str = "Package.NotFound") -> Package:
        """The package (expired lazily if due), or 404. Call with the lock held."""
        package = self.packages.get(package_id.lower())
        if package is None:
            raise not_found(f"{code}:{package_id}", f"no package {package_id}")
        self.emit(lifecycle.expire_if_due(package, self.clock.now()))
        return package

    def emit(self, events: list[Event]) -> None:
        """Queue a callback per event for packages that registered a CallBackUrl; stamp packages that finished."""
        for event in events:
            package = self.packages.get(event.package_id)
            if package is not None and event.actor_id is None and event.package_status == "Finished":
                self._stamp_in_background(list(package.documents))
            if package is None or not package.callback_url:
                continue
            body: dict[str, Any] = {"PackageId": event.package_id, "PackageStatus": event.package_status,
                                    "ExternalPackageReference": event.external_reference}
            if event.actor_id:
                body["ActorId"] = event.actor_id
                body["ActorStatus"] = event.actor_status
            self.callbacks.package_callback(package.callback_url, body)

    def issue_links(self, package: Package) -> None:
        """One signing link per person per acting actor, made when the package goes Pending."""
        for holder, actor in package.actors():
            if actor.acts and not actor.links:
                for index, person in enumerate(holder.persons):
                    actor.links.append([person.email, self._new_token(package, actor, index)])

    def _new_token(self, package: Package, actor: Actor, person_index: int) -> str:
        token = secrets.token_urlsafe(24)
        self.links[token] = (package.id, actor.id, person_index)
        return token

    def forget(self, package: Package) -> None:
        for _, actor in package.actors():
            for _, token in actor.links:
                self.links.pop(token or "", None)
        for document in package.documents:
            self.delete_files(document)
        del self.packages[package.id]

    @staticmethod
    def delete_files(document: Document) -> None:
        document.path.unlink(missing_ok=True)
        if document.signed_path is not None:
            document.signed_path.unlink(missing_ok=True)

    # ----- acting as a signer ----------------------------------------------------------------------
    def resolve_actor(self, package_id: str, actor_id: str) -> tuple[Package, Stakeholder, Actor]:
        package = self.package(package_id)
        found = package.find_actor(actor_id)
        if found is None:
            raise not_found(f"Actor.NotFound:{actor_id}", f"no actor {actor_id} in package {package_id}")
        return package, found[0], found[1]

    def resolve_link(self, token: str) -> tuple[Package, Stakeholder, Actor, int]:
        entry = self.links.get(token)
        if entry is None:
            raise not_found("ActionUrl.NotFound", "this signing link is unknown or was replaced by a newer one")
        package, holder, actor = self.resolve_actor(entry[0], entry[1])
        return package, holder, actor, entry[2]

    def act(self, package: Package, holder: Stakeholder, actor: Actor, person_index: int, decision: str,
            reason: str | None = None, signer_name: str | None = None) -> None:
        """Sign or reject as an actor (lock held)."""
        person = holder.persons[min(person_index, len(holder.persons) - 1)]
        if signer_name:
            person = Person(email=person.email, last_name=signer_name)
        now = self.clock.now()
        if decision == "sign":
            self.emit(lifecycle.sign(package, holder, actor, person, now))
        elif decision == "reject":
            self.emit(lifecycle.reject(package, actor, person, reason or "Rejected", now))
        else:
            raise ValueError(decision)

    def request_link(self, package: Package, holder: Stakeholder, actor: Actor, person_index: int) -> str:
        """Replace the person's link and tell the NotificationCallBackUrl (lock held). Returns the new URL."""
        if package.status not in ("Pending", "Expired"):
            raise conflict("Package.InvalidStatus", f"package {package.id} is {package.status}")
        if not actor.links:
            raise conflict("Actor.NoActionUrl", f"actor {actor.id} has no signing link")
        person_index = min(person_index, len(actor.links) - 1)
        email, old_token = actor.links[person_index]
        self.links.pop(old_token or "", None)
        token = self._new_token(package, actor, person_index)
        actor.links[person_index] = [email, token]
        if package.notification_callback_url:
            self.callbacks.notification(package.notification_callback_url, {
                "PackageId": package.id, "ActorId": actor.id, "StakeholderId": holder.id, "EmailAddress": email,
            })
        return f"{self.link_base}/sign/{token}"

    # ----- signed files ----------------------------------------------------------------------------
    def _stamp_in_background(self, documents: list[Document]) -> None:
        """Make the signed files as the package finishes, as Connective does, not when they are first fetched.

        A thread, because the caller holds the state lock; a download that comes first waits for the stamp.
        """
        def stamp_all() -> None:
            for document in documents:
                try:
                    self.signed_file(document)
                except Exception:  # the download tries again and reports its own failure
                    LOG.exception("stamping document %s failed", document.id)

        threading.Thread(target=stamp_all, name="sandbox-stamp", daemon=True).start()

    def signed_file(self, document: Document) -> Path:
        """The stamped copy of a finished document, made once (outside the state lock)."""
        if document.document_type != "application/pdf":
            return document.path
        with self._stamp_lock:
            if document.signed_path is None or not document.signed_path.exists():
                stamps = [Stamp(Rect(loc.page_number, loc.left, loc.top, loc.width, loc.height), loc.signed_by or "",
                                loc.signed_at, loc.used_signing_type or "Manual")
                          for loc in document.locations if loc.signed_at is not None]
                if not stamps:
                    return document.path
                target = self.store.new_path(".pdf")
                stamp_pdf(document.path, target, stamps)
                document.signed_path = target
            return document.signed_path

    # ----- time ------------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def tick(self) -> None:
        """Apply expiry and auto-sign decisions that are due on the sandbox clock."""
        with self.lock:
            now = self.clock.now()
            knobs = self.knobs
            for package in list(self.packages.values()):
                if package.status != "Pending":
                    continue
                self.emit(lifecycle.expire_if_due(package, now))
                if knobs.auto_sign and package.status == "Pending":
                    self._auto_sign(package, now, knobs)

    def _auto_sign(self, package: Package, now: datetime, knobs: Knobs) -> None:
        for holder, actor in package.actors():
            if package.status != "Pending":
                return
            if actor.status not in ("Available", "InProgress") or actor.available_since is None:
                continue
            if (now - actor.available_since).total_seconds() < knobs.auto_sign_delay:
                continue
            decision = "reject" if self._auto_rejects(package, holder, knobs.reject_substring) else "sign"
            try:
                self.act(package, holder, actor, 0, decision, reason="Rejected by the sandbox's auto-sign rule")
            except ApiError as error:
                LOG.warning("auto-sign skipped actor %s: %s", actor.id, error.message)

    @staticmethod
    def _auto_rejects(package: Package, holder: Stakeholder, needle: str) -> bool:
        if not needle:
            return False
        needle = needle.lower()
        emails = [person.email or "" for person in holder.persons]
        return any(needle in email.lower() for email in emails) or any(
            needle in document.name.lower() for document in package.documents)

    def _tick_loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(TICK_S)
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # the ticker must survive any single bad package
                LOG.exception("sandbox tick failed")

    def each_package(self, predicate: Callable[[Package], bool]) -> list[Package]:
        return [package for package in self.packages.values() if predicate(package)]
