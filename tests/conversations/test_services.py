"""Conversation writes and settings (chatapp/conversations/services.py, chat_settings.py,
titles.py), called directly: a settings update saves exactly its four columns; pinning; a
deletion refused while an answer is written, taking along the images only it used; settings
validated with every limit and the model named, and stored settings checked again; and the
title edge cases tests/web/test_views.py does not cover."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from chatapp.attachments.services import attachment_create
from chatapp.conversations.chat_settings import (
    ChatSettings,
    chat_settings_stored,
    chat_settings_validate,
)
from chatapp.conversations.services import (
    conversation_delete,
    conversation_pin,
    conversation_settings_update,
)
from chatapp.conversations.titles import plain_title, title_from_text
from chatapp.core.errors import InvalidSettings, TurnConflict
from chatapp.models import Attachment, Conversation, Message, MessageAttachment
from chatapp.providers import catalog
from tests import imagegen
from tests.conftest import add_message

pytestmark = pytest.mark.django_db

FLASH = "aimlapi:google/gemini-2.5-flash"
LEGACY = "aimlapi:gemini-1.5-pro"


def make_conversation(owner, **fields) -> Conversation:
    fields = {"route": "aimlapi", "model": "google/gemini-2.5-flash", "title": "T", **fields}
    return Conversation.objects.create(owner=owner, **fields)


def create_attachment(owner, data: bytes) -> Attachment:
    upload = SimpleUploadedFile("x.jpg", data, content_type="image/jpeg")
    return attachment_create(owner=owner, upload=upload)


def send_with_images(conversation: Conversation, attachments: list[Attachment]) -> Message:
    message = add_message(conversation, role="user", content="q")
    MessageAttachment.objects.bulk_create(
        MessageAttachment(message=message, attachment=attachment, position=position)
        for position, attachment in enumerate(attachments)
    )
    return message


def stored_files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in Path(root).rglob("*") if path.is_file()}


# --- Settings, pin -----------------------------------------------------------------------------


def test_a_settings_update_saves_exactly_the_settings_columns(user, aimlapi):
    conversation = make_conversation(user, updated_at=timezone.now())
    elsewhere = Conversation.objects.get(pk=conversation.pk)
    elsewhere.title = "Renamed meanwhile"
    elsewhere.pinned = True
    elsewhere.save()
    conversation.title = "not to be saved"
    chat_settings = ChatSettings(
        spec=catalog.get_model_by_key(LEGACY), system_prompt="Be brief.", options={"top_p": 0.5}
    )

    returned = conversation_settings_update(conversation=conversation, chat_settings=chat_settings)

    assert returned is conversation
    saved = Conversation.objects.get(pk=conversation.pk)
    assert (saved.route, saved.model, saved.system_prompt, saved.settings) == (
        "aimlapi",
        "gemini-1.5-pro",
        "Be brief.",
        {"top_p": 0.5},
    )
    # Nothing else was written: the change made meanwhile stands, activity did not move.
    assert (saved.title, saved.pinned) == ("Renamed meanwhile", True)
    assert saved.updated_at == elsewhere.updated_at


def test_pinning_and_unpinning_saves_the_pin_only(user):
    earlier = timezone.now() - timedelta(days=3)
    conversation = make_conversation(user, updated_at=earlier)
    conversation.title = "not to be saved"
    assert conversation_pin(conversation=conversation, pinned=True) is conversation
    saved = Conversation.objects.get(pk=conversation.pk)
    assert saved.pinned
    assert saved.title == "T"
    assert saved.updated_at == earlier  # pinning does not move it to the top of the sidebar
    conversation_pin(conversation=conversation, pinned=False)
    assert not Conversation.objects.get(pk=conversation.pk).pinned


# --- Deletion ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", Message.ACTIVE_STATUSES)
def test_a_conversation_cannot_be_deleted_while_an_answer_is_written(user, status):
    conversation = make_conversation(user)
    add_message(conversation, role="user", content="q")
    add_message(conversation, role="assistant", status=status)
    with pytest.raises(TurnConflict) as caught:
        conversation_delete(conversation=conversation)
    assert caught.value.status == 409
    assert "Press Stop first" in caught.value.message
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_deleting_a_conversation_deletes_its_messages_only(user):
    doomed, kept = make_conversation(user), make_conversation(user)
    for conversation in (doomed, kept):
        add_message(conversation, role="user", content="q")
        add_message(conversation, role="assistant", content="a")
    conversation_delete(conversation=doomed)
    assert not Conversation.objects.filter(pk=doomed.pk).exists()
    assert set(Message.objects.values_list("conversation_id", flat=True)) == {kept.pk}


def test_deleting_keeps_an_image_also_sent_elsewhere_and_deletes_the_others(
    user, media_root, django_capture_on_commit_callbacks
):
    doomed, other = make_conversation(user), make_conversation(user)
    only_here = create_attachment(user, imagegen.jpeg(40, 30))
    in_both = create_attachment(user, imagegen.jpeg(50, 30))
    never_sent = create_attachment(user, imagegen.jpeg(60, 30))
    send_with_images(doomed, [only_here, in_both])
    send_with_images(doomed, [only_here])  # the same image twice in one conversation
    send_with_images(other, [in_both])

    with django_capture_on_commit_callbacks(execute=True):
        conversation_delete(conversation=doomed)

    assert set(Attachment.objects.values_list("pk", flat=True)) == {in_both.pk, never_sent.pk}
    assert stored_files(media_root) == {
        in_both.file_name,
        in_both.thumbnail_name,
        never_sent.file_name,
        never_sent.thumbnail_name,
    }
    assert list(MessageAttachment.objects.values_list("attachment_id", flat=True)) == [in_both.pk]


# --- chat_settings_validate -------------------------------------------------------------------


def test_valid_settings_come_back_typed():
    spec = catalog.CATALOG["aimlapi"][0]
    chat_settings = chat_settings_validate(
        spec=spec, system_prompt="Be brief.", raw_options={"temperature": "0.5", "top_p": ""}
    )
    assert chat_settings == ChatSettings(
        spec=spec, system_prompt="Be brief.", options={"temperature": 0.5}
    )


def test_a_model_not_offered_is_invalid_with_a_model_error():
    with pytest.raises(InvalidSettings) as caught:
        chat_settings_validate(spec=None, system_prompt="", raw_options={})
    assert caught.value.status == 400
    assert set(caught.value.errors) == {"model"}
    assert "not available" in caught.value.errors["model"]


def test_a_system_prompt_over_the_limit_names_the_limit(settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "system_prompt_chars": 1_000}
    spec = catalog.CATALOG["aimlapi"][0]
    assert chat_settings_validate(spec=spec, system_prompt="x" * 1_000, raw_options={})
    with pytest.raises(InvalidSettings) as caught:
        chat_settings_validate(spec=spec, system_prompt="x" * 1_001, raw_options={})
    assert caught.value.errors == {
        "system_prompt": "The system prompt is 1,001 characters; the limit is 1,000."
    }


def test_an_option_out_of_range_names_the_limit_and_the_model():
    spec = next(s for s in catalog.CATALOG["aimlapi"] if s.id == "gemini-1.5-pro")
    with pytest.raises(InvalidSettings) as caught:
        chat_settings_validate(spec=spec, system_prompt="", raw_options={"top_p": "0.05"})
    assert caught.value.errors == {
        "top_p": "Top P must be 0.1–1 for Gemini 1.5 Pro on AI/ML API (got 0.05)."
    }


def test_every_error_is_reported_at_once(settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "system_prompt_chars": 3}
    spec = catalog.CATALOG["aimlapi"][0]
    with pytest.raises(InvalidSettings) as caught:
        chat_settings_validate(
            spec=spec, system_prompt="long", raw_options={"temperature": "9", "top_k": "x"}
        )
    assert set(caught.value.errors) == {"system_prompt", "temperature", "top_k"}
    assert caught.value.errors["top_k"] == "Top K must be a whole number (got 'x')."


def test_a_value_the_model_does_not_take_is_set_aside_kept_and_never_sent(all_routes):
    spec = catalog.get_model_by_key("segmind:gemini-2.5-flash")
    chosen = chat_settings_validate(
        spec=spec,
        system_prompt="",
        raw_options={"temperature": "0.5", "top_k": "40", "response_format": "json"},
    )
    assert chosen.options == {"temperature": 0.5, "response_format": "json"}
    assert chosen.set_aside == {"top_k": 40}  # Segmind does not take Top K; Google does
    assert chosen.stored == {"temperature": 0.5, "top_k": 40, "response_format": "json"}


# --- chat_settings_stored ---------------------------------------------------------------------


def test_stored_settings_are_validated_again_and_come_back_typed(user, aimlapi):
    conversation = make_conversation(
        user, system_prompt="Be brief.", settings={"temperature": 0.5, "stop": ["END"]}
    )
    assert chat_settings_stored(conversation=conversation) == ChatSettings(
        spec=catalog.get_model_by_key(FLASH),
        system_prompt="Be brief.",
        options={"temperature": 0.5, "stop": ["END"]},
    )


def test_stored_settings_the_model_no_longer_accepts_are_invalid(user, aimlapi):
    conversation = make_conversation(user, model="gemini-1.5-pro", settings={"top_p": 0.05})
    with pytest.raises(InvalidSettings) as caught:
        chat_settings_stored(conversation=conversation)
    assert caught.value.errors == {
        "top_p": "Top P must be 0.1–1 for Gemini 1.5 Pro on AI/ML API (got 0.05)."
    }


@pytest.mark.parametrize(
    ("route", "model"),
    [("aimlapi", "google/gemini-0.9-retired"), ("gemini", "gemini-2.5-flash")],
    ids=["model-left-the-catalog", "route-not-configured"],
)
def test_a_stored_model_no_longer_offered_is_invalid_and_named(user, aimlapi, route, model):
    conversation = make_conversation(user, route=route, model=model)
    with pytest.raises(InvalidSettings) as caught:
        chat_settings_stored(conversation=conversation)
    assert f"({model})" in caught.value.message
    assert "choose another in Settings" in caught.value.message
    assert set(caught.value.errors) == {"model"}


# --- Titles (what tests/web/test_views.py does not cover) -------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "title"),
    [
        ("alpha beta gamma", 12, "alpha beta…"),  # cut at a word boundary
        ("alpha beta", 10, "alpha beta"),  # exactly the limit: not cut
        ("x" * 100, 80, "x" * 80 + "…"),  # one long word: cut at the limit
        ("Hello, world, again", 14, "Hello, world…"),  # no punctuation before the ellipsis
        ("word " * 30, 80, " ".join(["word"] * 16) + "…"),  # the default limit
    ],
)
def test_long_titles_are_cut_at_a_word_boundary_with_an_ellipsis(text, limit, title):
    assert title_from_text(text, limit=limit) == title


def test_a_title_is_never_longer_than_its_limit_and_the_ellipsis():
    text = " ".join(f"w{i:02d}" * (i % 7 + 1) for i in range(60))
    for limit in (5, 17, 40, 80):
        assert len(title_from_text(text, limit=limit)) <= limit + 1


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("\n\n   \n\tFirst words", "First words"),  # blank lines skipped
        ("  many   spaces\tand tabs ", "many spaces and tabs"),  # whitespace collapsed
        ("![](diagram.png)\nWhat is this?", "What is this?"),  # an image alone has no words
        ("[](https://example.com)\n\n## Heading", "Heading"),
        ("> - 1. deep item", "deep item"),  # prefixes stacked
        ("* star item", "star item"),
        ("+ plus item", "plus item"),
        ("~~~\ncode\n~~~\nQuestion", "Question"),  # tilde fences
        ("```\nfirst   code   line\nsecond", "first code line"),  # an unclosed fence
        ("```\n\n```", "New chat"),  # an empty fence has no words either
        ("**unpaired bold", "**unpaired bold"),  # a lone marker is not markup
    ],
)
def test_title_edge_cases(text, title):
    assert title_from_text(text) == title


@pytest.mark.parametrize("marker", ["#", "##", "-", "*", "1."])
def test_an_empty_heading_or_list_item_is_skipped_like_an_empty_quote(marker):
    assert title_from_text("> \nok") == "ok"  # an empty quote is skipped
    assert title_from_text(f"{marker} \nok") == "ok"


@pytest.mark.parametrize("rule", ["---", "***", "___"])
def test_a_thematic_break_is_not_a_title(rule):
    assert title_from_text(f"{rule}\nok") == "ok"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("\u202eevil.exe\u202c is here", "evil.exe is here"),  # a right-to-left override
        ("a\u2066b\u2069c\u200fd", "abcd"),  # isolates and marks
        ("zero\u200bwidth", "zerowidth"),
        (
            "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
            "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
        ),
        ("tab\there", "tab here"),
    ],
)
def test_titles_keep_only_visible_text(text, title):
    assert title_from_text(text) == title


@given(st.text())
def test_a_plain_title_drops_every_control_and_format_character_but_the_joiner(text):
    kept = "".join(
        ch for ch in text if ch == "\u200d" or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    assert plain_title(text) == " ".join(kept.split())
