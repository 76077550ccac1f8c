"""Defaults for new chats and named presets, through the views: set explicitly, never copied
from whichever conversation was last; saved, chosen when starting a chat, saved over, deleted;
each person's own."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from chatapp.conversations.services import PRESETS_PER_PERSON
from chatapp.models import Conversation, Preset
from tests.web.test_settings_panel import Controls

pytestmark = [pytest.mark.django_db]

PRO = "aimlapi:google/gemini-2.5-pro"


def post(client: Client, name: str, data: dict, *args) -> str:
    response = client.post(reverse(name, args=args), data, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


def new_chat(client: Client, **query: str) -> Controls:
    response = client.get(reverse("chat-home"), query)
    assert response.status_code == 200
    return Controls(response.content.decode())


def selected_model(html: str) -> str:
    start = html.index('<select id="id_model"')
    chunk = html[start : html.index("</select>", start)]
    return chunk.split(" selected>")[0].rsplit('value="', 1)[1].split('"')[0]


def test_a_new_chat_starts_from_the_defaults_set_explicitly_not_the_last_chat(
    user_client, user, aimlapi
):
    Conversation.objects.create(
        owner=user, route="aimlapi", model="google/gemini-2.5-pro", settings={"seed": 9}
    )
    page = user_client.get(reverse("chat-home")).content.decode()
    assert selected_model(page) == "aimlapi:google/gemini-2.5-flash"  # nothing inherited
    said = post(
        user_client,
        "settings-default",
        {"model": PRO, "system_prompt": "Be terse.", "temperature": "0.3", "page": "new"},
    )
    assert "New chats will start with Gemini 2.5 Pro on AI/ML API" in said
    page = user_client.get(reverse("chat-home")).content.decode()
    assert selected_model(page) == PRO
    controls = Controls(page).controls
    assert controls["temperature"]["value"] == "0.3"
    assert "Be terse." in page


def test_defaults_with_a_value_out_of_range_are_refused_with_the_fields_error(user_client, aimlapi):
    said = post(user_client, "settings-default", {"model": PRO, "temperature": "9"})
    assert "Fix the settings marked below first." in said
    assert "Temperature must be 0–2 for Gemini 2.5 Pro on AI/ML API" in said
    assert not Preset.objects.exists()


def test_a_preset_is_saved_chosen_saved_over_and_deleted(user_client, user, aimlapi):
    said = post(
        user_client,
        "preset-create",
        {"model": PRO, "preset_name": "  Terse\u200b reviewer ", "seed": "4", "page": "new"},
    )
    preset = Preset.objects.get(owner=user)
    assert preset.name == "Terse reviewer"  # plain text, trimmed
    assert "Saved the preset “Terse reviewer”." in said
    assert 'id="id_preset"' in said  # the new-chat page can now start from it

    page = user_client.get(reverse("chat-home"), {"preset": str(preset.id)}).content.decode()
    assert selected_model(page) == PRO
    assert Controls(page).controls["seed"]["value"] == "4"
    assert Controls(page).controls["preset_name"]["value"] == "Terse reviewer"

    post(user_client, "preset-create", {"model": PRO, "preset_name": "Terse reviewer", "seed": "5"})
    assert Preset.objects.get(owner=user).settings == {"seed": 5}  # the same name saves over it

    said = post(user_client, "preset-delete", {}, preset.id)
    assert "Deleted the preset “Terse reviewer”." in said
    assert not Preset.objects.filter(owner=user).exists()


def test_a_preset_needs_a_name(user_client, aimlapi):
    said = post(user_client, "preset-create", {"model": PRO, "preset_name": " \u200b "})
    assert "Give the preset a name." in said
    assert not Preset.objects.exists()


def test_the_number_of_presets_is_bounded_and_the_limit_named(user_client, user, aimlapi):
    Preset.objects.bulk_create(
        Preset(owner=user, name=f"p{i}", route="aimlapi", model="google/gemini-2.5-pro")
        for i in range(PRESETS_PER_PERSON)
    )
    said = post(user_client, "preset-create", {"model": PRO, "preset_name": "one more"})
    assert f"You have {PRESETS_PER_PERSON} presets, the most one person can keep" in said
    # Saving over one of them, or the defaults, is still fine.
    post(user_client, "preset-create", {"model": PRO, "preset_name": "p1"})
    post(user_client, "settings-default", {"model": PRO})
    assert Preset.objects.filter(owner=user).count() == PRESETS_PER_PERSON + 1


def test_someone_elses_preset_cannot_be_used_or_deleted(user_client, other_user, aimlapi):
    theirs = Preset.objects.create(
        owner=other_user, name="Theirs", route="aimlapi", model="google/gemini-2.5-pro"
    )
    page = user_client.get(reverse("chat-home"), {"preset": str(theirs.id)}).content.decode()
    assert selected_model(page) == "aimlapi:google/gemini-2.5-flash"
    assert "Theirs" not in page
    response = user_client.post(reverse("preset-delete", args=[theirs.id]))
    assert response.status_code == 404
    assert Preset.objects.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize("raw", ["not-a-uuid", "x" * 5000, str(uuid.uuid4())])
def test_a_hostile_preset_parameter_is_ignored(user_client, aimlapi, raw):
    page = user_client.get(reverse("chat-home"), {"preset": raw}).content.decode()
    assert selected_model(page) == "aimlapi:google/gemini-2.5-flash"


def test_a_preset_keeps_its_functions_tool_choice_and_parallel_calls(user_client, user, aimlapi):
    declared = (
        '[{"name": "get_weather", "description": "The weather",'
        ' "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]'
    )
    post(
        user_client,
        "preset-create",
        {
            "model": PRO,
            "preset_name": "Tools",
            "functions": declared,
            "tool_choice": "get_weather",
            "parallel_tool_calls": "on",
            "page": "new",
        },
    )
    preset = Preset.objects.get(owner=user)
    assert preset.settings["functions"][0]["name"] == "get_weather"
    page = user_client.get(reverse("chat-home"), {"preset": str(preset.id)}).content.decode()
    controls = Controls(page).controls
    assert controls["functions"]["tag"] == "textarea"
    assert "&quot;name&quot;: &quot;get_weather&quot;" in page  # the list, as JSON, in its box
    options = controls["tool_choice"]["options"]
    assert [o["value"] for o in options if o["selected"]] == ["get_weather"]
    assert 'aria-label="Remove get_weather"' in page
    assert 'id="id_parallel_tool_calls" name="parallel_tool_calls" value="on" checked' in page
