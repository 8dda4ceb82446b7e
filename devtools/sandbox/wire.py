"""What an operation receives and returns, independent of the HTTP server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ApiRequest:
    params: dict[str, str]  # route parameters
    query: dict[str, str]  # query parameters, lower-case names
    user: str
    data: dict[str, Any]  # the JSON body (or the multipart Data part), keys folded to lower case
    # multipart file parts by lower-case name, already in the document store; an operation that keeps one pops it
    # (the server deletes the rest)
    files: dict[str, Path] = field(default_factory=dict)
    version: str = "3"  # "3" or "3.1"


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    file: Path | None = None
    delete_file: bool = False  # a temporary file made for this answer only
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    package_id: str | None = None  # for the per-package call counts (creates name what they made)
    mutated: bool = False
