"""The tree's views over HTTP (web/views/messages.py, turns.py): what replaces a message when a
version is shown, a turn deleted or an answer regenerated with a model named in the request;
the whole thread when what follows is longer than a page; refusals in words."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chatapp.conversations.selectors import THREAD_PAGE_SIZE
from chatapp.models import Conversation, Message
from tests.conftest import add_message, add_path

pytestmark = [pytest.mark.django_db]

NOW = timezone.now()


@pytest.fixture
def forked(user):
    """A first answer with two versions: the older with a branch longer than a page after
    it, the newer (shown) with nothing after it."""
    conversation = Conversation.objects.create(
        owner=user, route="aimlapi", model="google/gemini-2.5-flash", title="Forked"
    )
    question = add_message(conversation, role="user", content="q", created_at=NOW)
    old = add_message(conversation, role="assistant", content="old", created_at=NOW)
    add_path(
        conversation,
        [
            Message(
                conversation=conversation,
                role="user" if i % 2 == 0 else "assistant",
                content=f"long {i}",
                created_at=NOW + timedelta(seconds=i + 1),
            )
            for i in range(THREAD_PAGE_SIZE + 10)
        ],
    )
    new = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content="new",
        created_at=NOW + timedelta(hours=1),
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=new)
    return conversation, question, old, new


def test_showing_a_version_answers_with_its_branch_in_place_of_the_old_one(user_client, forked):
    conversation, _, old, new = forked
    url = reverse("message-show", args=[conversation.id, old.id])
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=new)
    # The short branch: the articles themselves.
    response = user_client.post(reverse("message-show", args=[conversation.id, new.id]))
    assert response.status_code == 200
    assert "HX-Retarget" not in response
    assert f'id="m-{new.id}"' in response.content.decode()
    # The long one: the thread's last page in place of all it shows, ending where it ends.
    response = user_client.post(url)
    assert response["HX-Retarget"] == "#thread"
    assert response["HX-Reswap"] == "innerHTML"
    html = response.content.decode()
    assert f"long {THREAD_PAGE_SIZE + 9}" in html
    assert "Load older messages" in html
    assert Conversation.objects.get(pk=conversation.pk).current_leaf.content == (
        f"long {THREAD_PAGE_SIZE + 9}"
    )


def test_deleting_a_turn_shows_the_branch_beside_it_or_the_whole_thread_if_it_is_long(
    user_client, forked
):
    conversation, _, old, _ = forked
    long_first = Message.objects.filter(parent=old).get()  # a user message, a page and more
    short = add_message(
        conversation,
        role="user",
        content="edited",
        parent_id=old.pk,
        created_at=NOW + timedelta(hours=2),
    )
    answer = add_message(
        conversation, role="assistant", content="to the edit", created_at=NOW + timedelta(hours=3)
    )
    assert Conversation.objects.get(pk=conversation.pk).current_leaf_id == answer.pk
    # Deleting the short version: the long one beside it is shown, from its last page.
    response = user_client.post(reverse("turn-delete", args=[conversation.id, short.id]))
    assert response["HX-Retarget"] == "#thread"
    assert f"long {THREAD_PAGE_SIZE + 9}" in response.content.decode()
    # Deleting that one too: nothing is left below the answer; its article is all that goes.
    response = user_client.post(reverse("turn-delete", args=[conversation.id, long_first.id]))
    assert "HX-Retarget" not in response
    assert response.content.decode().strip() == ""
    assert Conversation.objects.get(pk=conversation.pk).current_leaf_id == old.pk


def test_regenerating_with_a_model_that_is_not_offered_is_refused_in_words(user_client, forked):
    conversation, _, _, new = forked
    response = user_client.post(
        reverse("message-regenerate", args=[conversation.id, new.id]),
        {"model": "nowhere:gemini-9"},
    )
    assert response.status_code == 400
    assert "not available on this server" in response.content.decode()
    assert (
        not Message.objects.filter(parent=new.parent_id)
        .exclude(pk__in=[new.pk, forked[2].pk])
        .exists()
    )


def test_an_answer_has_no_edit_form_and_a_bad_edit_form_says_so_in_place(user_client, forked):
    conversation, question, _, new = forked
    response = user_client.get(reverse("message-edit-form", args=[conversation.id, new.id]))
    assert response.status_code == 400
    response = user_client.post(
        reverse("message-edit", args=[conversation.id, question.id]), {"text": "no key"}
    )
    assert response.status_code == 400
    assert response["HX-Retarget"] == f"#m-{question.id} .edit-error"
    assert "form expired" in response.content.decode()


def test_an_edit_that_is_too_long_is_refused_in_its_form_naming_the_limit(
    user_client, forked, settings
):
    conversation, question, _, _ = forked
    limit = settings.CHAT_LIMITS["message_chars"]
    response = user_client.post(
        reverse("message-edit", args=[conversation.id, question.id]),
        {"text": "x" * (limit + 1), "idempotency_key": str(uuid.uuid4())},
    )
    assert response.status_code == 400
    assert f"the limit is {limit:,} characters" in response.content.decode()


# --- Search --------------------------------------------------------------------------------


def test_the_search_view_answers_results_a_message_or_nothing(user_client, user):
    conversation = Conversation.objects.create(
        owner=user, route="aimlapi", model="google/gemini-2.5-flash", title="Findable"
    )
    message = add_message(conversation, role="user", content="a unique keyword here")
    html = user_client.get(reverse("search"), {"q": "keyword"}).content.decode()
    assert f"?m={message.id}&amp;q=keyword" in html
    assert "<mark>keyword</mark>" in html
    assert user_client.get(reverse("search"), {"q": ""}).content.decode().strip() == ""
    refused = user_client.get(reverse("search"), {"q": "x" * 400})
    assert refused.status_code == 200
    assert "search for at most 300" in refused.content.decode()
    odd = user_client.get(reverse("search"), {"q": "keyword", "offset": "-5x"})
    assert odd.status_code == 200


def test_a_hit_on_someone_elses_message_opens_nothing_of_theirs(user_client, other_user, forked):
    conversation, _, old, new = forked
    theirs = Conversation.objects.create(owner=other_user, route="aimlapi", model="m")
    foreign = add_message(theirs, role="user", content="private")
    url = reverse("conversation-detail", args=[conversation.id])
    html = user_client.get(url, {"m": str(foreign.id), "q": "private"}).content.decode()
    assert "private" not in html
    assert 'data-hit="' not in html  # the branch shown, no hit
    # Their own hit, on a version not shown: the page is that branch, the hit marked.
    html = user_client.get(url, {"m": str(old.id), "q": "old"}).content.decode()
    assert f'data-hit="m-{old.id}"' in html
    assert f'id="m-{new.id}"' not in html
    assert "long 59" in html  # down to the newest leaf under the hit
