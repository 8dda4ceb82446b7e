"""A person signs through the ActionUrl page in headless Chromium (Debian's package, driven by playwright)."""

from __future__ import annotations

import io
import shutil

import pytest
from pypdf import PdfReader

from tests.sandbox.conftest import Api

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_sign_and_reject_through_the_action_url_page(api: Api) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (`make browser` installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    package = api.pending_package(signers=["anna@example.com", "bert@example.com"])
    package_id = package["PackageId"]
    first_url = package["Stakeholders"][0]["Actors"][0]["ActionUrl"]
    second_url = package["Stakeholders"][1]["Actors"][0]["ActionUrl"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(second_url)
            assert "not your turn" in page.inner_text("#result")
            page.goto(first_url)
            assert page.input_value("#signer-name") == "Anna Tester"
            page.fill("#signer-name", "Anna Browser")
            page.click("#sign-button")
            page.wait_for_selector("#result[data-status='Finished']")
            page.goto(second_url)
            page.fill("#reject-reason", "Not my contract")
            page.click("#reject-button")
            page.wait_for_selector("#result[data-status='Rejected']")
        finally:
            browser.close()
    status = api.status(package_id)
    first, second = (holder["Actors"][0] for holder in status["Stakeholders"])
    assert first["ActorStatus"] == "Finished" and first["CompletedBy"] == "Anna Browser"
    assert second["ActorStatus"] == "Rejected" and second["Reason"] == "Not my contract"
    assert status["PackageStatus"] == "Rejected"


@pytest.mark.browser
def test_browser_signature_appears_on_the_signed_pdf(api: Api) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (`make browser` installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    package = api.pending_package(signers=["solo@example.com"])
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(package["Stakeholders"][0]["Actors"][0]["ActionUrl"])
            page.click("#sign-button")
            page.wait_for_selector("#result[data-status='Finished']")
        finally:
            browser.close()
    document_id = package["PackageDocuments"][0]["DocumentId"]
    signed = api.call("GET", f"/packages/{package['PackageId']}/download/{document_id}")
    assert "Signed by Solo Tester" in PdfReader(io.BytesIO(signed.content)).pages[0].extract_text()
