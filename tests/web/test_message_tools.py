"""What an answer's built-in tools leave on the page: citation markers linked to a "Sources"
list, the searches, the URLs read, code run and its output as labelled blocks, and Google's
search suggestions in a sandboxed frame (docs/SECURITY.md rule 18), whatever the stored
details hold."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from django.template.loader import render_to_string

from chatapp import rendering
from chatapp.providers.gemini import tools
from tests.web.test_message_template import Text, answer

HOSTILE_SUGGESTIONS = (
    "<style>body{background:red !important} .msg{display:none}</style>"
    "<script>parent.document.title='pwned'</script>"
    '<img src="https://evil.example/pixel.png" onerror="top.location=\'https://evil.example/\'">'
    '<a target="_top" href="https://evil.example/top">chip</a>'
    '<meta http-equiv="refresh" content="0;url=https://evil.example/refresh">'
    '"></iframe><script>alert(1)</script>'
)


def grounded(content: str, grounding: dict[str, Any], **fields: Any) -> Any:
    return answer(
        content=content,
        finish_reason="stop",
        provider_extras={"grounding": grounding},
        request_options={"google_search": True},
        **fields,
    )


def page(message: Any) -> str:
    return render_to_string("chatapp/_message.html", {"message": message, "is_last": True})


def test_citation_markers_link_to_their_numbered_sources() -> None:
    text = "Zürich liegt am See. Bern an der Aare."
    message = grounded(
        text,
        {
            "queries": ["Zürich See", "Bern Fluss"],
            "sources": [
                {"title": "zuerich.ch", "uri": "https://r.example/1", "domain": "zuerich.ch"},
                {"title": "Bern", "uri": "https://r.example/2", "domain": "bern.ch"},
            ],
            "citations": [
                {"at": text.index(" Bern"), "sources": [1]},
                {"at": len(text), "sources": [1, 2]},
            ],
        },
    )
    html = page(message)
    anchor = tools.anchor(message.id)
    assert (
        f'See.<sup class="cite">[<a href="#{anchor}-source-1" aria-label="Source 1">1</a>]</sup>'
        in html
    )
    assert (
        f'Aare.<sup class="cite">[<a href="#{anchor}-source-1" aria-label="Source 1">1</a>, '
        f'<a href="#{anchor}-source-2" aria-label="Source 2">2</a>]</sup>'
    ) in html
    parsed = Text(html)
    assert parsed.text("msg-queries") == "Searched Google for Zürich See , Bern Fluss"
    sources = [a for tag, a in parsed.tags if tag == "ol"]
    assert sources == [{"class": "msg-sources", "aria-label": "Sources"}]
    links = [
        a for tag, a in parsed.tags if tag == "a" and a.get("href", "").startswith("https://r.")
    ]
    assert links == [
        {"href": "https://r.example/1", "target": "_blank", "rel": "noopener noreferrer"},
        {"href": "https://r.example/2", "target": "_blank", "rel": "noopener noreferrer"},
    ]
    assert parsed.text("source-domain") == "bern.ch"  # not repeated where it is the title
    assert f'<li id="{anchor}-source-2">' in html


def test_stored_details_are_checked_again_before_they_are_shown() -> None:
    """An imported or older row may hold anything: a bad URL is shown unlinked, a marker for
    a source the answer does not list is left out, a bad offset is ignored."""
    message = grounded(
        "Text.",
        {
            "sources": [{"title": "<b>x</b>", "uri": "javascript:alert(1)"}],
            "citations": [
                {"at": 5, "sources": [1, 2]},
                {"at": 999, "sources": [1]},
                {"at": "0", "sources": [1]},
            ],
        },
    )
    html = page(message)
    assert "javascript:" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count('class="cite"') == 1
    assert "source-2" not in html.split("msg-tools")[0]


def test_an_answer_asked_for_with_search_but_without_sources_says_so() -> None:
    parsed = Text(page(grounded("Plain.", {})))
    assert "Google Search was on, but no sources came with this answer." in parsed.text("msg-note")
    assert "msg-sources" not in parsed.by_class


def test_an_answer_without_tools_shows_nothing_of_them() -> None:
    assert "msg-tools" not in page(answer(content="Hi.", finish_reason="stop"))


def test_hostile_search_suggestions_are_only_ever_a_sandboxed_frames_document() -> None:
    html = page(grounded("Text.", {"entry_point": HOSTILE_SUGGESTIONS}))
    frames = re.findall(r"<iframe[^>]*>", html)
    assert len(frames) == 1
    frame = frames[0]
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "allow-scripts" not in html
    assert "allow-same-origin" not in html
    assert 'referrerpolicy="no-referrer"' in frame
    # Outside the frame's srcdoc attribute, nothing of the snippet is markup of the page.
    outside = html.replace(frame, "")
    for needle in ("<script", "<style", "<img", "<meta", "onerror", "evil.example"):
        assert needle not in outside
    document = unescape(re.search(r'srcdoc="([^"]*)"', frame)[1])
    assert document.startswith(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><base target="_blank">'
    )
    assert HOSTILE_SUGGESTIONS in document


def test_url_context_lists_each_url_with_its_status_and_links_only_web_urls() -> None:
    message = answer(
        content="Read.",
        finish_reason="stop",
        provider_extras={
            "url_context": [
                {"url": "https://a.example/", "status": "URL_RETRIEVAL_STATUS_SUCCESS"},
                {"url": "file:///etc/passwd", "status": "URL_RETRIEVAL_STATUS_UNSAFE"},
            ]
        },
    )
    parsed = Text(page(message))
    assert parsed.text("msg-urls") == (
        "https://a.example/ read file:///etc/passwd refused as unsafe, not read"
    )
    assert [a.get("href") for tag, a in parsed.tags if tag == "a" and "href" in a][:1] == [
        "https://a.example/"
    ]
    assert "file:///etc/passwd" in parsed.text("url-text")


def test_code_run_and_its_output_are_labelled_blocks_in_order() -> None:
    fence = tools.code_fence
    content = (
        "Running:\n"
        + fence({"executableCode": {"language": "PYTHON", "code": "print(1/0)"}})
        + fence(
            {"codeExecutionResult": {"outcome": "OUTCOME_FAILED", "output": "ZeroDivisionError"}}
        )
        + fence({"codeExecutionResult": {"outcome": "OUTCOME_DEADLINE_EXCEEDED", "output": ""}})
        + fence({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "<script>x</script>"}})
        + "Done."
    )
    html = page(answer(content=content, finish_reason="stop"))
    parsed = Text(html)
    assert (
        '<div class="code-block code-run"><div class="code-lang">Code run by the model · python'
        "</div>"
    ) in html
    assert parsed.text("code-run").replace(" ", "").endswith("print(1/0)")
    outputs = [a["class"] for tag, a in parsed.tags if "code-output" in (a.get("class") or "")]
    assert outputs == [
        "code-block code-output outcome-failed",
        "code-block code-output outcome-deadline-exceeded",
        "code-block code-output outcome-ok",
    ]
    assert parsed.text("outcome-failed") == "Output · failed ZeroDivisionError"
    assert parsed.text("outcome-deadline-exceeded") == "Output · deadline exceeded"
    assert parsed.text("outcome-ok") == "Output · OK <script>x</script>"
    body = parsed.text("msg-body")
    assert body.index("Running:") < body.index("print") < body.index("Zero") < body.index("Done.")


def test_a_model_writing_the_marker_itself_gets_a_label_and_nothing_more() -> None:
    """The info strings are distinctive, not secret: a model can write one, and all it gets
    is the label, on escaped text (docs/ARCHITECTURE.md, "Tools")."""
    html = rendering.render_markdown(
        "```text model-execution-output bogus\n<img src=x onerror=alert(1)>\n```\n"
    )
    assert "Output · outcome unknown" in html
    assert "<img" not in html


def test_citation_marks_in_the_text_itself_are_never_taken_for_markers() -> None:
    text = "A\ue000B\ue001C."
    html = rendering.render_markdown(text, [rendering.Citation(len(text), (1,))], anchor="m-x")
    assert html.count('class="cite"') == 1
    assert "\ue000" not in html
    assert html.startswith("<p>A\ufffdB\ufffdC.<sup")


def test_a_marker_at_the_start_of_a_line_goes_at_the_end_of_the_line_before() -> None:
    text = "One.\n\n# Two"
    html = rendering.render_markdown(text, [rendering.Citation(text.index("#"), (1,))], anchor="a")
    assert html.startswith('<p>One.<sup class="cite">')
    assert "<h1>Two</h1>" in html
