"""The admin API under /_sandbox/ (no auth, loopback only): reset, knobs, stats, clock, acting as an actor."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

from devtools.sandbox import lifecycle
from devtools.sandbox.clock import iso_z, parse_timestamp
from devtools.sandbox.errors import ApiError, bad_request, not_found
from devtools.sandbox.sandbox import Sandbox
from devtools.sandbox.views import action_url, status_view


def handle(sandbox: Sandbox, method: str, path: str, body: Any, query: dict[str, str]) -> tuple[int, Any]:
    if not isinstance(body, dict):
        raise bad_request("Admin.InvalidBody", "the body must be a JSON object")
    parts = [part for part in path.split("/") if part]
    key = (method, parts[0] if parts else "")
    if key == ("POST", "reset"):
        sandbox.reset()
        return 200, {"reset": True}
    if key == ("GET", "config"):
        return 200, sandbox.knobs.as_dict()
    if key == ("POST", "config"):
        try:
            sandbox.configure(body)
        except ValueError as error:
            raise bad_request("Admin.InvalidKnob", str(error)) from None
        return 200, sandbox.knobs.as_dict()
    if key == ("GET", "stats"):
        return 200, _stats(sandbox, with_times=query.get("times", "") in ("1", "true"))
    if key in (("GET", "clock"), ("POST", "clock")):
        if method == "POST":
            _move_clock(sandbox, body)
        return 200, _clock(sandbox)
    if parts and parts[0] == "packages" and len(parts) >= 2:
        return _package_admin(sandbox, method, parts[1:], body)
    raise not_found("Admin.UnknownRoute", f"no admin endpoint {method} /_sandbox/{path}")


def _stats(sandbox: Sandbox, with_times: bool) -> dict[str, Any]:
    snapshot = sandbox.stats.snapshot()
    if with_times:
        snapshot["accepted_times_by_user"] = sandbox.stats.accepted_times()
    with sandbox.lock:
        statuses: dict[str, int] = {}
        for package in sandbox.packages.values():
            statuses[package.status] = statuses.get(package.status, 0) + 1
    snapshot["packages_by_status"] = statuses
    snapshot["callbacks_pending"] = sandbox.callbacks.pending()
    return snapshot


def _clock(sandbox: Sandbox) -> dict[str, Any]:
    return {"now": iso_z(sandbox.clock.now()), "offset_s": sandbox.clock.offset_seconds}


def _move_clock(sandbox: Sandbox, body: dict[str, Any]) -> None:
    try:
        if "advance_s" in body:
            sandbox.clock.advance(float(body["advance_s"]))
        elif "now" in body:
            sandbox.clock.set(parse_timestamp(str(body["now"])))
        else:
            raise ValueError("give advance_s or now")
    except (TypeError, ValueError) as error:
        raise bad_request("Admin.InvalidClock", str(error)) from None
    sandbox.tick()  # expiry and auto-sign are applied before the answer


def _package_admin(sandbox: Sandbox, method: str, parts: list[str], body: dict[str, Any]) -> tuple[int, Any]:
    package_id = parts[0]
    with sandbox.lock:
        if method == "GET" and len(parts) == 1:
            return 200, _internal_state(sandbox, package_id)
        if method == "POST" and parts[1:] == ["fail"]:
            package = sandbox.package(package_id)
            sandbox.emit(lifecycle.fail(package, sandbox.clock.now(), reason=body.get("reason")))
            return 200, status_view(package, sandbox.link_base)
        if method == "POST" and len(parts) == 4 and parts[1] == "actors":
            return _actor_admin(sandbox, package_id, parts[2], parts[3], body)
    raise not_found("Admin.UnknownRoute", f"no admin endpoint {method} /_sandbox/packages/{'/'.join(parts)}")


def _actor_admin(sandbox: Sandbox, package_id: str, actor_id: str, action: str,
                 body: dict[str, Any]) -> tuple[int, Any]:
    package, holder, actor = sandbox.resolve_actor(package_id, actor_id)
    person_index = int(body.get("person_index", 0))
    if action == "sign":
        sandbox.act(package, holder, actor, person_index, "sign", signer_name=body.get("name"))
    elif action == "reject":
        sandbox.act(package, holder, actor, person_index, "reject", reason=body.get("reason") or "Rejected")
    elif action == "request-link":
        url = sandbox.request_link(package, holder, actor, person_index)
        return 200, {"ActionUrl": url, **status_view(package, sandbox.link_base)}
    elif action == "fail":
        if actor.status not in ("Available", "InProgress"):
            raise ApiError(409, "Actor.InvalidStatus", f"actor {actor.id} is {actor.status}")
        sandbox.emit(lifecycle.fail(package, sandbox.clock.now(), actor=actor, reason=body.get("reason")))
    else:
        raise not_found("Admin.UnknownRoute", f"unknown actor action {action!r}")
    return 200, status_view(package, sandbox.link_base)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _internal_state(sandbox: Sandbox, package_id: str) -> dict[str, Any]:
    package = sandbox.package(package_id)
    state = _plain(dataclasses.asdict(package))
    for holder in state["stakeholders"]:
        for actor in holder["actors"]:
            actor["action_urls"] = [action_url(sandbox.link_base, token) for _, token in actor["links"]]
    return state
