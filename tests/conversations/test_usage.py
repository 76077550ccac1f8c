"""The Usage page's figures (conversations/usage.py): a month of answers totalled per day,
route and model from what each answer recorded, one person's or everyone's, in one query."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatapp.conversations.models import Conversation
from chatapp.conversations.usage import month_usage
from tests.conftest import add_message

pytestmark = pytest.mark.django_db


def answer(conversation, when, *, tokens_in, tokens_out, reasoning=None, credits=None, usd=None):
    add_message(conversation, role="user", content="q", created_at=when)
    return add_message(
        conversation,
        role="assistant",
        content="a",
        route=conversation.route,
        model=conversation.model,
        prompt_tokens=tokens_in,
        completion_tokens=tokens_out,
        reasoning_tokens=reasoning,
        credits_used=credits,
        usd_spent=usd,
        created_at=when,
    )


@pytest.fixture
def chats(user, other_user):
    mine = Conversation.objects.create(owner=user, route="aimlapi", model="google/gemini-2.5-flash")
    native = Conversation.objects.create(owner=user, route="gemini", model="gemini-2.5-pro")
    theirs = Conversation.objects.create(
        owner=other_user, route="aimlapi", model="google/gemini-2.5-flash"
    )
    at = lambda d, h=12: datetime(2026, 11, d, h, tzinfo=UTC)  # noqa: E731
    answer(mine, at(3), tokens_in=100, tokens_out=50, credits=Decimal("0.5"))
    answer(mine, at(3, 23), tokens_in=10, tokens_out=5, reasoning=7, credits=Decimal("0.25"))
    answer(native, at(3), tokens_in=1000, tokens_out=200, usd=Decimal("0.0125"))
    answer(mine, at(30, 23), tokens_in=1, tokens_out=1)
    answer(mine, datetime(2026, 12, 1, 0, 0, tzinfo=UTC), tokens_in=9999, tokens_out=9999)
    answer(mine, datetime(2026, 10, 31, 23, 59, tzinfo=UTC), tokens_in=8888, tokens_out=8888)
    answer(theirs, at(4), tokens_in=40, tokens_out=4, credits=Decimal("1"))
    return mine, native, theirs


def test_a_persons_month_is_totalled_per_day_route_and_model(chats, user):
    report = month_usage(month=date(2026, 11, 1), owner=user)
    got = [
        (r.day, r.route, r.model, r.totals.answers, r.totals.tokens_in, r.totals.tokens_out)
        for r in report.rows
    ]
    assert got == [
        (date(2026, 11, 3), "aimlapi", "google/gemini-2.5-flash", 2, 110, 55),
        (date(2026, 11, 3), "gemini", "gemini-2.5-pro", 1, 1000, 200),
        (date(2026, 11, 30), "aimlapi", "google/gemini-2.5-flash", 1, 1, 1),
    ]
    total = report.total
    assert (total.answers, total.tokens_in, total.tokens_out, total.reasoning) == (4, 1111, 256, 7)
    assert total.credits == Decimal("0.75")
    assert total.usd == Decimal("0.0125")


def test_the_month_ends_where_the_next_begins_in_utc(chats, user):
    assert month_usage(month=date(2026, 12, 1), owner=user).total.tokens_in == 9999
    assert month_usage(month=date(2026, 10, 1), owner=user).total.tokens_in == 8888


def test_every_day_of_the_month_has_its_bar_even_without_answers(chats, user):
    by_day = month_usage(month=date(2026, 11, 1), owner=user).by_day
    assert len(by_day) == 30
    assert by_day[date(2026, 11, 3)].tokens_in == 1110
    assert by_day[date(2026, 11, 15)].answers == 0


def test_someone_elses_answers_are_not_in_my_report_and_all_are_in_everyones(chats, user):
    mine = month_usage(month=date(2026, 11, 1), owner=user)
    assert all(row.person == "" for row in mine.rows)
    everyone = month_usage(month=date(2026, 11, 1), owner=None)
    assert everyone.total.answers == 5
    assert everyone.by_person["mallory"].tokens_in == 40
    assert everyone.by_person["alice"].tokens_in == 1111


def test_the_report_is_one_query(chats, user):
    with CaptureQueriesContext(connection) as queries:
        month_usage(month=date(2026, 11, 1), owner=user)
        month_usage(month=date(2026, 11, 1), owner=None)
    assert len(queries) == 2
