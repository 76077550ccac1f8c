"""How a finished answer reads: every Gemini finish reason in words (the message stores the
neutral reason, the upstream's own word in its extras), a sentence instead of an empty bubble,
and the "Safety ratings" disclosure (escaped, no script)."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from django.template.loader import render_to_string
from google.genai import types

from chatapp.conversations.models import Versions
from chatapp.models import Message
from chatapp.providers import endings
from chatapp.providers.gemini.safety import BLOCK_REASONS
from chatapp.providers.gemini.wire import FINISH_REASONS

RATINGS = [
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "LOW"},
    {
        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
        "probability": "HIGH",
        "severity": "HARM_SEVERITY_MEDIUM",
        "blocked": True,
    },
]
# Finish reasons whose meaning Google does not document for the Gemini API: the fallback
# spells them out.
UNDOCUMENTED = {"ESCALATION", "PUP_LIMITED_DISABLED", "CONTINUATION"}


class Text(HTMLParser):
    """The visible text of a fragment, per element class, and every tag seen."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.by_class: dict[str, str] = {}
        self._open: list[list[str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_data(" ")  # element boundaries separate words, as on screen
        a = dict(attrs)
        self.tags.append((tag, a))
        classes = (a.get("class") or "").split()
        if tag not in ("br", "img", "input"):
            self._open.append(classes)
        for name in classes:
            self.by_class.setdefault(name, "")

    def handle_endtag(self, tag: str) -> None:
        self.handle_data(" ")
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for classes in self._open:
            for name in classes:
                self.by_class[name] += data

    def text(self, name: str) -> str:
        return " ".join(self.by_class.get(name, "").split())


def answer(**fields: Any) -> Message:
    defaults = {
        "id": uuid.uuid4(),
        "conversation_id": uuid.uuid4(),
        "role": Message.Role.ASSISTANT,
        "status": Message.Status.COMPLETE,
        "route": "gemini",
        "model": "gemini-2.5-flash",
    }
    return Message(**{**defaults, **fields})


def ended(raw: str, **fields: Any) -> Message:
    """An answer that ended as the Gemini route saves one: the neutral reason on the row, the
    raw one in its provider extras."""
    known = FINISH_REASONS.get(raw)
    reason = known[0] if known else ("other" if raw else "")
    extras = {**fields.pop("provider_extras", {}), **({"finish_reason": raw} if raw else {})}
    return answer(finish_reason=reason, provider_extras=extras, **fields)


def render(message: Message) -> Text:
    html = render_to_string("chatapp/_message.html", {"message": message, "is_last": True})
    return Text(html)


# --- Finish reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason",
    sorted((set(FINISH_REASONS) | set(types.FinishReason.__members__)) - UNDOCUMENTED - {"STOP"}),
)
def test_every_gemini_finish_reason_has_a_neutral_reason_and_words(reason):
    neutral, _ = FINISH_REASONS[reason]
    ending = endings.describe(neutral, reason)
    assert ending.explanation
    assert ending.label
    assert "_" not in ending.label


def test_undocumented_reasons_still_read_as_words():
    assert endings.describe("other", "PUP_LIMITED_DISABLED").label == "pup limited disabled"


@pytest.mark.parametrize(
    ("reason", "note"),
    [
        ("SAFETY", "No answer: the safety filters blocked it."),
        ("MAX_TOKENS", "No answer: it reached the length limit (Max tokens; thinking counts"),
        ("RECITATION", "No answer: it was too close to a source the model may not recite."),
        ("MODEL_ARMOR", "No answer: a Model Armor policy blocked it."),
        ("UNEXPECTED_TOOL_CALL", "No answer: the model called a tool, but none was offered."),
        ("STOP", "The model returned no text."),
        ("", "The model returned no text."),
        ("SOMETHING_NEW", "No answer: the provider ended it (something new)."),
    ],
)
def test_an_answer_without_text_is_never_an_empty_bubble(reason, note):
    parsed = render(ended(reason, content=""))
    assert parsed.text("msg-ending").startswith(note)
    assert "msg-body" not in parsed.by_class


def test_a_safety_ending_on_google_points_at_the_safety_settings(all_routes):
    parsed = render(ended("SAFETY", content=""))
    assert "The safety settings in Settings can relax the filters." in parsed.text("msg-ending")
    # Segmind has no safety settings; a blocklist is not a filter the settings relax.
    parsed = render(ended("SAFETY", content="", route="segmind"))
    assert "Settings" not in parsed.text("msg-ending")
    parsed = render(ended("BLOCKLIST", content=""))
    assert parsed.text("msg-ending") == (
        "No answer: it contained terms on the provider's blocklist."
    )


def test_partial_text_is_kept_and_the_early_end_explained():
    parsed = render(ended("MAX_TOKENS", content="The first half"))
    assert parsed.text("msg-body") == "The first half"
    assert parsed.text("msg-ending") == (
        "The answer stopped early: it reached the length limit (Max tokens; thinking counts "
        "towards it)."
    )
    assert parsed.text("meta-finish") == "stopped: length limit"


def test_a_normal_answer_has_no_ending_note():
    parsed = render(ended("STOP", content="Hello"))
    assert "msg-ending" not in parsed.by_class
    assert parsed.text("meta-finish") == "finished"


def test_the_providers_finish_message_is_shown_as_text():
    parsed = render(
        ended(
            "MALFORMED_FUNCTION_CALL",
            content="",
            provider_extras={"finish_message": "<b>bad</b> call"},
        )
    )
    assert parsed.text("msg-ending").endswith("The provider said: <b>bad</b> call")
    assert "b" not in [tag for tag, _ in parsed.tags]


# --- Safety ratings -----------------------------------------------------------------------------


def test_safety_ratings_are_a_disclosure_in_words():
    parsed = render(ended("STOP", content="Careful.", provider_extras={"safety_ratings": RATINGS}))
    details = [a for tag, a in parsed.tags if tag == "details"]
    assert {"class": "msg-safety"} in details  # closed, no script needed
    assert parsed.text("msg-safety") == (
        "Safety ratings This answer Harassment: negligible probability Hate speech: low "
        "probability Dangerous content: high probability, medium severity · blocked"
    )


def test_a_blocked_prompt_shows_its_reason_and_the_prompts_ratings():
    message = answer(
        content="",
        status=Message.Status.FAILED,
        error_code="prompt_blocked",
        error_message="Your prompt was blocked: the safety filters flagged it.",
        finish_reason="",
        provider_extras={"prompt_feedback": {"blockReason": "SAFETY", "safetyRatings": RATINGS}},
    )
    parsed = render(message)
    assert parsed.text("msg-error").startswith("Your prompt was blocked")
    assert "msg-ending" not in parsed.by_class
    summary = parsed.text("msg-safety")
    assert summary.startswith(
        f"Safety ratings Your prompt was blocked: {BLOCK_REASONS['SAFETY']} (SAFETY). "
        "Your prompt Harassment: negligible probability"
    )
    assert "This answer" not in summary


def test_ratings_from_upstream_are_escaped_and_bounded():
    hostile = [
        {"category": "<script>alert(1)</script>", "probability": "<img src=x onerror=alert(2)>"},
        "not a rating",
        {"probability": "HIGH"},  # no category: skipped
        *({"category": "HARM_CATEGORY_HARASSMENT", "probability": "LOW"} for _ in range(40)),
    ]
    parsed = render(
        ended(
            "SAFETY",
            content="",
            provider_extras={
                "safety_ratings": hostile,
                "prompt_feedback": {"blockReason": "<svg onload=alert(3)>"},
            },
        )
    )
    assert {tag for tag, _ in parsed.tags} <= {
        "article", "div", "p", "details", "summary", "ul", "li", "strong", "footer", "span",
        "button",
    }  # fmt: skip
    text = parsed.text("msg-safety")
    assert "<script>alert(1)</script>: <img src=x onerror=alert(2)> probability" in text
    assert "(<svg onload=alert(3)>)" in text
    # The first 24 items are read, whatever they hold.
    assert text.count("Harassment: low probability") == 21


@pytest.mark.parametrize("extras", [{}, {"gemini": {"parts": []}}, {"safety_ratings": "junk"}])
def test_no_ratings_no_disclosure(extras):
    parsed = render(ended("STOP", content="Hi", provider_extras=extras))
    assert "msg-safety" not in parsed.by_class


def test_a_finished_answers_html_sits_in_a_container_htmx_ignores():
    """docs/SECURITY.md rule 3: whatever the sanitiser let through, htmx processes nothing in
    an answer's body (hx-disable on its container)."""
    html = render_to_string(
        "chatapp/_message.html", {"message": ended("STOP", content="**Hi**"), "is_last": True}
    )
    body = Text(html)
    container = next(attrs for tag, attrs in body.tags if "msg-body" in (attrs.get("class") or ""))
    assert "hx-disable" in container
    assert body.text("msg-body") == "Hi"


# --- Structured output ------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def as_json(content: str, schema: dict[str, Any] | None = None) -> Message:
    options: dict[str, Any] = {"response_format": "json_schema" if schema else "json"}
    if schema:
        options["json_schema"] = schema
    return answer(content=content, finish_reason="stop", request_options=options)


def test_a_json_answer_is_shown_formatted_collapsible_with_its_badge_and_copy_button():
    parsed = render(as_json('{"n":1}', SCHEMA))
    assert parsed.text("json-badge") == "Matches the schema"
    assert "json-ok" in parsed.by_class
    assert ("details", {"open": None}) in parsed.tags
    assert parsed.text("json-code").startswith("Copy JSON")
    assert '"n": 1' in parsed.text("json-code")
    assert "msg-body" not in parsed.by_class  # not also as markdown


def test_a_json_answer_that_breaks_its_schema_says_where():
    parsed = render(as_json('{"n": "one"}', SCHEMA))
    assert parsed.text("json-badge") == (
        "Does not match the schema at n: 'one' is not of type 'integer'"
    )
    assert "json-bad" in parsed.by_class


def test_an_answer_asked_for_as_json_that_is_not_json_is_shown_as_text_and_said_so():
    parsed = render(as_json("Sure! Here it is: {n: 1}"))
    assert parsed.text("json-badge").startswith("Not valid JSON:")
    assert "Sure! Here it is" in parsed.text("msg-body")


def test_an_answer_asked_for_as_text_has_no_json_badge():
    parsed = render(answer(content='{"n": 1}', finish_reason="stop"))
    assert "json-badge" not in parsed.by_class


# --- Candidates and token probabilities --------------------------------------------------------


def test_each_candidate_says_which_it_is_and_where_its_usage_was_counted():
    first = render(answer(content="A", provider_extras={"candidate": {"index": 0, "of": 2}}))
    assert first.text("meta-candidate") == "candidate 1 of 2 · usage for all 2"
    second = render(answer(content="B", provider_extras={"candidate": {"index": 1, "of": 2}}))
    assert second.text("meta-candidate") == "candidate 2 of 2 · usage counted on candidate 1"
    odd = render(answer(content="C", provider_extras={"candidate": {"index": 5, "of": 2}}))
    assert "meta-candidate" not in odd.by_class


def test_token_probabilities_are_a_closed_disclosure_of_escaped_tokens():
    stored = {
        "tokens": [["<b>", -0.105, [["Hello", -2.3]]], [" ", 0.0, []]],
        "dropped": 3,
    }
    parsed = render(answer(content="<b> ", provider_extras={"logprobs": stored}))
    assert ("details", {"class": "msg-logprobs"}) in parsed.tags
    assert parsed.text("logprobs-note").startswith("2 tokens shown, 3 more not kept")
    assert parsed.text("logprobs-list") == "<b> 90.0% Hello 10.0% ␣ 100%"
    assert ("b", {}) not in parsed.tags  # the token is text, never markup


def test_an_answer_without_token_probabilities_has_no_such_section():
    assert "msg-logprobs" not in render(answer(content="x", finish_reason="stop")).by_class


def test_the_line_under_an_answer_is_a_span_per_figure_with_the_upstreams_words_escaped():
    message = answer(
        content="A",
        model_reported='gemini<script>alert(1)</script>&"x"',
        prompt_tokens=1200,
        completion_tokens=30,
        ttft_ms=250,
        duration_ms=1500,
        finish_reason="stop",
    )
    html = render_to_string("chatapp/_message.html", {"message": message, "is_last": True})
    meta = html.split('<p class="msg-meta">')[1].split("</p>")[0]
    assert meta == (
        '<span class="meta-model">Google · '
        "gemini&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x&quot;</span>"
        '<span class="meta-tokens">1,200 in / 30 out tokens</span>'
        '<span class="meta-ttft">first token 0.25 s</span>'
        '<span class="meta-duration">1.50 s</span>'
        '<span class="meta-finish">finished</span>'
    )


def test_versions_are_shown_only_for_a_message_that_has_siblings():
    alone = answer(content="A")
    alone.versions = None
    assert "versions" not in render_to_string(
        "chatapp/_message.html", {"message": alone, "is_last": True}
    )
    second = answer(content="B")
    second.versions = Versions(2, 3, uuid.uuid4(), None)
    parsed = render(second)
    assert parsed.text("version-count") == "2 / 3"
    assert ("button", "disabled") in [(tag, name) for tag, attrs in parsed.tags for name in attrs]
