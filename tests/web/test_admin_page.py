"""The Admin page (web/views/people.py): an administrator approves, refuses, disables (which
stops the person's answers being written), enables and promotes people, and sets each one's
monthly budget beside what they used this month; the routes show their last error; to anyone
else every admin URL is a 404. Django's admin shows nothing people wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from chatapp.accounts.models import BudgetUnit, Membership
from chatapp.credentials.models import RouteFailure
from chatapp.models import Attachment, Conversation, Message
from tests.conftest import add_message

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
    for action in ("approve", "refuse", "disable", "enable", "make-admin", "budget"):
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
        data = {"monthly_budget": "0", "budget_unit": "usd"} if url.endswith("/budget/") else {}
        response = getattr(client, method)(url, data)
        if who != "member":
            # The log-in page, as for every page: a disabled account's session has ended.
            assert response.status_code == 302
        else:
            assert response.status_code == 404, (method, url)
    assert Membership.objects.get(user=target).status == Membership.Status.PENDING
    assert Membership.objects.get(user=target).monthly_budget is None


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


# --- Monthly budgets ------------------------------------------------------------------------


def set_budget(client: Client, person: User, amount: str, unit: str = "usd", htmx: bool = True):
    url = reverse("admin-person", args=[person.pk, "budget"])
    data = {"monthly_budget": amount, "budget_unit": unit}
    return client.post(url, data, headers={"HX-Request": "true"} if htmx else {})


def spent_this_month(person: User, usd: str, credits: str | None = None) -> None:
    chat = Conversation.objects.create(owner=person, route="aimlapi", model="m")
    add_message(chat, role="user", content="q")
    add_message(
        chat,
        role="assistant",
        status="complete",
        usd_spent=Decimal(usd),
        credits_used=None if credits is None else Decimal(credits),
    )


def person_row(html: str, person: User) -> str:
    start = html.index(f'id="person-{person.pk}"')
    return html[start : html.index("</tr>", start)]


def test_a_budget_is_saved_and_shown_with_what_the_person_used_this_month(boss_client):
    ann = User.objects.create_user(username="ann", password=PASSWORD)  # no membership row
    spent_this_month(ann, "1.25", credits="30")
    response = set_budget(boss_client, ann, "5")
    assert response.status_code == 200
    membership = Membership.objects.get(user=ann)
    assert membership.monthly_budget == Decimal("5")
    assert membership.budget_unit == BudgetUnit.USD
    assert membership.status == Membership.Status.APPROVED  # still approved
    row = person_row(response.content.decode(), ann)
    assert "$1.25 of $5.00" in row
    assert 'value="5.00"' in row
    assert ">Save budget</button>" in row

    set_budget(boss_client, ann, "120.5", "credits")
    row = person_row(boss_client.get(reverse("admin-home")).content.decode(), ann)
    assert "30 credits of 120.5 credits" in row
    assert '<option value="credits" selected>' in row


def test_without_a_budget_the_month_shows_dollars_and_any_credits(boss_client):
    ann = User.objects.create_user(username="ann", password=PASSWORD)
    spent_this_month(ann, "0.5", credits="12")
    row = person_row(boss_client.get(reverse("admin-home")).content.decode(), ann)
    assert "$0.50 · 12 credits" in row
    assert 'value=""' in row


def test_an_empty_budget_removes_the_limit(boss_client):
    ann = User.objects.create_user(username="ann", password=PASSWORD)
    set_budget(boss_client, ann, "5")
    assert set_budget(boss_client, ann, "  ").status_code == 200
    assert Membership.objects.get(user=ann).monthly_budget is None


@pytest.mark.parametrize(
    ("amount", "unit", "error"),
    [
        ("-1", "usd", "The monthly budget cannot be negative"),
        ("5.001", "usd", "A monthly budget in dollars has at most 2 decimal places"),
        ("1.00001", "credits", "A monthly budget in credits has at most 4 decimal places"),
        ("1000000001", "usd", "The monthly budget can be at most 1,000,000,000 dollars."),
        ("1e999999999", "credits", "The monthly budget can be at most 1,000,000,000 credits."),
        ("1e-999999999", "usd", "at most 2 decimal places"),
        ("NaN", "usd", "The monthly budget must be a number of dollars"),
        ("-Infinity", "usd", "The monthly budget must be a number of dollars"),
        ("five", "credits", "The monthly budget must be a number of credits"),
        ("5,00", "usd", "The monthly budget must be a number of dollars"),
        ("\x00", "usd", "The monthly budget must be a number of dollars"),
        ("9" * 33, "usd", "The monthly budget is 33 characters long; at most 32."),
        ("5", "euros", "Choose the unit of the budget: US dollars or credits."),
        ("5", "", "Choose the unit of the budget: US dollars or credits."),
    ],
)
def test_a_budget_is_validated_and_the_error_names_the_limit(boss_client, amount, unit, error):
    ann = User.objects.create_user(username="ann", password=PASSWORD)
    response = set_budget(boss_client, ann, amount, unit)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html
    assert error in html
    assert not Membership.objects.filter(user=ann).exists()


def test_a_refused_budget_posted_without_htmx_shows_the_page_with_the_error(boss_client):
    ann = User.objects.create_user(username="ann", password=PASSWORD)
    response = set_budget(boss_client, ann, "-3", htmx=False)
    assert response.status_code == 400
    html = response.content.decode()
    assert "<h1>Admin</h1>" in html
    assert "The monthly budget cannot be negative" in html
    assert set_budget(boss_client, ann, "3", htmx=False).status_code == 302


def test_a_budget_of_zero_is_a_budget(boss_client):
    ann = User.objects.create_user(username="ann", password=PASSWORD)
    assert set_budget(boss_client, ann, "-0").status_code == 200
    assert Membership.objects.get(user=ann).monthly_budget == Decimal(0)


# --- Routes' last errors -------------------------------------------------------------------


def test_each_route_shows_its_last_error_or_none(boss_client, settings):
    from chatapp.providers import catalog

    settings.PROVIDERS = {**settings.PROVIDERS, "gemini": {"OPTIONS": {"api_key": "k"}}}
    RouteFailure.objects.create(
        route="gemini",
        at=datetime(2026, 12, 3, 14, 5, tzinfo=UTC),
        code="quota",
        message="Google refused the request: the quota is used up.",
    )
    html = boss_client.get(reverse("admin-home")).content.decode()
    assert '<th scope="col">Last error</th>' in html
    start = html.index("<caption>Routes</caption>")
    rows = {}
    for status in catalog.route_statuses():
        at = html.index(f'<th scope="row">{status.label}</th>', start)
        rows[status.route] = html[at : html.index("</tr>", at)]
    assert (
        '<time datetime="2026-12-03T14:05:00+00:00">2026-12-03 14:05</time>: Google refused '
        "the request: the quota is used up."
    ) in rows["gemini"]
    assert rows["aimlapi"].endswith("<td>None</td>")


# --- Disabling stops the person's answers ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_disabling_a_person_stops_every_answer_being_written_for_them(
    aimlapi, run_manager, user, cookie
):
    """Against the real run: two answers streaming in two conversations end at once, saved as
    stopped with their text, and their streams end; someone else's goes on."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    from chatapp.turns.selectors import active_answer_ids
    from tests.conftest import open_stream, reload_message, start_turn, wait_for_run
    from tests.fakes.upstream import Gate, Reply, Text

    aimlapi.enqueue(
        Reply([Text("First "), Text("half"), Gate("one"), Text(" never sent")]),
        Reply([Text("Other half"), Gate("two"), Text(" never sent")]),
        Reply([Text("Bystander "), Gate("three"), Text("done.")]),
    )
    first = await start_turn(user, "One")
    stream = open_stream(first.assistant_message.id, cookie=cookie)
    await stream.start()
    await stream.attached()
    await aimlapi.wait_for_gate_async("one")
    second = await start_turn(user, "Two")
    await aimlapi.wait_for_gate_async("two")
    bystander = await sync_to_async(User.objects.create_user)(username="bee", password=PASSWORD)
    third = await start_turn(bystander, "Three")
    await aimlapi.wait_for_gate_async("three")

    boss = await sync_to_async(User.objects.create_superuser)(username="boss", password=PASSWORD)
    client = AsyncClient()
    await sync_to_async(client.force_login)(boss)
    url = reverse("admin-person", args=[user.pk, "disable"])
    response = await client.post(url, headers={"HX-Request": "true"})
    assert response.status_code == 200

    text, terminal = await stream.read_until_terminal()
    assert text == "First half"
    assert terminal.event == "done"
    assert "Stopped" in terminal.data
    await wait_for_run(second.assistant_message.id)
    for turn, content in ((first, "First half"), (second, "Other half")):
        answer = await reload_message(turn.assistant_message.id)
        assert answer.status == Message.Status.STOPPED
        assert answer.content == content
    assert await sync_to_async(active_answer_ids)(owner_id=user.pk) == []
    assert run_manager.is_going(third.assistant_message.id)
    aimlapi.release("three")
    await wait_for_run(third.assistant_message.id)
    assert (await reload_message(third.assistant_message.id)).content == "Bystander done."
