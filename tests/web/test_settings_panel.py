"""The settings panel: a control per option kind, only the options the chosen model accepts
(plus any that holds a value it does not), the route and its note, and the autosave that
re-renders the options when the Model changes and otherwise swaps only errors and status."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client
from django.urls import reverse

from chatapp.conversations.chat_settings import chat_settings_stored
from chatapp.models import Conversation, Message
from tests.conftest import wait_for_run
from tests.fakes.gemini_schema import validate_gemini_request
from tests.fakes.upstream import Reply, Text

pytestmark = [pytest.mark.django_db]

AIMLAPI = "aimlapi:google/gemini-2.5-flash"
GOOGLE = "gemini:gemini-2.5-flash"
SEGMIND = "segmind:gemini-2.5-flash"
SAFETY_LABELS = ["Harassment", "Hate speech", "Sexually explicit", "Dangerous content"]


class Controls(HTMLParser):
    """Every form control of a fragment by name, with its label's text, and each element
    with an id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, str] = {}  # control id -> label text
        self.ids: dict[str, dict[str, str | None]] = {}
        self.text_of: dict[str, str] = {}
        self._label: str | None = None
        self._select: dict[str, Any] | None = None
        self._option: dict[str, Any] | None = None
        self._open: list[tuple[str, str]] = []  # (tag, id) of elements with an id
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids[a["id"]] = a
            self.text_of[a["id"]] = ""
            self._open.append((tag, a["id"]))
        if tag == "label":
            self._label = a.get("for")
            self.labels[self._label or ""] = ""
        elif tag in ("input", "textarea") and a.get("name") and a.get("type") != "hidden":
            self.controls[a["name"]] = {"tag": tag, **a}
        elif tag == "select":
            self._select = {"tag": "select", **a, "options": []}
            self.controls[a["name"]] = self._select
        elif tag == "option" and self._select is not None:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "label": ""}
            self._select["options"].append(self._option)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None
        elif tag == "select":
            self._select = None
        elif tag == "option":
            self._option = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self.labels[self._label] += data
        if self._option is not None:
            self._option["label"] += data
        for _, element_id in self._open:
            self.text_of[element_id] += data

    def label_of(self, name: str) -> str:
        return self.labels.get(f"id_{name}", "").strip()

    def text(self, element_id: str) -> str:
        return " ".join(self.text_of.get(element_id, "").split())

    def selected(self, name: str) -> str:
        return next(o["value"] for o in self.controls[name]["options"] if o["selected"])


def params_shown(html: str) -> list[str]:
    """The parameters in the options section, in order (their error spans mark them)."""
    section = html[html.index('id="settings-options"') :]
    names = re.findall(r'id="err-(\w+)"', section)
    return [n for n in names if n not in ("model", "system_prompt")]


def post(client: Client, url: str, data: dict[str, Any], trigger: str | None = None) -> str:
    headers = {"HX-Request": "true"}
    if trigger:
        headers["HX-Trigger-Name"] = trigger
    response = client.post(url, data, headers=headers)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


@pytest.fixture
def conversation(user: Any, all_routes: Any) -> Conversation:
    return Conversation.objects.create(owner=user, route="aimlapi", model="google/gemini-2.5-flash")


def settings_url(conversation: Conversation) -> str:
    return reverse("conversation-settings", args=[conversation.id])


def page(client: Client, conversation: Conversation) -> str:
    response = client.get(reverse("conversation-detail", args=[conversation.id]))
    assert response.status_code == 200
    return response.content.decode()


# --- Which options, which controls ------------------------------------------------------------


def groups_shown(html: str) -> list[str]:
    """The headings of the options section's groups, in order."""
    section = html[html.index('id="settings-options"') :]
    return re.findall(r'class="param-group" role="group" aria-label="([^"]+)"', section)


def test_each_route_shows_the_options_its_model_accepts_in_the_registrys_groups(
    user_client, conversation
):
    html = page(user_client, conversation)
    assert params_shown(html) == [
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "response_format",
        "json_schema",
        "candidate_count",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
        "functions",
        "tool_choice",
        "parallel_tool_calls",
    ]
    assert groups_shown(html) == ["Sampling", "Length", "Output", "Thinking", "Tools"]
    assert "Route: <strong>AI/ML API</strong>" in html

    conversation.route, conversation.model = "gemini", "gemini-2.5-flash"
    conversation.save()
    html = page(user_client, conversation)
    # Each candidate becomes a version of the answer; Google's 2.5 Flash returns logprobs.
    assert params_shown(html) == [
        "temperature",
        "top_p",
        "top_k",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "max_tokens",
        "stop",
        "response_format",
        "json_schema",
        "candidate_count",
        "logprobs",
        "top_logprobs",
        "thinking_budget",
        "google_search",
        "url_context",
        "code_execution",
        "functions",
        "tool_choice",
        "safety_settings",
    ]
    assert groups_shown(html) == ["Sampling", "Length", "Output", "Thinking", "Tools", "Safety"]
    assert "Route: <strong>Google</strong>" in html

    conversation.route, conversation.model = "segmind", "gemini-3-pro"
    conversation.save()
    html = page(user_client, conversation)
    assert params_shown(html) == [
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "max_tokens",
        "stop",
        "response_format",
        "json_schema",
        "candidate_count",
        "thinking_level",
        "functions",
        "tool_choice",
    ]
    assert "Route: <strong>Segmind</strong>. Segmind may ignore these settings" in html


def test_labels_keep_their_accessible_names_and_controls_fit_their_kind(user_client, conversation):
    conversation.route, conversation.model = "gemini", "gemini-3-flash-preview"
    conversation.settings = {"candidate_count": 2}
    conversation.save()
    parsed = Controls(page(user_client, conversation))
    labels = {name: parsed.label_of(name) for name in parsed.controls if name not in ("text", "q")}
    assert labels == {
        "model": "Model",
        "preset_name": "Preset name",
        "system_prompt": "System prompt",
        "temperature": "Temperature",
        "top_p": "Top P",
        "top_k": "Top K",
        "max_tokens": "Max tokens",
        "frequency_penalty": "Frequency penalty",
        "presence_penalty": "Presence penalty",
        "stop": "Stop sequences",
        "seed": "Seed",
        "candidate_count": "Candidates",
        "response_format": "Response format",
        "json_schema": "JSON schema",
        "thinking_level": "Thinking level",
        "google_search": "Google Search",
        "url_context": "URL context",
        "code_execution": "Code execution",
        "functions": "Functions as JSON",
        "tool_choice": "Tool choice",
        "safety_harassment": "Harassment",
        "safety_hate_speech": "Hate speech",
        "safety_sexually_explicit": "Sexually explicit",
        "safety_dangerous_content": "Dangerous content",
    }
    assert [(o["value"], o["label"]) for o in parsed.controls["response_format"]["options"]] == [
        ("", "Text"),
        ("json", "JSON"),
        ("json_schema", "JSON schema"),
    ]
    for tool in ("google_search", "url_context", "code_execution"):
        assert (parsed.controls[tool]["type"], parsed.controls[tool]["role"]) == (
            "checkbox",
            "switch",
        )
    assert parsed.controls["json_schema"]["tag"] == "textarea"
    assert parsed.controls["stop"]["tag"] == "textarea"
    assert parsed.controls["top_k"]["inputmode"] == "numeric"
    level = parsed.controls["thinking_level"]
    assert [(o["value"], o["label"]) for o in level["options"]] == [
        ("", "Model default"),
        ("MINIMAL", "Minimal"),
        ("LOW", "Low"),
        ("MEDIUM", "Medium"),
        ("HIGH", "High"),
    ]
    harassment = parsed.controls["safety_harassment"]["options"]
    assert [o["value"] for o in harassment] == [
        "",
        "BLOCK_LOW_AND_ABOVE",
        "BLOCK_MEDIUM_AND_ABOVE",
        "BLOCK_ONLY_HIGH",
        "BLOCK_NONE",
        "OFF",
    ]
    assert harassment[0]["label"] == "Google's default"
    # The candidate count says its range and what each candidate becomes.
    assert parsed.text("hint-candidate_count") == (
        "1–4; each one a version of the answer (1 / 2 ...), all billed"
    )


def test_thinking_budget_takes_minus_one_so_it_is_not_a_numeric_keypad(user_client, conversation):
    conversation.route, conversation.model = "gemini", "gemini-2.5-pro"
    conversation.save()
    parsed = Controls(page(user_client, conversation))
    assert parsed.controls["thinking_budget"]["inputmode"] == "text"
    assert parsed.text("hint-thinking_budget") == "128–32768 or -1 (dynamic)"


def test_models_are_grouped_by_route_when_their_keys_are_set(user_client, conversation):
    html = page(user_client, conversation)
    groups = re.findall(r'<optgroup label="([^"]+)">', html)
    assert groups == ["AI/ML API", "Google", "Segmind"]
    assert f'<option value="{SEGMIND}"' in html
    assert '<option value="gemini:gemini-3.1-pro-preview"' in html


# --- Autosave: a new model re-renders, other fields swap errors in place ---------------------


def test_a_new_model_re_renders_the_options_section(user_client, conversation):
    html = post(
        user_client,
        settings_url(conversation),
        {"model": GOOGLE, "options_for": AIMLAPI, "temperature": "0.3"},
        trigger="model",
    )
    assert 'id="settings-options" class="settings-options" hx-swap-oob="true"' in html
    assert "Route: <strong>Google</strong>" in html
    assert 'name="options_for" value="gemini:gemini-2.5-flash"' in html
    parsed = Controls(html)
    assert parsed.label_of("top_k") == "Top K"
    assert [parsed.label_of(f"safety_{c}") for c in SAFETY_FIELD_SUFFIXES] == SAFETY_LABELS
    assert parsed.controls["temperature"]["value"] == "0.3"  # what was typed stays
    assert "Saved." in parsed.text("settings-status")
    conversation.refresh_from_db()
    assert (conversation.route, conversation.model) == ("gemini", "gemini-2.5-flash")


SAFETY_FIELD_SUFFIXES = ["harassment", "hate_speech", "sexually_explicit", "dangerous_content"]


def test_other_fields_only_swap_errors_hints_and_status(user_client, conversation):
    html = post(
        user_client,
        settings_url(conversation),
        {"model": AIMLAPI, "options_for": AIMLAPI, "temperature": "3"},
        trigger="temperature",
    )
    assert 'id="settings-options"' not in html
    # Nothing under the cursor moves.
    assert "<input" not in html
    assert "<select" not in html
    parsed = Controls(html)
    assert parsed.ids["err-temperature"]["hx-swap-oob"] == "true"
    assert "Temperature must be 0–2" in parsed.text("err-temperature")
    assert parsed.text("settings-status") == "Not saved: fix the fields marked."
    # Only fields on the page are swapped: none of the Google-only ones.
    assert "err-top_k" not in parsed.ids


def test_a_model_change_folded_into_a_later_change_still_re_renders(user_client, conversation):
    """The trigger's delay keeps only the last change: the section's `options_for` shows
    that the page still has another model's options."""
    html = post(
        user_client,
        settings_url(conversation),
        {"model": SEGMIND, "options_for": AIMLAPI, "temperature": "1"},
        trigger="temperature",
    )
    assert 'id="settings-options" class="settings-options" hx-swap-oob="true"' in html
    assert "Segmind may ignore these settings" in html


def test_a_google_only_option_on_an_aimlapi_model_is_set_aside_and_the_switch_saved(
    user_client, conversation
):
    # Chosen on Google, then the model changes to AI/ML API: Top K is kept,
    # named as not sent, one click from Google again; nothing blocks the switch.
    html = post(
        user_client,
        settings_url(conversation),
        {"model": AIMLAPI, "options_for": GOOGLE, "top_k": "20"},
        trigger="model",
    )
    parsed = Controls(html)
    notice = parsed.text("set-aside")
    assert notice.startswith("Not sent to Gemini 2.5 Flash on AI/ML API: Top K 20 · Restore")
    assert 'data-restore="' + GOOGLE + '"' in html
    assert "top_k" not in parsed.controls or parsed.controls["top_k"].get("type") == "hidden"
    assert 'type="hidden" name="top_k" value="20"' in html
    assert parsed.text("settings-status") == "Saved."
    conversation.refresh_from_db()
    assert (conversation.route, conversation.model) == ("aimlapi", "google/gemini-2.5-flash")
    assert conversation.settings == {"top_k": 20}  # kept, not sent
    stored = chat_settings_stored(conversation=conversation)
    assert stored.options == {}
    assert stored.set_aside == {"top_k": 20}

    # Discarded (the notice gone, so the fields are not posted), they are saved without them.
    html = post(user_client, settings_url(conversation), {"model": AIMLAPI, "options_for": AIMLAPI})
    assert Controls(html).text("settings-status") == "Saved."
    conversation.refresh_from_db()
    assert conversation.settings == {}


def test_a_stored_value_the_model_does_not_accept_is_shown_as_set_aside(user_client, conversation):
    conversation.settings = {"top_k": 20, "thinking_level": "MINIMAL"}
    conversation.save()
    page_html = page(user_client, conversation)
    parsed = Controls(page_html)
    notice = parsed.text("set-aside")
    assert "Not sent to Gemini 2.5 Flash on AI/ML API" in notice
    assert "Top K 20" in notice
    assert "Thinking level MINIMAL" in notice
    assert "Restore" not in notice  # which model they came from is not known here
    assert "Discard" in notice


def test_a_thinking_level_the_model_lacks_stays_selected_with_its_error(user_client, conversation):
    html = post(
        user_client,
        settings_url(conversation),
        {"model": "gemini:gemini-3.1-pro-preview", "thinking_level": "MINIMAL"},
        trigger="model",
    )
    parsed = Controls(html)
    options = parsed.controls["thinking_level"]["options"]
    assert [o["value"] for o in options] == ["", "LOW", "HIGH", "MINIMAL"]
    assert parsed.selected("thinking_level") == "MINIMAL"
    assert "Thinking level must be low or high" in parsed.text("err-thinking_level")


def test_safety_selects_combine_into_the_saved_safety_settings(user_client, conversation):
    html = post(
        user_client,
        settings_url(conversation),
        {
            "model": GOOGLE,
            "options_for": GOOGLE,
            "safety_harassment": "BLOCK_NONE",
            "safety_hate_speech": "",
            "safety_sexually_explicit": "",
            "safety_dangerous_content": "BLOCK_ONLY_HIGH",
        },
        trigger="safety_harassment",
    )
    assert "Saved." in html
    conversation.refresh_from_db()
    assert conversation.settings == {
        "safety_settings": {
            "HARM_CATEGORY_HARASSMENT": "BLOCK_NONE",
            "HARM_CATEGORY_DANGEROUS_CONTENT": "BLOCK_ONLY_HIGH",
        }
    }
    parsed = Controls(page(user_client, conversation))
    assert parsed.selected("safety_harassment") == "BLOCK_NONE"
    assert parsed.selected("safety_hate_speech") == ""
    assert parsed.selected("safety_dangerous_content") == "BLOCK_ONLY_HIGH"

    # All back to Google's default: nothing is sent.
    post(
        user_client,
        settings_url(conversation),
        {
            "model": GOOGLE,
            "options_for": GOOGLE,
            **{f"safety_{s}": "" for s in SAFETY_FIELD_SUFFIXES},
        },
        trigger="safety_harassment",
    )
    conversation.refresh_from_db()
    assert conversation.settings == {}


def test_a_made_up_threshold_is_refused_by_name(user_client, conversation):
    html = post(
        user_client,
        settings_url(conversation),
        {"model": GOOGLE, "options_for": GOOGLE, "safety_harassment": "BLOCK_EVERYTHING"},
        trigger="safety_harassment",
    )
    parsed = Controls(html)
    assert "the threshold for harassment must be" in parsed.text("err-safety_settings")
    assert "'BLOCK_EVERYTHING'" in parsed.text("err-safety_settings")


def test_safety_settings_on_segmind_are_set_aside_not_dropped(user_client, conversation):
    html = post(
        user_client,
        settings_url(conversation),
        {"model": SEGMIND, "options_for": GOOGLE, "safety_harassment": "BLOCK_NONE"},
        trigger="model",
    )
    parsed = Controls(html)
    assert "Not sent to Gemini 2.5 Flash on Segmind: Safety settings (1 set)" in parsed.text(
        "set-aside"
    )
    assert 'type="hidden" name="safety_harassment" value="BLOCK_NONE"' in html
    conversation.refresh_from_db()
    assert conversation.settings == {"safety_settings": {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"}}


SCHEMA = '{"type": "object", "properties": {"city": {"type": "string"}}}'


def test_the_response_format_and_its_json_schema_are_saved_and_shown_again(
    user_client, conversation
):
    conversation.route, conversation.model = "gemini", "gemini-2.5-flash"
    conversation.save()
    html = post(
        user_client,
        settings_url(conversation),
        {
            "model": GOOGLE,
            "options_for": GOOGLE,
            "response_format": "json_schema",
            "json_schema": SCHEMA,
        },
        trigger="json_schema",
    )
    assert "Saved." in html
    conversation.refresh_from_db()
    assert conversation.settings == {
        "response_format": "json_schema",
        "json_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    parsed = Controls(page(user_client, conversation))
    selected = [
        o["value"] for o in parsed.controls["response_format"]["options"] if o.get("selected")
    ]
    assert selected == ["json_schema"]
    assert "&quot;city&quot;: {" in page(user_client, conversation)  # indented, as written


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"response_format": "json_schema", "json_schema": "{not json"}, "is not valid JSON"),
        (
            {"response_format": "json_schema", "json_schema": '{"type": "nope"}'},
            "is not a valid JSON Schema at type",
        ),
        ({"response_format": "json_schema"}, "Write the json schema the answer must match"),
        ({"response_format": "json", "json_schema": SCHEMA}, "is sent only with the response"),
    ],
)
def test_a_schema_that_cannot_be_sent_is_marked_before_anything_is_saved(
    user_client, conversation, fields, said
):
    conversation.route, conversation.model = "gemini", "gemini-2.5-flash"
    conversation.save()
    html = post(
        user_client,
        settings_url(conversation),
        {"model": GOOGLE, "options_for": GOOGLE, **fields},
        trigger="json_schema",
    )
    assert said in html
    conversation.refresh_from_db()
    assert conversation.settings == {}


def test_the_segmind_note_shows_for_a_new_chat_too(user_client, all_routes):
    html = post(user_client, reverse("settings-check"), {"model": SEGMIND}, trigger="model")
    assert "Route: <strong>Segmind</strong>. Segmind may ignore these settings" in html
    assert "Saved." not in html  # a new chat is saved with its first message
    html = post(user_client, reverse("settings-check"), {"model": GOOGLE}, trigger="model")
    assert "may ignore" not in html


def test_a_refused_send_marks_the_fields_in_the_panel(user_client, all_routes):
    response = user_client.post(
        reverse("turn-create", args=[uuid.uuid4()]),
        {
            "text": "Hi",
            "idempotency_key": str(uuid.uuid4()),
            "model": AIMLAPI,
            "options_for": AIMLAPI,
            "top_p": "5",
            "top_k": "3",  # not taken here: set aside, it does not block the send by itself
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    parsed = Controls(response.content.decode())
    assert "Top P must be 0.01–1" in parsed.text("err-top_p")
    assert parsed.ids["err-top_p"]["hx-swap-oob"] == "true"
    assert Message.objects.count() == 0
    assert all_routes.requests == []


@pytest.mark.django_db(transaction=True)
async def test_the_settings_a_send_carries_are_the_ones_sent(
    async_user_client, all_routes, run_manager
):
    """The composer posts the panel: the safety selects and the checkbox reach the request."""
    all_routes.enqueue(Reply([Text("{}")]))
    response = await async_user_client.post(
        reverse("turn-create", args=[uuid.uuid4()]),
        {
            "text": "Hi",
            "idempotency_key": str(uuid.uuid4()),
            "model": GOOGLE,
            "response_format": "json",
            "safety_hate_speech": "BLOCK_LOW_AND_ABOVE",
            "page": "new",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    conversation = await Conversation.objects.aget()
    assert conversation.settings == {
        "response_format": "json",
        "safety_settings": {"HARM_CATEGORY_HATE_SPEECH": "BLOCK_LOW_AND_ABOVE"},
    }
    answer = await Message.objects.aget(role="assistant")
    await wait_for_run(answer.id)
    sent = all_routes.last_request.json
    validate_gemini_request(sent)
    assert sent["generationConfig"] == {"responseMimeType": "application/json"}
    assert sent["safetySettings"] == [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_LOW_AND_ABOVE"}
    ]


@pytest.fixture
async def async_user_client(user: Any) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


LEGACY = "aimlapi:gemini-1.5-flash"


def test_a_logit_bias_is_a_json_textarea_saved_typed_and_shown_again_as_json(
    user_client, conversation
):
    conversation.route, conversation.model = "aimlapi", "gemini-1.5-flash"
    conversation.save()
    html = post(
        user_client,
        settings_url(conversation),
        {"model": LEGACY, "options_for": LEGACY, "logit_bias": '{"1234": -100, "42": 5}'},
        trigger="logit_bias",
    )
    assert "Saved." in html
    conversation.refresh_from_db()
    assert conversation.settings == {"logit_bias": {"1234": -100, "42": 5}}
    parsed = Controls(page(user_client, conversation))
    assert parsed.controls["logit_bias"]["tag"] == "textarea"
    assert parsed.label_of("logit_bias") == "Logit bias"
    assert "&quot;1234&quot;: -100" in page(user_client, conversation)


def test_a_logit_bias_past_its_limit_is_marked_and_nothing_is_saved(user_client, conversation):
    conversation.route, conversation.model = "aimlapi", "gemini-1.5-flash"
    conversation.save()
    html = post(
        user_client,
        settings_url(conversation),
        {"model": LEGACY, "options_for": LEGACY, "logit_bias": '{"7": 101}'},
        trigger="logit_bias",
    )
    assert "the bias of token 7 must be -100–100 for Gemini 1.5 Flash on AI/ML API" in html
    conversation.refresh_from_db()
    assert conversation.settings == {}


def test_tools_are_switches_other_bools_checkboxes_and_only_a_schema_box_offers_saved_schemas(
    user_client, conversation
):
    conversation.route, conversation.model = "gemini", "gemini-2.5-flash"
    conversation.save()
    html = page(user_client, conversation)
    controls = Controls(html).controls
    for tool in ("google_search", "url_context", "code_execution"):
        assert controls[tool]["role"] == "switch"
    assert controls["logprobs"].get("role") is None  # "Token probabilities", a checkbox
    assert html.count("<summary>Saved schemas</summary>") == 1  # under "JSON schema"

    conversation.route, conversation.model = "aimlapi", "gemini-1.5-flash"
    conversation.save()
    html = page(user_client, conversation)
    assert Controls(html).controls["logit_bias"]["tag"] == "textarea"
    assert "Saved schemas" not in html  # a logit bias is JSON too, but not a schema
