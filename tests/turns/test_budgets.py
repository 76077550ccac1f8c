"""Monthly budgets (turns/limits.py `check_budget`): a send that would go past a person's budget
is refused before anything is saved or sent, in dollars or in credits, for the calendar month in
UTC; and the dollars every answer records (turns/persistence.py), the upstream's own or an
estimate from list prices (providers/prices.py), so that a budget in dollars counts every route."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chatapp.accounts.models import BudgetUnit, Membership
from chatapp.conversations.models import Conversation, Message
from chatapp.core.errors import LimitExceeded
from chatapp.providers.types import Usage
from chatapp.turns.limits import MonthSpent, check_budget, day_words, month_spent_by_person
from chatapp.turns.persistence import Outcome, message_finish
from chatapp.turns.services import turn_continue, turn_regenerate
from chatapp.turns.workers import WORKER_ID
from tests.conftest import add_message, reload_message, start_turn, wait_for_run
from tests.fakes import upstream as up
from tests.turns.test_services import start

pytestmark = pytest.mark.django_db

MODEL = "google/gemini-2.5-flash"


@pytest.fixture(autouse=True)
def _offered(aimlapi):
    """AI/ML API is configured, so the catalog offers its models."""


def budget(person: User, amount: str | None, unit: str = BudgetUnit.USD) -> None:
    Membership.objects.update_or_create(
        user=person,
        defaults={
            "monthly_budget": None if amount is None else Decimal(amount),
            "budget_unit": unit,
        },
    )


def spent(
    person: User,
    *,
    usd: str | None = None,
    credits: str | None = None,
    at: datetime | None = None,
    route: str = "aimlapi",
) -> Message:
    """A finished answer of `person` that recorded these amounts."""
    chat = Conversation.objects.create(owner=person, route=route, model=MODEL)
    add_message(chat, role="user", content="q")
    answer = add_message(
        chat,
        role="assistant",
        status="complete",
        content="a",
        route=route,
        model=MODEL,
        usd_spent=None if usd is None else Decimal(usd),
        credits_used=None if credits is None else Decimal(credits),
    )
    if at is not None:
        Message.objects.filter(pk=answer.pk).update(created_at=at)
    return answer


def next_month_words() -> str:
    now = timezone.now().astimezone(UTC)
    first = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return day_words(first.date())


def test_without_a_budget_a_send_costs_one_small_statement(user, django_assert_num_queries):
    spent(user, usd="1000")
    with django_assert_num_queries(1):
        check_budget(user)
    budget(user, None)  # a membership row without a budget is no limit either
    with django_assert_num_queries(1):
        check_budget(user)


def test_just_below_a_dollar_budget_is_allowed_and_reaching_it_is_refused(user):
    budget(user, "5.00")
    spent(user, usd="3.00")
    last = spent(user, usd="1.99999999")
    check_budget(user)  # $4.99999999 of $5.00
    start(user)
    Message.objects.filter(pk=last.pk).update(usd_spent=Decimal("2.00"))
    with pytest.raises(LimitExceeded) as refused:
        check_budget(user)
    assert refused.value.message == (
        "Your monthly budget of $5.00 is used up ($5.00 spent this month). "
        f"It resets on {next_month_words()} (UTC)."
    )


def test_the_refusal_names_the_budget_what_is_spent_and_when_it_resets():
    person = User.objects.create_user(username="spender", password="pw-spender-123!")
    budget(person, "5")
    spent(person, usd="5.02", at=datetime(2026, 12, 15, 9, tzinfo=UTC))
    with pytest.raises(LimitExceeded) as refused:
        check_budget(person, now=datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert refused.value.message == (
        "Your monthly budget of $5.00 is used up ($5.02 spent this month). "
        "It resets on 1 January 2027 (UTC)."
    )
    assert refused.value.status == 429


def test_the_month_is_the_calendar_month_in_utc(user):
    budget(user, "1")
    spent(user, usd="3", at=datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
    # In New York it is still 30 November; in UTC December has begun, and November is over.
    check_budget(user, now=datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC))
    with pytest.raises(LimitExceeded, match="resets on 1 December 2026"):
        check_budget(user, now=datetime(2026, 11, 30, 23, 59, 59, 500_000, tzinfo=UTC))


def test_a_budget_of_zero_refuses_every_send_and_nothing_is_saved(user):
    budget(user, "0")
    with pytest.raises(LimitExceeded) as refused:
        start(user, conversation_id=uuid.uuid4())
    assert refused.value.message == (
        "Your monthly budget is $0.00, so no message can be sent. Ask an administrator to raise it."
    )
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0


def test_a_budget_in_credits_counts_credits_not_dollars(user):
    budget(user, "100", BudgetUnit.CREDITS)
    spent(user, usd="999", credits="99.9999")
    check_budget(user)
    spent(user, credits="1000.5")
    with pytest.raises(LimitExceeded) as refused:
        check_budget(user)
    assert refused.value.message.startswith(
        "Your monthly budget of 100 credits is used up (1,100.4999 credits used this month)."
    )


def test_only_the_persons_own_answers_count(user, other_user):
    budget(user, "1")
    spent(other_user, usd="50", credits="7")
    spent(user, usd="0.25")
    check_budget(user)
    everyone = month_spent_by_person(month=timezone.now().astimezone(UTC).date())
    assert everyone[other_user.pk] == MonthSpent(usd=Decimal("50"), credits=Decimal("7"))
    assert everyone[user.pk] == MonthSpent(usd=Decimal("0.25"), credits=Decimal(0))


def test_answers_written_with_the_persons_own_key_do_not_count(user):
    budget(user, "5.00")
    spent(user, usd="3.00")
    own = spent(user, usd="40.00")
    Message.objects.filter(pk=own.pk).update(own_key=True)
    check_budget(user)  # $3.00 of $5.00 on the server's keys
    assert month_spent_by_person(month=timezone.now().date().replace(day=1))[user.pk] == (
        MonthSpent(usd=Decimal("3.00"), credits=Decimal(0))
    )


def test_past_the_budget_a_route_the_person_holds_their_own_key_for_stays_open(user):
    from chatapp.credentials.services import key_save

    budget(user, "1.00")
    spent(user, usd="1.00")
    with pytest.raises(LimitExceeded):
        check_budget(user, route="aimlapi")
    key_save(owner_id=user.pk, route="aimlapi", api_key="sk-alice-own-key-5555")
    check_budget(user, route="aimlapi")
    with pytest.raises(LimitExceeded):
        check_budget(user, route="gemini")  # the server's key there


def test_answers_of_an_earlier_month_do_not_count(user):
    budget(user, "1")
    spent(user, usd="9", at=timezone.now().replace(day=1) - timedelta(days=1))
    check_budget(user)


def test_regenerate_and_continue_are_refused_past_the_budget_and_change_nothing(user):
    turn = start(user)
    answer = turn.assistant_message
    Message.objects.filter(pk=answer.pk).update(
        status=Message.Status.STOPPED, content="Part of it", usd_spent=Decimal("0.50")
    )
    answer.refresh_from_db()
    budget(user, "0.50")
    with pytest.raises(LimitExceeded, match=r"budget of \$0\.50 is used up"):
        turn_regenerate(message=answer, worker_id=WORKER_ID)
    with pytest.raises(LimitExceeded, match=r"budget of \$0\.50 is used up"):
        turn_continue(message=answer, worker_id=WORKER_ID)
    assert Message.objects.filter(role="assistant").count() == 1
    answer.refresh_from_db()
    assert answer.status == Message.Status.STOPPED


def test_an_edit_is_refused_past_the_budget(user):
    from chatapp.turns.services import turn_edit

    turn = start(user)
    Message.objects.filter(pk=turn.assistant_message.pk).update(
        status=Message.Status.COMPLETE, usd_spent=Decimal("2")
    )
    budget(user, "2")
    with pytest.raises(LimitExceeded, match="used up"):
        turn_edit(
            message=turn.user_message,
            text="Again",
            idempotency_key=uuid.uuid4(),
            worker_id=WORKER_ID,
        )
    assert Message.objects.count() == 2


def test_the_composer_shows_the_refusal_and_no_request_goes_upstream(user, aimlapi):
    budget(user, "0.10")
    spent(user, usd="0.25")
    client = Client()
    client.force_login(user)
    conversation_id = uuid.uuid4()
    response = client.post(
        reverse("turn-create", args=[conversation_id]),
        {"text": "Hello", "idempotency_key": str(uuid.uuid4()), "model": f"aimlapi:{MODEL}"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 429
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "Your monthly budget of $0.10 is used up ($0.25 spent this month)." in html
    assert not Conversation.objects.filter(pk=conversation_id).exists()
    assert aimlapi.requests == []


# --- The dollars of every answer ---------------------------------------------------------------


def pending_answer(owner: User, route: str, model: str) -> Message:
    chat = Conversation.objects.create(owner=owner, route=route, model=model)
    add_message(chat, role="user", content="q")
    return add_message(chat, role="assistant", status="pending", route=route, model=model)


def finish_with(answer: Message, usage: Usage) -> Message:
    written = message_finish(
        message_id=answer.pk, outcome=Outcome(status="complete", content="a", usage=usage)
    )
    assert written is not None
    answer.refresh_from_db()
    assert answer.usd_spent == written["usd_spent"]
    return answer


def test_an_answer_without_dollars_is_priced_from_its_models_list_price(user):
    # Google's usageMetadata counts thoughts apart: 1,000,000 in at $0.30, 200,000 out and
    # 100,000 of thinking at $2.50 per million.
    answer = pending_answer(user, "gemini", "gemini-2.5-flash")
    usage = Usage(
        prompt_tokens=1_000_000,
        completion_tokens=200_000,
        reasoning_tokens=100_000,
        total_tokens=1_300_000,
    )
    assert finish_with(answer, usage).usd_spent == Decimal("1.05")


def test_thinking_inside_the_completion_tokens_is_not_counted_twice(user):
    # OpenAI's usage counts reasoning inside completion_tokens (total = prompt + completion).
    answer = pending_answer(user, "aimlapi", "google/gemini-2.5-pro")
    usage = Usage(
        prompt_tokens=1000, completion_tokens=500, reasoning_tokens=300, total_tokens=1500
    )
    assert finish_with(answer, usage).usd_spent == Decimal("0.00625")  # 1000 × 1.25 + 500 × 10


def test_the_upstreams_own_dollars_win_over_the_list_price(user):
    answer = pending_answer(user, "aimlapi", MODEL)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0, usd_spent=0.01, credits_used=21)
    finished = finish_with(answer, usage)
    assert finished.usd_spent == Decimal("0.01")
    assert finished.credits_used == Decimal("21")


def test_a_model_without_a_price_or_an_answer_without_tokens_keeps_no_dollars(user):
    unpriced = pending_answer(user, "aimlapi", "google/gemini-3-5-flash")
    assert finish_with(unpriced, Usage(prompt_tokens=10, completion_tokens=10)).usd_spent is None
    untold = pending_answer(user, "gemini", "gemini-2.5-flash")
    assert finish_with(untold, Usage()).usd_spent is None


@pytest.mark.django_db(transaction=True)
async def test_a_google_answer_counts_against_a_dollar_budget(all_routes, run_manager, user):
    """The whole path: Google reports tokens only; the answer saved carries their list price,
    and the next send is refused once that reaches the budget."""
    all_routes.enqueue(
        up.Reply(
            [up.Text("Costly.")],
            usage=up.Usage(prompt_tokens=2_000_000, completion_tokens=0, total_tokens=2_000_000),
        )
    )
    turn = await start_turn(user, "Hello", model_key="gemini:gemini-2.5-flash")
    await wait_for_run(turn.assistant_message.id)
    answer = await reload_message(turn.assistant_message.id)
    assert answer.status == Message.Status.COMPLETE
    assert answer.usd_spent == Decimal("0.6")  # 2,000,000 × $0.30 per million

    await sync_to_async(budget)(user, "0.60")
    with pytest.raises(LimitExceeded, match=r"\$0\.60 is used up \(\$0\.60 spent"):
        await start_turn(user, "Again", model_key="gemini:gemini-2.5-flash", launch=False)
    assert len(all_routes.chat_requests) == 1
