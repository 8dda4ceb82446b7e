"""The PDF check reads only the ranges it needs, reports read failures as they are, and keeps its time limit;
it reads the blob version intake described, and no other."""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import ResourceModifiedError
from azure.storage.blob import BlobServiceClient
from PIL import Image
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from shared.config import Settings
from shared.pipeline import pdfcheck
from shared.pipeline.documents import check_document
from shared.pipeline.pdfcheck import PdfRejected, inspect_pdf

NOISE_SIDE = 1200  # random pixels do not compress: each image adds about 1.4 MB


def noise_image() -> ImageReader:
    return ImageReader(Image.frombytes("L", (NOISE_SIDE, NOISE_SIDE), os.urandom(NOISE_SIDE ** 2)))


def scan_like_pdf() -> bytes:
    """Two pages of large images; the marker of page 2 is written inside a form that also draws an image."""
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer, pagesize=(595, 842))
    sheet.drawImage(noise_image(), 0, 0, 595, 842)
    sheet.drawString(72, 800, "#SIGN1#")
    sheet.showPage()
    sheet.beginForm("stamp")
    sheet.drawImage(noise_image(), 0, 0, 300, 300)
    sheet.drawString(72, 400, "#SIGN2#")
    sheet.endForm()
    sheet.drawImage(noise_image(), 0, 0, 595, 842)
    sheet.doForm("stamp")
    sheet.showPage()
    sheet.save()
    return buffer.getvalue()


class CountingReads:
    """A range reader over bytes that counts what it served."""

    def __init__(self, data: bytes, delay_s: float = 0.0) -> None:
        self.data = data
        self.delay_s = delay_s
        self.bytes_read = 0

    def __call__(self, offset: int, length: int) -> bytes:
        time.sleep(self.delay_s)
        self.bytes_read += length
        return self.data[offset:offset + length]


def test_a_scan_is_checked_without_reading_its_images() -> None:
    document = scan_like_pdf()
    reads = CountingReads(document)
    facts = inspect_pdf(reads, len(document), ["#SIGN1#", "#SIGN2#", "#SIGN3#"])
    assert facts.pages == 2 and facts.last_page_size == (595.0, 842.0)
    assert facts.markers_found == ["#SIGN1#", "#SIGN2#"]  # the form's text counts
    assert len(document) > 4_000_000
    assert reads.bytes_read < len(document) / 4


def test_a_failed_read_is_raised_again_after_the_child_stops() -> None:
    document = scan_like_pdf()

    class Replaced(Exception):
        pass

    def read_range(offset: int, length: int) -> bytes:
        if offset > 0:
            raise Replaced("the blob changed")
        return document[offset:offset + length]

    with pytest.raises(Replaced):
        inspect_pdf(read_range, len(document), ["#SIGN1#"])


def test_a_check_that_takes_too_long_is_a_rejection() -> None:
    document = scan_like_pdf()
    with pytest.raises(PdfRejected) as rejected:
        inspect_pdf(CountingReads(document, delay_s=0.5), len(document), ["#SIGN1#"], timeout_s=1.0)
    assert rejected.value.code == "pdf_analysis_timeout"
    # The check stopped with the rejection: nothing goes on reading the document behind it. (How soon
    # is the time limit's business, measured on the machine at hand, not a figure to assert here.)
    assert not any(thread.name == "pdfcheck-ranges" for thread in threading.enumerate())


def test_a_blob_replaced_before_the_check_fails_loudly(storage_connection_string: str) -> None:
    container = BlobServiceClient.from_connection_string(storage_connection_string).create_container(
        f"pdfcheck-{uuid.uuid4().hex[:12]}")
    blob = container.get_blob_client("scan.pdf")
    document = scan_like_pdf()
    etag = blob.upload_blob(document)["etag"]
    facts = check_document(Settings({}), blob, etag=etag, size=len(document), markers=["#SIGN1#"])
    assert facts.markers_found == ["#SIGN1#"]
    blob.upload_blob(document + b"%changed\n", overwrite=True)
    with pytest.raises(ResourceModifiedError):
        check_document(Settings({}), blob, etag=etag, size=len(document), markers=["#SIGN1#"])


def test_the_check_childs_memory_is_a_share_of_the_instance() -> None:
    gib = 1024 ** 3
    assert pdfcheck.analysis_memory_bytes(2 * gib) == gib // 2  # a 2 GB Flex Consumption instance
    assert pdfcheck.analysis_memory_bytes(512 * 1024 ** 2) == pdfcheck.MIN_ANALYSIS_MEMORY_BYTES
    assert pdfcheck.analysis_memory_bytes(64 * gib) == pdfcheck.MAX_ANALYSIS_MEMORY_BYTES
    assert pdfcheck.CONCURRENT_CHECKS * pdfcheck.analysis_memory_bytes(2 * gib) <= gib


def test_no_more_checks_run_at_once_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six checks started together: while the bound's number of children read, the others wait for a slot."""
    document = scan_like_pdf()
    active, most = set(), 0
    lock = threading.Lock()
    real_run = pdfcheck._run_child

    def counted_run(read_range, size, markers, timeout_s):  # type: ignore[no-untyped-def]
        nonlocal most
        me = object()
        with lock:
            active.add(me)
            most = max(most, len(active))
        try:
            return real_run(read_range, size, markers, timeout_s)
        finally:
            with lock:
                active.discard(me)

    monkeypatch.setattr(pdfcheck, "_run_child", counted_run)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: inspect_pdf(CountingReads(document), len(document), ["#SIGN1#"]),
                                range(6)))
    assert all(facts.markers_found == ["#SIGN1#"] for facts in results)
    assert 1 <= most <= pdfcheck.CONCURRENT_CHECKS
