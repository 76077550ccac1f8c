"""The Usage page (web/views/usage.py): the month chosen, a chart whose text alternative states
the totals, the table, everyone's usage for an administrator only, a clear refusal of a month
it does not offer."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from chatapp.conversations.models import Conversation
from tests.conftest import add_message

pytestmark = pytest.mark.django_db


def answered(owner: User, tokens_in: int, tokens_out: int, credits: str = "0") -> None:
    chat = Conversation.objects.create(
        owner=owner, route="aimlapi", model="google/gemini-2.5-flash"
    )
    add_message(chat, role="user", content="q")
    add_message(
        chat,
        role="assistant",
        content="a",
        route="aimlapi",
        model="google/gemini-2.5-flash",
        prompt_tokens=tokens_in,
        completion_tokens=tokens_out,
        credits_used=Decimal(credits),
    )


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_chart_states_this_months_totals_and_the_table_lists_them(user):
    answered(user, 1200, 300, "0.5")
    answered(user, 34, 5)
    html = client_for(user).get("/usage/").content.decode()
    month = timezone.now().strftime("%B %Y")
    assert 'role="img"' in html
    assert f"Tokens per day, {month}: 1,234 in, 305 out, 0 for reasoning, over 2 answers" in html
    assert "0.5000 credits" in html
    assert f"<caption>Usage in {month}</caption>" in html
    assert "AI/ML API" in html
    assert html.count("<rect ") >= 2 * 28  # two segments a day


def test_a_month_is_chosen_from_the_last_twelve(user):
    html = client_for(user).get("/usage/").content.decode()
    assert html.count("<option value=") == 12
    last_year = timezone.now().replace(day=1).replace(year=timezone.now().year - 1)
    response = client_for(user).get(f"/usage/?month={last_year:%Y-%m}")
    assert response.status_code == 400
    assert "choose one of the last 12 months" in response.content.decode()
    assert client_for(user).get("/usage/?month=not-a-month").status_code == 400


def test_a_member_sees_only_their_own_usage_even_asking_for_everyones(user, other_user):
    answered(user, 10, 1)
    answered(other_user, 5000, 500)
    html = client_for(user).get("/usage/?who=everyone").content.decode()
    assert "10 in, 1 out" in html
    assert "5,010" not in html
    assert "Everyone" not in html


def test_an_administrator_sees_everyones_usage_per_person(user, other_user):
    boss = User.objects.create_superuser(username="boss", password="pw-boss-123!")
    answered(user, 10, 1)
    answered(other_user, 5000, 500)
    html = client_for(boss).get("/usage/?who=everyone").content.decode()
    assert "5,010 in, 501 out" in html
    assert "<caption>Per person</caption>" in html
    assert "alice" in html
    assert "mallory" in html
    assert "0 in, 0 out" in client_for(boss).get("/usage/").content.decode()


def test_days_are_utc_days(user):
    now = timezone.now()
    chat = Conversation.objects.create(owner=user, route="aimlapi", model="m")
    add_message(
        chat,
        role="assistant",
        content="a",
        route="aimlapi",
        model="m",
        prompt_tokens=7,
        completion_tokens=0,
        created_at=datetime(now.year, now.month, 1, 0, 0, 1, tzinfo=UTC),
    )
    html = client_for(user).get("/usage/").content.decode()
    assert f'<time datetime="{now:%Y-%m}-01">' in html
