"""Browser tests for images: attach by button, paste and drag-and-drop; thumbnails before and
after sending; Send waits for uploads; the upstream receives each image as a `data:` URI of
the normalised file; after a reload the images are still there.

Synchronisation is by events only: Playwright's `expect` waits for the page, a held route
stands in for a slow upload, and the fake upstream records what it received.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from chatapp.models import Attachment, MessageAttachment
from tests import imagegen
from tests.conftest import answer, log_in
from tests.fakes.openapi import validate_chat_request
from tests.fakes.upstream import Reply, Text

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]

# Build a File in the page and hand it to the composer the way a person's browser would.
PASTE = """([data, name, type]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const files = new DataTransfer();
  files.items.add(new File([bytes], name, { type }));
  const target = document.getElementById("composer-text");
  target.focus();
  target.dispatchEvent(
    new ClipboardEvent("paste", { clipboardData: files, bubbles: true, cancelable: true })
  );
}"""
DROP = """([data, name, type]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const files = new DataTransfer();
  files.items.add(new File([bytes], name, { type }));
  const thread = document.getElementById("thread");
  for (const kind of ["dragenter", "dragover", "drop"]) {
    thread.dispatchEvent(
      new DragEvent(kind, { dataTransfer: files, bubbles: true, cancelable: true })
    );
  }
}"""
# Every <img> matched has been fetched and decoded (a broken image has naturalWidth 0).
ALL_LOADED = """(selector) => {
  const found = [...document.querySelectorAll(selector)];
  return found.length > 0 && found.every((img) => img.complete && img.naturalWidth > 0);
}"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tray(page: Page):
    return page.locator("#attachments li.attachment")


def attach_file(page: Page, name: str, data: bytes, mime: str = "image/jpeg") -> None:
    page.get_by_label("Attach image").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )


def sent_images(body: dict) -> list[tuple[str, bytes]]:
    images = []
    for part in body["messages"][-1]["content"]:
        if part["type"] == "image_url":
            prefix, _, encoded = part["image_url"]["url"].partition(",")
            images.append((prefix, base64.b64decode(encoded, validate=True)))
    return images


def test_attach_by_button_paste_and_drop_then_send_and_reload(page, aimlapi):
    log_in(page)
    attach_file(page, "phone.jpg", imagegen.phone_photo())
    expect(tray(page)).to_have_count(1)
    page.evaluate(PASTE, [b64(imagegen.png(160, 120, mode="RGBA")), "image.png", "image/png"])
    expect(tray(page)).to_have_count(2)
    page.evaluate(DROP, [b64(imagegen.webp(200, 150)), "dropped.webp", "image/webp"])
    expect(tray(page)).to_have_count(3)
    # Uploaded: each shows the server's thumbnail and carries its hidden input.
    expect(page.locator("#attachments input[name=attachments]")).to_have_count(3)
    expect(page.locator("#attachments progress")).to_have_count(0)
    page.wait_for_function(ALL_LOADED, arg="#attachments img")
    expect(tray(page).first.locator("img")).to_have_attribute(
        "alt", "Image to send (3072 × 2304 pixels)"
    )

    aimlapi.enqueue(Reply([Text("Three pictures.")]))
    box = page.get_by_role("textbox", name="Message")
    box.fill("What do these show?")
    box.press("Enter")
    expect(answer(page).locator(".msg-body")).to_have_text("Three pictures.")
    expect(tray(page)).to_have_count(0)  # the tray empties once the message is sent
    expect(page.locator("article.msg-user .msg-images img")).to_have_count(3)

    body = aimlapi.requests[0].json
    validate_chat_request(body)
    links = list(
        MessageAttachment.objects.select_related("attachment").order_by("message", "position")
    )
    assert len(links) == 3
    expected = []
    for link in links:
        with default_storage.open(link.attachment.file_name) as fh:
            expected.append((f"data:{link.attachment.mime_type};base64", fh.read()))
    assert sent_images(body) == expected
    assert [prefix for prefix, _ in expected] == [
        "data:image/jpeg;base64",  # the phone photo
        "data:image/png;base64",  # the pasted image with transparency
        "data:image/jpeg;base64",  # the dropped WEBP photo
    ]
    photo = Image.open(io.BytesIO(expected[0][1]))
    assert photo.size == (3072, 2304)
    assert not photo.getexif()  # no GPS position left the server
    assert body["messages"][-1]["content"][-1] == {"type": "text", "text": "What do these show?"}

    page.reload()
    thumbnails = page.locator("article.msg-user .msg-images img")
    expect(thumbnails).to_have_count(3)
    page.wait_for_function(ALL_LOADED, arg="article.msg-user .msg-images img")
    expect(page.locator("article.msg-user .msg-text")).to_have_text("What do these show?")
    full = page.locator("article.msg-user .msg-images a").first.get_attribute("href")
    response = page.request.get(full)
    assert response.status == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.body() == expected[0][1]


def test_send_waits_for_an_upload_still_running(page, aimlapi):
    log_in(page)
    held = []
    page.route("**/attachments/", lambda route: held.append(route))
    with page.expect_request("**/attachments/"):
        attach_file(page, "big.jpg", imagegen.phone_photo())
    uploading = tray(page).first
    expect(uploading.locator("progress")).to_be_visible()
    expect(uploading.locator("progress")).to_have_attribute("aria-label", "Uploading big.jpg")

    aimlapi.enqueue(Reply([Text("A big photo.")]))
    box = page.get_by_role("textbox", name="Message")
    box.fill("Look at this")
    box.press("Enter")
    expect(page.locator("#upload-status")).to_have_text(
        "Uploading 1 image… the message is sent when the upload finishes."
    )
    expect(page.locator("article.msg-user")).to_have_count(0)
    assert aimlapi.requests == []

    assert len(held) == 1
    held[0].continue_()
    expect(answer(page).locator(".msg-body")).to_have_text("A big photo.")
    expect(page.locator("article.msg-user .msg-images img")).to_have_count(1)
    expect(page.locator("#upload-status")).to_have_text("")
    (prefix, sent), *_ = sent_images(aimlapi.requests[0].json)
    attachment = Attachment.objects.get()
    with default_storage.open(attachment.file_name) as fh:
        assert sent == fh.read()
    assert prefix == "data:image/jpeg;base64"
    assert max(attachment.width, attachment.height) == 3072


def test_refused_files_say_why_and_leave_nothing_behind(page, aimlapi, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "images_per_message": 2}
    log_in(page)
    attach_file(page, "drawing.svg", imagegen.SVG, "image/svg+xml")
    expect(page.locator("#composer-error")).to_contain_text(
        "This file is not a PNG, JPEG, WEBP or GIF image"
    )
    attach_file(page, "cut.jpg", imagegen.truncated_jpeg())
    expect(page.locator("#composer-error")).to_contain_text("damaged or incomplete")
    expect(tray(page)).to_have_count(0)

    # The per-message limit is named before anything is uploaded.
    page.get_by_label("Attach image").set_input_files(
        files=[
            {"name": f"{i}.jpg", "mimeType": "image/jpeg", "buffer": imagegen.jpeg(30 + i, 30)}
            for i in range(3)
        ]
    )
    expect(page.locator("#composer-error")).to_have_text(
        "You can attach up to 2 images to one message."
    )
    expect(page.locator("#attachments input[name=attachments]")).to_have_count(2)
    # A removed image is not sent.
    tray(page).first.get_by_role("button", name="Remove image").click()
    expect(tray(page)).to_have_count(1)
    assert Attachment.objects.count() == 2
    assert not any(name.endswith(".svg") for name in _stored_names())

    # The live server survives a decompression bomb and goes on serving.
    token = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRFToken"]
    bomb = page.request.post(
        "/attachments/",
        multipart={
            "image": {
                "name": "bomb.png",
                "mimeType": "image/png",
                "buffer": imagegen.decompression_bomb(),
            }
        },
        headers={"X-CSRFToken": token},
    )
    assert bomb.status == 413
    assert "the limit is 120 megapixels" in bomb.text()
    assert page.request.get("/healthz").status == 200

    aimlapi.enqueue(Reply([Text("One image.")]))
    box = page.get_by_role("textbox", name="Message")
    box.fill("Only one")
    box.press("Enter")
    expect(answer(page).locator(".msg-body")).to_have_text("One image.")
    assert len(sent_images(aimlapi.requests[0].json)) == 1


def test_a_file_over_the_size_limit_is_refused_before_uploading(page, aimlapi, settings):
    settings.CHAT_IMAGE_LIMITS = {**settings.CHAT_IMAGE_LIMITS, "max_bytes": 2_000_000}
    log_in(page)
    attach_file(page, "phone.jpg", imagegen.phone_photo())
    expect(page.locator("#composer-error")).to_have_text("phone.jpg is 5.7 MB; the limit is 2 MB.")
    expect(tray(page)).to_have_count(0)
    assert Attachment.objects.count() == 0


def test_images_fit_at_360_px(browser, live_url, aimlapi):
    context = browser.new_context(base_url=live_url, viewport={"width": 360, "height": 740})
    page = context.new_page()
    log_in(page, "narrow")
    page.get_by_label("Attach image").set_input_files(
        files=[
            {"name": f"{i}.jpg", "mimeType": "image/jpeg", "buffer": imagegen.jpeg(900, 600 + i)}
            for i in range(5)
        ]
    )
    expect(page.locator("#attachments input[name=attachments]")).to_have_count(5)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
    aimlapi.enqueue(Reply([Text("Five.")]))
    page.get_by_role("button", name="Send").click()
    expect(answer(page).locator(".msg-body")).to_have_text("Five.")
    expect(page.locator("article.msg-user .msg-images img")).to_have_count(5)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()


def _stored_names() -> list[str]:
    _, files = default_storage.listdir("attachments")
    names = list(files)
    for folder in default_storage.listdir("attachments")[0]:
        names += default_storage.listdir(f"attachments/{folder}")[1]
    return names
