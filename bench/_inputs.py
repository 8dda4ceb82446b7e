"""Inputs for the end-to-end benchmarks and the chaos run: inbox PDFs and batch manifests, dropped into Azurite.

An input's packageRef is known as soon as it is uploaded (intake derives it from the container, the
name and the ETag), so a run can follow every input without waiting for intake.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass

from azure.storage.blob import BlobServiceClient, ContainerClient
from reportlab.pdfgen import canvas

from shared.pipeline.inputs import package_ref_for_blob
from shared.pipeline.manifest import MANIFEST_NAME
from shared.storage import names
from shared.storage.status import PackageStatus

# The sandbox's auto-sign rejects when a signer's email contains this (its default `reject_substring`).
REJECTING_EMAIL_PART = "reject"


def small_pdf(title: str, signers: int) -> bytes:
    """A one-page PDF with the default text markers #SIGN1#, #SIGN2#, ... for each signer."""
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer)
    sheet.drawString(72, 780, title)
    for position in range(1, signers + 1):
        sheet.drawString(72, 700 - 80 * position, f"#SIGN{position}#")
    sheet.showPage()
    sheet.save()
    return buffer.getvalue()


@dataclass(frozen=True)
class InputSpec:
    """What to drop: one document goes to the inbox, several make a batch with a manifest."""

    name: str
    documents: int = 1
    signers: int = 1
    rejected: bool = False  # the first signer's email makes the sandbox reject the package
    # Where a single PDF goes; another container keeps it from the blob trigger (bench.saturation runs intake itself).
    inbox: str = names.INBOX_CONTAINER

    @property
    def container(self) -> str:
        return self.inbox if self.documents == 1 else names.BATCHES_CONTAINER

    @property
    def expected_status(self) -> PackageStatus:
        return PackageStatus.REJECTED if self.rejected else PackageStatus.ARCHIVED

    def emails(self) -> list[str]:
        first = f"{REJECTING_EMAIL_PART}-{self.name}" if self.rejected else f"signer1-{self.name}"
        return [f"{first}@example.com", *(f"signer{n}-{self.name}@example.com" for n in range(2, self.signers + 1))]


@dataclass(frozen=True)
class DroppedInput:
    spec: InputSpec
    ref: str
    blobs: tuple[str, ...]  # every blob of the input in spec.container, the trigger last


def _upload(container: ContainerClient, name: str, data: bytes, metadata: dict[str, str] | None = None) -> str:
    """Upload a new blob (never over an existing one); its ETag."""
    return str(container.get_blob_client(name).upload_blob(data, overwrite=False, metadata=metadata)["etag"])


def drop(blobs: BlobServiceClient, spec: InputSpec) -> DroppedInput:
    """Upload one input; a batch's documents go first and its manifest last, as docs/MANIFEST.md asks."""
    container = blobs.get_container_client(spec.container)
    emails = spec.emails()
    if spec.documents == 1:
        name = f"{spec.name}.pdf"
        signers = "; ".join(f"Signer {n} <{email}>" for n, email in enumerate(emails, start=1))
        etag = _upload(container, name, small_pdf(spec.name, spec.signers), {"signers": signers})
        return DroppedInput(spec, package_ref_for_blob("inb", spec.container, name, etag), (name,))
    paths = [f"doc{n}.pdf" for n in range(1, spec.documents + 1)]
    for path in paths:
        _upload(container, f"{spec.name}/{path}", small_pdf(f"{spec.name} {path}", spec.signers))
    manifest = {
        "schemaVersion": "1", "name": spec.name,
        "documents": [{"path": path, "name": path.removesuffix(".pdf")} for path in paths],
        "signers": [{"name": f"Signer {n}", "email": email, "order": n} for n, email in enumerate(emails, start=1)],
    }
    manifest_name = f"{spec.name}/{MANIFEST_NAME}"
    etag = _upload(container, manifest_name, json.dumps(manifest).encode())
    ref = package_ref_for_blob("bat", spec.container, manifest_name, etag)
    return DroppedInput(spec, ref, (*(f"{spec.name}/{path}" for path in paths), manifest_name))


def chaos_mix(count: int, seed: int, prefix: str = "chaos") -> list[InputSpec]:
    """A shuffled mix: 60 % one PDF and one signer, 15 % one PDF and two signers, 15 % batches of 2 or 3
    documents, 10 % rejected by the signer (half of them batches)."""
    rng = random.Random(seed)
    specs = []
    for index in range(count):
        name = f"{prefix}-{index:04d}"
        share = index % 20
        if share < 12:
            specs.append(InputSpec(name))
        elif share < 15:
            specs.append(InputSpec(name, signers=2))
        elif share < 18:
            specs.append(InputSpec(name, documents=2 + share % 2))
        else:
            specs.append(InputSpec(name, documents=1 + (share % 2) * 2, rejected=True))
    rng.shuffle(specs)
    return specs
