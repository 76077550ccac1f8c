"""Import and export in a real browser: a ChatGPT export chosen on the "Import
conversations" page shows its report (the upload's progress while it goes), the imported
conversation opens with its versions ("2 / 2") and switches between them, and exports
download from their URLs as files that read back."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from chatapp.models import Conversation
from tests.conftest import BROWSER_TEST, expect, log_in
from tests.exchange.conftest import FIXTURES

pytestmark = BROWSER_TEST


def test_import_a_chatgpt_export_then_open_it_with_its_versions(page):
    log_in(page)
    page.goto("/import/")
    expect(page.get_by_role("heading", name="Import conversations")).to_be_visible()
    page.get_by_label("Export file (.zip or .json)").set_input_files(
        str(FIXTURES / "chatgpt-tree.json")
    )
    page.get_by_role("button", name="Import").click()
    report = page.get_by_role("region", name="Imported 1 conversation from ChatGPT")
    expect(report).to_be_visible()
    expect(page.locator("#import-upload")).to_have_attribute("value", "100")
    report.get_by_role("link", name="Assist user with summary").click()
    expect(page.get_by_role("heading", name="Assist user with summary", level=1)).to_be_visible()
    thread = page.locator("#thread")
    expect(thread.locator("article")).to_have_count(6)
    versions = thread.locator(".version-count")
    expect(versions).to_have_text(["2 / 2", "2 / 2"])
    expect(thread.locator("article.msg-assistant .meta-model").last).to_have_text(
        "ChatGPT · text-davinci-002-render-sha"
    )
    # The older version of the edited prompt, with the branch under it.
    thread.locator("article.msg-user").nth(1).get_by_role("button", name="Previous version").click()
    expect(thread.locator("article.msg-user").nth(1).locator(".msg-text")).to_have_text(
        "so cool bro"
    )
    expect(thread.locator(".version-count").first).to_have_text("1 / 2")


def test_exports_download_as_files_that_read_back(page):
    log_in(page)
    page.goto("/import/")
    page.get_by_label("Export file (.zip or .json)").set_input_files(
        str(FIXTURES / "chat-export-branches.json")
    )
    page.get_by_role("button", name="Import").click()
    expect(
        page.get_by_role("region", name="Imported 1 conversation from Open WebUI")
    ).to_be_visible()
    with page.expect_download() as everything:
        page.get_by_role("link", name="Export all conversations").click()
    archive = zipfile.ZipFile(everything.value.path())
    (name,) = [n for n in archive.namelist() if n.startswith("conversations/")]
    document = json.loads(archive.read(name))
    assert document["format"] == "chatapp-export"
    assert len(document["messages"]) == 11
    conversation = Conversation.objects.get()
    with page.expect_download() as markdown:
        page.evaluate(
            "url => { const a = document.createElement('a'); a.href = url; a.download = '';"
            " document.body.append(a); a.click(); }",
            f"/c/{conversation.id}/export.md",
        )
    assert markdown.value.suggested_filename == "Arrested-for-Freedom.md"
    text = markdown.value.path().read_text(encoding="utf-8")
    assert text.startswith("# 🦅 Arrested for Freedom?")
    assert text.count("## You") == 5


@pytest.mark.usefixtures("live_url")
def test_an_export_zip_streams_through_the_real_server(page):
    """Served by Uvicorn, the zip comes through the threaded stream (not Django's list)."""
    log_in(page)
    page.goto("/import/")
    page.get_by_label("Export file (.zip or .json)").set_input_files(
        str(FIXTURES / "chatgpt-export.json")
    )
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("region", name="Imported 2 conversations from ChatGPT")).to_be_visible()
    conversation = Conversation.objects.order_by("created_at").first()
    response = page.request.get(f"/c/{conversation.id}/export.zip")
    assert response.status == 200
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.body()))
    assert archive.testzip() is None
