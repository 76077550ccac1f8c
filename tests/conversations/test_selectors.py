"""Conversation reads (chatapp/conversations/selectors.py), called directly: one 404 for a
conversation or message that is missing or someone else's; the sidebar's keyset pages (pinned
first on the first page only, by last activity then id, the owner's rows only, a bad cursor is
a 404); the thread's pages (the branch shown, newest messages oldest first, versions,
`is_last`, older cursors, images prefetched in a fixed number of queries); and the settings a
new chat starts from."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from chatapp.conversations.selectors import (
    chat_settings_initial,
    conversation_for_owner,
    message_for_owner,
    preset_for_owner,
    presets_for,
    sidebar_page,
    thread_page,
)
from chatapp.models import Conversation, Message, MessageAttachment, Preset
from chatapp.providers import catalog
from tests.conftest import attachment_row

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def make_conversation(owner, **fields) -> Conversation:
    fields = {"route": "aimlapi", "model": "google/gemini-2.5-flash", **fields}
    return Conversation.objects.create(owner=owner, **fields)


def make_messages(conversation: Conversation, count: int, **fields) -> list[Message]:
    """`count` messages a second apart, alternating user and assistant, oldest first, each
    following the one before (one path, ending at the conversation's current leaf)."""
    messages = [
        Message(
            conversation=conversation,
            role="user" if i % 2 == 0 else "assistant",
            content=f"m{i}",
            created_at=NOW + timedelta(seconds=i),
            **fields,
        )
        for i in range(count)
    ]
    for before, after in itertools.pairwise(messages):
        after.parent_id = before.pk
    Message.objects.bulk_create(messages)
    if messages:
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=messages[-1].pk)
        conversation.current_leaf_id = messages[-1].pk
    return messages


def all_sidebar_pages(owner, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = sidebar_page(owner=owner, before=cursor, limit=limit)
        pages.append([c.title for c in page.conversations])
        cursor = page.more_cursor
        if cursor is None:
            return pages


# --- One 404 for missing and someone else's ----------------------------------------------------


def test_conversation_for_owner_returns_the_owners_conversation(user):
    conversation = make_conversation(user)
    assert conversation_for_owner(owner=user, conversation_id=conversation.id) == conversation


def test_someone_elses_conversation_is_the_same_404_as_a_missing_one(user, other_user):
    theirs = make_conversation(other_user)
    with pytest.raises(Http404) as someone_elses:
        conversation_for_owner(owner=user, conversation_id=theirs.id)
    with pytest.raises(Http404) as missing:
        conversation_for_owner(owner=user, conversation_id=uuid.uuid4())
    assert str(someone_elses.value) == str(missing.value)


def test_message_for_owner_returns_the_message_with_its_conversation(
    user, django_assert_num_queries
):
    conversation = make_conversation(user)
    (message,) = make_messages(conversation, 1)
    with django_assert_num_queries(1):
        found = message_for_owner(
            owner=user, conversation_id=conversation.id, message_id=message.id
        )
        assert found.conversation.owner_id == user.pk  # selected along, no second query
    assert found == message


def test_a_message_is_404_when_missing_someone_elses_or_in_another_conversation(user, other_user):
    mine, other_of_mine = make_conversation(user), make_conversation(user)
    theirs = make_conversation(other_user)
    (my_message,) = make_messages(mine, 1)
    (their_message,) = make_messages(theirs, 1)
    attempts = [
        (theirs.id, their_message.id),  # someone else's, asked for by its own conversation
        (mine.id, their_message.id),  # someone else's message under my conversation
        (other_of_mine.id, my_message.id),  # mine, but not in this conversation
        (mine.id, uuid.uuid4()),  # missing
    ]
    messages = set()
    for conversation_id, message_id in attempts:
        with pytest.raises(Http404) as caught:
            message_for_owner(owner=user, conversation_id=conversation_id, message_id=message_id)
        messages.add(str(caught.value))
    assert len(messages) == 1


# --- The sidebar -------------------------------------------------------------------------------


def test_the_sidebar_shows_pinned_first_then_the_rest_by_activity(user):
    for i in range(7):
        make_conversation(
            user, title=f"c{i}", updated_at=NOW - timedelta(minutes=i), pinned=i in (4, 6)
        )
    pages = all_sidebar_pages(user, limit=2)
    assert pages == [["c4", "c6"], ["c0", "c1"], ["c2", "c3"], ["c5"]]


def test_the_sidebar_groups_by_the_persons_days_and_months(user):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Pacific/Auckland")
    today = NOW.astimezone(zone).date()
    ages = {"pinned": 400, "now": 0, "one": 1, "five": 5, "twenty": 20, "old": 45, "older": 46}
    for title, days in ages.items():
        make_conversation(
            user, title=title, pinned=title == "pinned", updated_at=NOW - timedelta(days=days)
        )
    page = sidebar_page(owner=user, zone=zone, today=today)
    month = (NOW - timedelta(days=45)).astimezone(zone).strftime("%B %Y")
    labels = [(g.label, [c.title for c in g.conversations]) for g in page.groups]
    assert labels[:5] == [
        ("Pinned", ["pinned"]),
        ("Today", ["now"]),
        ("Yesterday", ["one"]),
        ("Previous 7 days", ["five"]),
        ("Previous 30 days", ["twenty"]),
    ]
    assert labels[5][0] == month
    assert sum(len(titles) for _, titles in labels[5:]) == 2


def test_archived_conversations_leave_the_sidebar_for_the_archived_list(user):
    make_conversation(user, title="kept")
    make_conversation(user, title="put away", archived=True)
    assert [c.title for c in sidebar_page(owner=user).conversations] == ["kept"]
    assert [c.title for c in sidebar_page(owner=user, archived=True).conversations] == ["put away"]


def test_a_sidebar_page_is_one_query(user, django_assert_num_queries):
    for i in range(5):
        make_conversation(user, title=f"c{i}", pinned=i == 3)
    with django_assert_num_queries(1):
        sidebar_page(owner=user, limit=3)


def test_the_sidebar_pages_cover_every_conversation_once_newest_first(user):
    for i in range(9):
        make_conversation(user, title=f"c{i}", updated_at=NOW - timedelta(minutes=i))
    pages = all_sidebar_pages(user, limit=4)
    assert [len(page) for page in pages] == [4, 4, 1]
    assert [title for page in pages for title in page] == [f"c{i}" for i in range(9)]


def test_the_last_full_sidebar_page_has_no_cursor(user):
    for i in range(4):
        make_conversation(user, title=f"c{i}", updated_at=NOW - timedelta(minutes=i))
    page = sidebar_page(owner=user, limit=4)
    assert len(page.conversations) == 4
    assert page.more_cursor is None


def test_conversations_with_the_same_activity_page_by_id(user):
    same_time = [make_conversation(user, title=f"tie{i}", updated_at=NOW) for i in range(5)]
    make_conversation(user, title="older", updated_at=NOW - timedelta(hours=1))
    pages = all_sidebar_pages(user, limit=2)
    by_id = [c.title for c in sorted(same_time, key=lambda c: c.id, reverse=True)]
    assert [title for page in pages for title in page] == [*by_id, "older"]


def test_the_sidebar_shows_only_the_owners_conversations(user, other_user):
    make_conversation(user, title="mine")
    make_conversation(other_user, title="theirs", pinned=True)
    make_conversation(other_user, title="theirs too", updated_at=NOW + timedelta(hours=1))
    page = sidebar_page(owner=user)
    assert [c.title for c in page.conversations] == ["mine"]
    assert page.more_cursor is None


def test_the_sidebar_loads_only_the_columns_it_shows(user):
    make_conversation(user, title="t", system_prompt="long prompt")
    (conversation,) = sidebar_page(owner=user).conversations
    assert conversation.get_deferred_fields() >= {"system_prompt", "settings", "model"}


def test_every_pinned_conversation_is_reachable_even_with_more_than_a_page(user):
    for i in range(3):
        make_conversation(user, title=f"p{i}", pinned=True, updated_at=NOW - timedelta(minutes=i))
    make_conversation(user, title="u0", updated_at=NOW - timedelta(hours=1))
    seen = [title for page in all_sidebar_pages(user, limit=2) for title in page]
    assert sorted(seen) == ["p0", "p1", "p2", "u0"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "u2024-13-45T00:00:00_" + "0" * 32,
        f"p{NOW.isoformat()}_nothex",
        "u_",
        "px_y_z",
        f"{NOW.isoformat()}_{'0' * 32}",
    ],
    ids=["no-separator", "bad-date", "bad-id", "empty-parts", "two-separators", "no-group"],
)
def test_a_bad_sidebar_cursor_is_a_404(user, cursor):
    with pytest.raises(Http404):
        sidebar_page(owner=user, before=cursor)


# --- The thread --------------------------------------------------------------------------------


def test_a_thread_page_is_the_newest_messages_oldest_first(user):
    conversation = make_conversation(user)
    make_messages(conversation, 7)
    page = thread_page(conversation=conversation, limit=3)
    assert [m.content for m in page.messages] == ["m4", "m5", "m6"]
    assert page.older_cursor is not None


def test_only_the_newest_message_of_the_first_page_is_last(user):
    conversation = make_conversation(user)
    make_messages(conversation, 5)
    first = thread_page(conversation=conversation, limit=2)
    assert [m.is_last for m in first.messages] == [False, True]
    older = thread_page(conversation=conversation, before=first.older_cursor, limit=2)
    assert [m.is_last for m in older.messages] == [False, False]


def test_older_cursors_walk_back_to_the_start_without_gaps_or_repeats(user):
    conversation = make_conversation(user)
    make_messages(conversation, 7)
    page = thread_page(conversation=conversation, limit=3)
    pages = [[m.content for m in page.messages]]
    while page.older_cursor:
        page = thread_page(conversation=conversation, before=page.older_cursor, limit=3)
        pages.insert(0, [m.content for m in page.messages])
    assert pages == [["m0"], ["m1", "m2", "m3"], ["m4", "m5", "m6"]]


def test_a_thread_that_fits_one_page_has_no_older_cursor(user):
    conversation = make_conversation(user)
    make_messages(conversation, 3)
    page = thread_page(conversation=conversation, limit=3)
    assert len(page.messages) == 3
    assert page.older_cursor is None


def test_an_empty_thread_is_an_empty_page(user):
    page = thread_page(conversation=make_conversation(user))
    assert page.messages == []
    assert page.older_cursor is None


def test_the_thread_is_the_branch_shown_and_its_pages_stay_on_it(user):
    conversation = make_conversation(user)
    messages = make_messages(conversation, 6)  # m0 .. m5
    # Another version of m1, with a turn after it: a branch beside m1 .. m5.
    other = [
        Message.objects.create(
            conversation=conversation,
            parent_id=messages[0].pk,
            role="assistant",
            content="m1 again",
            created_at=NOW + timedelta(seconds=10),
        )
    ]
    page = thread_page(conversation=conversation, limit=2)
    assert [m.content for m in page.messages] == ["m4", "m5"]  # the current leaf's branch
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=other[0].pk)
    conversation.refresh_from_db()
    page = thread_page(conversation=conversation, limit=2)
    assert [m.content for m in page.messages] == ["m0", "m1 again"]
    assert page.messages[-1].is_last
    assert page.older_cursor is None


def test_older_pages_follow_the_branch_of_the_page_that_asked_whatever_is_shown_since(user):
    conversation = make_conversation(user)
    messages = make_messages(conversation, 6)
    first = thread_page(conversation=conversation, limit=2)
    fork = Message.objects.create(
        conversation=conversation, parent_id=messages[2].pk, role="assistant", content="fork"
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=fork.pk)
    older = thread_page(conversation=conversation, before=first.older_cursor, limit=2)
    assert [m.content for m in older.messages] == ["m2", "m3"]


def test_versions_say_where_each_message_stands_among_its_siblings(user):
    conversation = make_conversation(user)
    messages = make_messages(conversation, 2)
    later = [
        Message.objects.create(
            conversation=conversation,
            parent_id=messages[0].pk,
            role="assistant",
            content=f"again {i}",
            created_at=NOW + timedelta(seconds=5 + i),
        )
        for i in range(2)
    ]
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=later[0].pk)
    conversation.refresh_from_db()
    question, answer = thread_page(conversation=conversation).messages
    assert question.versions is None  # the first message has no siblings
    assert answer.versions.position == 2
    assert answer.versions.count == 3
    assert (answer.versions.previous_id, answer.versions.next_id) == (messages[1].pk, later[1].pk)


def test_a_branch_pages_by_its_links_not_by_time(user):
    conversation = make_conversation(user)
    chain = make_messages(conversation, 5)
    Message.objects.filter(conversation=conversation).update(created_at=NOW)  # all tied
    page = thread_page(conversation=conversation, limit=2)
    seen = [m.id for m in page.messages]
    while page.older_cursor:
        page = thread_page(conversation=conversation, before=page.older_cursor, limit=2)
        seen = [m.id for m in page.messages] + seen
    assert seen == [m.id for m in chain]


def test_the_thread_shows_only_its_own_conversations_messages(user):
    here, elsewhere = make_conversation(user), make_conversation(user)
    make_messages(here, 2)
    make_messages(elsewhere, 3)
    page = thread_page(conversation=here)
    assert {m.conversation_id for m in page.messages} == {here.id}
    assert len(page.messages) == 2


@pytest.mark.parametrize("count", [1, 6])
def test_a_page_with_images_costs_the_same_queries_however_many_messages(
    user, django_assert_num_queries, count
):
    conversation = make_conversation(user)
    messages = make_messages(conversation, count)
    expected = {}
    for message in messages:
        attachments = [attachment_row(user), attachment_row(user)]
        # Linked in reverse so that the order shown is the positions', not the ids'.
        for position, attachment in reversed(list(enumerate(attachments))):
            MessageAttachment.objects.create(
                message=message, attachment=attachment, position=position
            )
        expected[message.id] = [a.id for a in attachments]
    # The walk up the branch (versions included), every image link with its image.
    with django_assert_num_queries(2):
        page = thread_page(conversation=conversation)
        shown = {m.id: [a.id for a in m.images] for m in page.messages}
    assert shown == expected


@pytest.mark.parametrize(
    "cursor",
    ["nonsense", f"yesterday_{uuid.uuid4().hex}", "_", "0" * 81],
    ids=["not-an-id", "old-style", "empty-parts", "too-long"],
)
def test_a_bad_thread_cursor_is_a_404(user, cursor):
    with pytest.raises(Http404):
        thread_page(conversation=make_conversation(user), before=cursor)


# --- The settings a new chat starts from ------------------------------------------------------


def make_preset(owner, name="", **fields) -> Preset:
    values = {
        "route": "aimlapi",
        "model": "gemini-1.5-flash",
        "system_prompt": "Be brief.",
        "settings": {"temperature": 0.4, "top_p": 0.5},
        **fields,
    }
    return Preset.objects.create(owner=owner, name=name, **values)


def test_a_new_chat_never_inherits_the_latest_conversations_settings(user, all_routes):
    make_conversation(
        user,
        route="gemini",
        model="gemini-3-flash-preview",
        settings={"thinking_level": "high", "response_format": "json"},
        updated_at=NOW,
    )
    assert chat_settings_initial(owner=user) == (catalog.default_model(), "", {})


def test_a_new_chat_starts_from_the_persons_own_defaults(user, all_routes):
    make_preset(user, name=Preset.DEFAULTS)
    make_preset(user, name="Terse", model="gemini-2.5-pro", settings={"temperature": 0.1})
    spec, system_prompt, options = chat_settings_initial(owner=user)
    assert spec is catalog.get_model("aimlapi", "gemini-1.5-flash")
    assert system_prompt == "Be brief."
    assert options == {"temperature": 0.4, "top_p": 0.5}


def test_a_chosen_preset_wins_over_the_defaults(user, all_routes):
    make_preset(user, name=Preset.DEFAULTS)
    terse = make_preset(user, name="Terse", model="google/gemini-2.5-pro", settings={"seed": 3})
    spec, _, options = chat_settings_initial(owner=user, preset_id=terse.id)
    assert (spec.key, options) == ("aimlapi:google/gemini-2.5-pro", {"seed": 3})


def test_someone_elses_preset_is_never_a_starting_point(user, other_user, all_routes):
    theirs = make_preset(other_user, name="Theirs", model="gemini-2.5-pro")
    make_preset(other_user, name=Preset.DEFAULTS, model="gemini-2.5-pro")
    assert chat_settings_initial(owner=user, preset_id=theirs.id) == (
        catalog.default_model(),
        "",
        {},
    )
    assert presets_for(owner=user) == []
    with pytest.raises(Http404):
        preset_for_owner(owner=user, preset_id=theirs.id)


def test_the_initial_settings_are_a_copy_not_the_rows_dict(user, all_routes):
    make_preset(user, settings={"temperature": 0.4})
    _, _, options = chat_settings_initial(owner=user)
    options["temperature"] = 1.9
    _, _, again = chat_settings_initial(owner=user)
    assert again == {"temperature": 0.4}


def test_without_defaults_a_new_chat_starts_from_the_catalog_default(user, all_routes):
    assert chat_settings_initial(owner=user) == (catalog.default_model(), "", {})
    assert catalog.default_model().key == "aimlapi:google/gemini-2.5-flash"


def test_defaults_whose_model_is_no_longer_offered_fall_back_to_the_catalog_default(user, aimlapi):
    make_preset(user, route="gemini", model="gemini-2.5-pro")  # Google is not configured here
    assert chat_settings_initial(owner=user) == (catalog.default_model(), "", {})
    make_preset(user, name="Retired", model="google/gemini-0.9-retired")
    retired = Preset.objects.get(name="Retired")
    assert chat_settings_initial(owner=user, preset_id=retired.id) == (
        catalog.default_model(),
        "",
        {},
    )


def test_named_presets_are_listed_by_name_without_the_defaults(user, all_routes):
    make_preset(user, name=Preset.DEFAULTS)
    make_preset(user, name="b")
    make_preset(user, name="A")
    assert [p.name for p in presets_for(owner=user)] == ["A", "b"]


def test_without_a_configured_route_only_the_offline_demo_is_offered(user, settings):
    settings.PROVIDERS = {"demo": {"BACKEND": "chatapp.providers.demo.DemoProvider"}}
    make_conversation(user)  # an AI/ML API model, not configured here
    spec, _, _ = chat_settings_initial(owner=user)
    assert spec.key == "demo:demo"
