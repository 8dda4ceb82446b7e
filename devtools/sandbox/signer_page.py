"""The ActionUrl page: a small HTML form where a person signs or rejects, and the F2F overview page."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from devtools.sandbox import lifecycle
from devtools.sandbox.errors import ApiError
from devtools.sandbox.model import Actor, Package, Stakeholder
from devtools.sandbox.sandbox import Sandbox
from devtools.sandbox.views import action_url

STYLE = """body{font-family:sans-serif;max-width:40em;margin:2em auto;color:#123}
button{font-size:1em;padding:.4em 1.2em;margin:.3em}#result{font-weight:bold}
.sign{background:#1c5;color:#fff;border:0}.reject{background:#c33;color:#fff;border:0}"""


@dataclass
class Page:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _html(title: str, content: str, status: int = 200) -> Page:
    document = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
                f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{content}</body></html>")
    return Page(status, document.encode())


def handle(sandbox: Sandbox, method: str, path: str, query: dict[str, str], form: dict[str, str]) -> Page:
    if path == "/signinit":
        return _overview(sandbox, query.get("packageSignId", ""))
    parts = [part for part in path.split("/") if part][1:]  # after "sign"
    if not parts:
        return _html("Unknown link", "<p id='result'>This signing link is unknown.</p>", 404)
    token = parts[0]
    with sandbox.lock:
        try:
            package, holder, actor, person_index = sandbox.resolve_link(token)
        except ApiError:
            return _html("Unknown link", "<p id='result'>This signing link is unknown or was replaced by a newer "
                         "one.</p>", 404)
        try:
            if method == "POST" and parts[1:] == ["request-link"]:
                sandbox.request_link(package, holder, actor, person_index)
                return _html("New link requested", "<p id='result'>A new signing link was requested; it will be "
                             "sent to you.</p>")
            if method == "POST" and len(parts) == 1:
                decision = form.get("action", "")
                if decision not in ("sign", "reject"):
                    return _html("Bad request", "<p id='result'>Choose sign or reject.</p>", 400)
                sandbox.act(package, holder, actor, person_index, decision,
                            reason=form.get("reason") or None, signer_name=form.get("name") or None)
                if actor.redirect_url:
                    return Page(303, b"", headers={"Location": actor.redirect_url})
                done = "signed" if decision == "sign" else "rejected"
                return _html("Thank you", f"<p id='result' data-status='{escape(actor.status)}'>You {done} "
                             f"&ldquo;{escape(package.name)}&rdquo;.</p>")
        except ApiError as error:
            return _html("Not possible", f"<p id='result'>{escape(error.message)}</p>", error.status)
        if method != "GET" or len(parts) != 1:
            return _html("Unknown page", "<p id='result'>Nothing here.</p>", 404)
        lifecycle.open_session(package, actor)
        return _form(token, package, holder, actor, person_index)


def _form(token: str, package: Package, holder: Stakeholder, actor: Actor, person_index: int) -> Page:
    person = holder.persons[min(person_index, len(holder.persons) - 1)]
    documents = "".join(f"<li>{escape(document.name)}</li>" for document in package.documents)
    header = (f"<p>Package <b>{escape(package.name)}</b> from {escape(package.initiator)}</p>"
              f"<ul id='documents'>{documents}</ul><p id='actor-status'>{escape(actor.status)}</p>")
    if package.status != "Pending" or actor.status not in ("Available", "InProgress"):
        reason = (f"The package is {package.status}." if package.status != "Pending"
                  else "It is not your turn yet." if actor.status == "Draft" else f"This step is {actor.status}.")
        link_form = (f"<form method='post' action='/sign/{escape(token)}/request-link'>"
                     "<button id='request-link-button'>Send me a new link</button></form>"
                     if package.status in ("Pending", "Expired") else "")
        return _html("Signing", f"{header}<p id='result'>{escape(reason)}</p>{link_form}")
    verb = "Approve" if actor.type == "Approver" else "Sign"
    body = (f"{header}<form method='post' action='/sign/{escape(token)}'>"
            f"<p><label>Your name <input id='signer-name' name='name' value='{escape(person.display_name)}'>"
            "</label></p>"
            f"<p><button id='sign-button' class='sign' name='action' value='sign'>{verb}</button></p>"
            "<p><label>Reason for rejecting <input id='reject-reason' name='reason'></label>"
            "<button id='reject-button' class='reject' name='action' value='reject'>Reject</button></p></form>")
    return _html(f"{verb}: {package.name}", body)


def _overview(sandbox: Sandbox, package_id: str) -> Page:
    """Face-to-face page: every actor's link of the package."""
    with sandbox.lock:
        package = sandbox.packages.get(package_id.lower())
        if package is None:
            return _html("Unknown package", "<p id='result'>This package is unknown.</p>", 404)
        rows = "".join(
            f"<li>{escape(person.display_name)} ({escape(actor.type)}, {escape(actor.status)}): "
            f"<a href='{escape(action_url(sandbox.link_base, token or ''))}'>open</a></li>"
            for holder, actor in package.actors()
            for (_, token), person in zip(actor.links, holder.persons, strict=False)
        )
    return _html(f"Face to face: {package.name}", f"<ul>{rows}</ul>")
