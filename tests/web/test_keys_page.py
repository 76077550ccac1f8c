"""The "Your API keys" page and what a person's own key does: their turns use it in
preference to the server's, it opens routes the server has no key for, and a key the upstream
refuses is marked on the page (docs/SECURITY.md rule 15)."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client
from django.urls import reverse

from chatapp.credentials import services
from chatapp.credentials.models import PersonKey, RouteFailure
from chatapp.models import Message
from tests.conftest import API_KEY, wait_for_run
from tests.fakes.upstream import ErrorReply, Reply

OWN_KEY = "AIzaSy-alice-own-key-0123456789-k9Q2"


@pytest.fixture
def google_by_own_key(settings, aimlapi):
    """The server has only AI/ML API; Google is where the fake upstream serves it, for
    people who bring their own key."""
    settings.ROUTES = {
        **settings.ROUTES,
        "gemini": {**settings.ROUTES["gemini"], "OPTIONS": {"base_url": aimlapi.gemini_base_url}},
    }
    return aimlapi


@pytest.mark.django_db
def test_the_page_has_a_key_field_per_route_and_shows_a_saved_key_by_its_last_four(user_client):
    page = user_client.get(reverse("api-keys")).content.decode()
    for label in ("AI/ML API", "Google", "Segmind"):
        assert f">{label} API key</label>" in page
    assert "Save key" in page
    assert "Remove key" not in page

    saved = user_client.post(
        reverse("api-key-save", args=["gemini"]),
        {"api_key": OWN_KEY},
        headers={"HX-Request": "true"},
    )
    body = saved.content.decode()
    assert saved.status_code == 200
    assert "Saved your Google API key." in body
    assert "…k9Q2" in body
    assert "Remove key" in body
    assert OWN_KEY not in body
    assert OWN_KEY[:-4] not in body
    assert OWN_KEY not in user_client.get(reverse("api-keys")).content.decode()


@pytest.mark.django_db
def test_a_refused_key_is_said_next_to_its_route_and_never_echoed(user_client):
    hostile = "AIza<script>alert(1)</script> with spaces"
    response = user_client.post(
        reverse("api-key-save", args=["gemini"]),
        {"api_key": hostile},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "That is not a Google API key: a key has no spaces" in body
    assert "<script>" not in body
    assert hostile not in body
    assert not PersonKey.objects.exists()


@pytest.mark.django_db
def test_a_key_for_an_unknown_route_is_404_and_get_is_refused(user_client):
    assert (
        user_client.post(reverse("api-key-save", args=["demo"]), {"api_key": "x" * 20}).status_code
        == 404
    )
    assert user_client.get(reverse("api-key-save", args=["gemini"])).status_code == 405


@pytest.mark.django_db
def test_removing_a_key_forgets_it_and_says_so(user, user_client):
    services.key_save(owner_id=user.pk, route="aimlapi", api_key="sk-alice-own-key-5555")
    response = user_client.post(reverse("api-key-remove", args=["aimlapi"]))
    assert response.status_code == 302  # without htmx: back to the page
    assert not PersonKey.objects.exists()
    again = user_client.post(
        reverse("api-key-remove", args=["aimlapi"]), headers={"HX-Request": "true"}
    )
    assert (
        "You had no AI/ML API API key." in again.content.decode()
        or "You had no" in again.content.decode()
    )


@pytest.mark.django_db
def test_each_person_sees_and_changes_only_their_own_keys(user, other_user):
    services.key_save(owner_id=other_user.pk, route="gemini", api_key="AIzaSy-mallory-key-7777")
    client = Client()
    client.force_login(user)
    assert "…7777" not in client.get(reverse("api-keys")).content.decode()
    client.post(reverse("api-key-remove", args=["gemini"]))
    assert PersonKey.objects.filter(owner=other_user).exists()


@pytest.mark.django_db
def test_a_key_opens_its_routes_models_in_the_persons_model_choice_only(
    user, other_user, google_by_own_key
):
    services.key_save(owner_id=user.pk, route="gemini", api_key=OWN_KEY)
    mine, theirs = Client(), Client()
    mine.force_login(user)
    theirs.force_login(other_user)
    assert 'value="gemini:gemini-2.5-flash"' in mine.get(reverse("chat-home")).content.decode()
    assert (
        'value="gemini:gemini-2.5-flash"' not in theirs.get(reverse("chat-home")).content.decode()
    )


async def _send(client: AsyncClient, model: str) -> Message:
    conversation_id = uuid.uuid4()
    response = await client.post(
        reverse("turn-create", args=[conversation_id]),
        {"text": "hi", "idempotency_key": str(uuid.uuid4()), "model": model},
    )
    assert response.status_code == 200, response.content
    message = await Message.objects.aget(conversation_id=conversation_id, role="assistant")
    await wait_for_run(message.id)
    await message.arefresh_from_db()
    return message


async def _client(user) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


@pytest.mark.django_db(transaction=True)
async def test_a_persons_turns_use_their_key_in_preference_to_the_servers(
    aimlapi, run_manager, user, other_user
):
    await sync_to_async(services.key_save)(
        owner_id=user.pk, route="aimlapi", api_key="sk-alice-own-key-5555"
    )
    aimlapi.enqueue(Reply.text("Mine."), Reply.text("Theirs."))
    mine = await _send(await _client(user), "aimlapi:google/gemini-2.5-flash")
    theirs = await _send(await _client(other_user), "aimlapi:google/gemini-2.5-flash")
    assert [r.bearer for r in aimlapi.requests[-2:]] == ["sk-alice-own-key-5555", API_KEY]
    assert (mine.content, theirs.content) == ("Mine.", "Theirs.")
    # Theirs to pay: not counted against a budget for the server's keys (turns/limits.py).
    assert (mine.own_key, theirs.own_key) == (True, False)


@pytest.mark.django_db(transaction=True)
async def test_a_route_the_server_has_no_key_for_answers_with_the_persons_key(
    google_by_own_key, run_manager, user, other_user
):
    await sync_to_async(services.key_save)(owner_id=user.pk, route="gemini", api_key=OWN_KEY)
    google_by_own_key.enqueue(Reply.text("From Google."))
    message = await _send(await _client(user), "gemini:gemini-2.5-flash")
    assert message.status == "complete"
    assert message.content == "From Google."
    assert google_by_own_key.requests[-1].api_key == OWN_KEY
    # Without a key of their own, nobody else can choose that model.
    refused = await (await _client(other_user)).post(
        reverse("turn-create", args=[uuid.uuid4()]),
        {"text": "hi", "idempotency_key": str(uuid.uuid4()), "model": "gemini:gemini-2.5-flash"},
    )
    assert refused.status_code == 400
    assert not await Message.objects.filter(conversation__owner=other_user).aexists()


@pytest.mark.django_db(transaction=True)
async def test_a_key_the_upstream_rejects_is_marked_on_the_page_and_the_answer_says_whose(
    google_by_own_key, run_manager, user
):
    await sync_to_async(services.key_save)(owner_id=user.pk, route="gemini", api_key=OWN_KEY)
    google_by_own_key.enqueue(ErrorReply.unauthorized(f"API key not valid: {OWN_KEY}"))
    client = await _client(user)
    message = await _send(client, "gemini:gemini-2.5-flash")
    assert message.status == "failed"
    assert "Google rejected your own API key" in message.error_message
    page = (await client.get(reverse("api-keys"))).content.decode()
    assert "Rejected by Google on" in page
    assert OWN_KEY not in page
    assert OWN_KEY not in message.error_message
    # An error with a person's key is theirs, not the route's.
    assert not await RouteFailure.objects.aexists()


@pytest.mark.django_db(transaction=True)
async def test_an_error_with_the_servers_key_is_the_routes_last_error(
    aimlapi, run_manager, fast_runs, user
):
    aimlapi.enqueue(*[ErrorReply.internal_error(f"exploded with {API_KEY}")] * 3)
    message = await _send(await _client(user), "aimlapi:google/gemini-2.5-flash")
    assert message.status == "failed"
    failure = await RouteFailure.objects.aget(route="aimlapi")
    assert failure.code == message.error_code
    assert API_KEY not in failure.message


@pytest.mark.django_db(transaction=True)
async def test_a_key_removed_after_the_send_fails_the_answer_saying_so(
    google_by_own_key, run_manager, user, monkeypatch
):
    from chatapp.turns import run

    await sync_to_async(services.key_save)(owner_id=user.pk, route="gemini", api_key=OWN_KEY)
    # The key is read as the run is launched (by the view, or by the run on a database
    # thread): remove it just before.
    read = run.own_key

    def removed_first(**kwargs):
        services.key_remove(owner_id=user.pk, route="gemini")
        return read(**kwargs)

    monkeypatch.setattr(run, "own_key", removed_first)
    message = await _send(await _client(user), "gemini:gemini-2.5-flash")
    assert message.status == "failed"
    assert "There is no Google API key to send this with any more" in message.error_message
    assert not google_by_own_key.requests
