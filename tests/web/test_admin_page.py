"""The Admin page (web/views/people.py): an administrator approves, refuses, disables, enables
and promotes people; to anyone else every admin URL is a 404. Django's admin shows nothing
people wrote."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from chatapp.accounts.models import Membership
from chatapp.models import Attachment, Conversation, Message

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-42!"


@pytest.fixture
def boss() -> User:
    return User.objects.create_superuser(username="boss", password=PASSWORD)


@pytest.fixture
def boss_client(boss: User) -> Client:
    client = Client()
    client.force_login(boss)
    return client


def pending(username: str) -> User:
    person = User.objects.create_user(username=username, password=PASSWORD)
    Membership.objects.create(user=person, status=Membership.Status.PENDING)
    return person


def act(client: Client, person: User, action: str, htmx: bool = True):
    url = reverse("admin-person", args=[person.pk, action])
    return client.post(url, headers={"HX-Request": "true"} if htmx else {})


def logs_in(username: str) -> bool:
    client = Client()
    client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    return client.get("/").status_code == 200


def admin_urls(person: User) -> list[tuple[str, str]]:
    urls = [("get", reverse("admin-home"))]
    for action in ("approve", "refuse", "disable", "enable", "make-admin"):
        urls.append(("post", reverse("admin-person", args=[person.pk, action])))
    return urls


def test_the_page_lists_people_with_those_awaiting_approval_first(boss_client):
    User.objects.create_user(username="aaron", password=PASSWORD)
    pending("zoe")
    html = boss_client.get(reverse("admin-home")).content.decode()
    assert "<caption>People</caption>" in html
    assert html.index("zoe") < html.index("aaron")
    assert "Awaiting approval" in html
    assert ">Approve</button>" in html
    assert ">Refuse</button>" in html


def test_approving_lets_the_person_log_in(boss_client):
    zoe = pending("zoe")
    response = act(boss_client, zoe, "approve")
    assert response.status_code == 200
    assert "<caption>People</caption>" in response.content.decode()
    assert Membership.objects.get(user=zoe).status == Membership.Status.APPROVED
    assert Membership.objects.get(user=zoe).decided_at is not None
    assert logs_in("zoe")


def test_refusing_keeps_the_person_out_and_cannot_be_done_twice(boss_client):
    zoe = pending("zoe")
    assert act(boss_client, zoe, "refuse").status_code == 200
    assert Membership.objects.get(user=zoe).status == Membership.Status.REFUSED
    response = act(boss_client, zoe, "approve")
    assert response.status_code == 400
    assert "zoe is not awaiting approval." in response.content.decode()
    assert Membership.objects.get(user=zoe).status == Membership.Status.REFUSED


def test_disabling_ends_the_persons_session_and_enabling_restores_log_in(boss_client):
    ann = User.objects.create_user(username="ann", password=PASSWORD)
    theirs = Client()
    theirs.force_login(ann)
    assert theirs.get("/").status_code == 200
    assert act(boss_client, ann, "disable").status_code == 200
    assert theirs.get("/").status_code == 302  # signed out at their next request
    assert not logs_in("ann")
    assert act(boss_client, ann, "enable").status_code == 200
    assert logs_in("ann")


def test_an_administrator_cannot_disable_themselves(boss_client, boss):
    response = act(boss_client, boss, "disable")
    assert response.status_code == 400
    assert "You cannot disable your own account." in response.content.decode()
    boss.refresh_from_db()
    assert boss.is_active


def test_making_an_administrator_needs_an_approved_active_account(boss_client):
    ann = User.objects.create_user(username="ann", password=PASSWORD)
    assert act(boss_client, ann, "make-admin").status_code == 200
    ann.refresh_from_db()
    assert ann.is_superuser
    assert ann.is_staff
    zoe = pending("zoe")
    response = act(boss_client, zoe, "make-admin")
    assert response.status_code == 400
    assert "zoe is not approved." in response.content.decode()
    assert not User.objects.get(pk=zoe.pk).is_superuser


def test_a_form_post_without_htmx_comes_back_to_the_page(boss_client):
    zoe = pending("zoe")
    response = act(boss_client, zoe, "approve", htmx=False)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin-home")


@pytest.mark.parametrize("who", ["member", "disabled administrator", "anonymous"])
def test_anyone_but_an_administrator_gets_404_on_every_admin_url(who):
    target = pending("zoe")
    client = Client()
    if who == "member":
        client.force_login(User.objects.create_user(username="mo", password=PASSWORD))
    elif who == "disabled administrator":
        former = User.objects.create_superuser(username="old", password=PASSWORD)
        client.force_login(former)
        User.objects.filter(pk=former.pk).update(is_active=False)
    for method, url in admin_urls(target):
        response = getattr(client, method)(url)
        if who != "member":
            # The log-in page, as for every page: a disabled account's session has ended.
            assert response.status_code == 302
        else:
            assert response.status_code == 404, (method, url)
    assert Membership.objects.get(user=target).status == Membership.Status.PENDING


def test_an_unknown_action_or_person_is_404(boss_client):
    zoe = pending("zoe")
    assert boss_client.post(f"/manage/people/{zoe.pk}/delete/").status_code == 404
    assert boss_client.post("/manage/people/999999/approve/").status_code == 404


def test_the_admin_link_is_shown_to_administrators_only(boss_client):
    assert ">Admin</a>" in boss_client.get("/").content.decode()
    member = Client()
    member.force_login(User.objects.create_user(username="mo", password=PASSWORD))
    assert ">Admin</a>" not in member.get("/").content.decode()


def test_djangos_admin_shows_no_conversation_message_or_image():
    for model in (Conversation, Message, Attachment):
        assert not admin.site.is_registered(model)


def test_the_page_says_which_routes_have_a_key_and_never_shows_a_key(boss_client, settings):
    from chatapp.providers import catalog

    html = boss_client.get(reverse("admin-home")).content.decode()
    assert "<caption>Routes</caption>" in html
    for status in catalog.route_statuses():
        assert status.label in html
    assert any(status.configured for status in catalog.route_statuses())
    for config in settings.PROVIDERS.values():
        key = config["OPTIONS"].get("api_key")
        if key:
            assert key not in html
