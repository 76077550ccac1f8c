"""The limits a turn is checked against before anything is saved or sent: message length,
sends per minute and answers at once per person, the person's monthly budget, and whether the
thread's images can be read by the model and fit the route's request budget. Each error names
its limit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Literal

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from chatapp.accounts.models import BudgetUnit, Membership
from chatapp.attachments import images
from chatapp.attachments.models import Attachment
from chatapp.conversations import tree
from chatapp.conversations.models import Conversation, Message
from chatapp.conversations.usage import month_bounds
from chatapp.core.errors import LimitExceeded, RequestTooLarge, ServiceError
from chatapp.core.locks import lock_person
from chatapp.credentials.models import PersonKey
from chatapp.providers import catalog

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def check_text(text: str, *, with_images: bool = False) -> None:
    limit = settings.CHAT_LIMITS["message_chars"]
    if not text.strip() and not with_images:
        raise ServiceError("Type a message first.")
    if len(text) > limit:
        raise ServiceError(
            f"Your message is {len(text):,} characters long; the limit is {limit:,} characters."
        )
    if "\x00" in text:
        raise ServiceError(
            "Your message contains a NUL character (U+0000), which cannot be stored. Remove it "
            "and send again."
        )


# Both counts must not grow with what the person has kept: a scan of all their conversations
# or messages made every send slower as history grew (40 sends after five long answers: 15
# -> 22 ms of CPU a turn, bench "turn cost"). Sends: only conversations active in the last
# minute (`recent` index; every new answer moves its conversation's `updated_at` to at least
# one microsecond before its own time, hence the second of slack). Answers being written: the
# partial index of active messages, which holds only those (its condition is written out, so
# that the planner can match it).
_RATE_SQL = """
SELECT
  (SELECT COUNT(*) FROM {conversation} c JOIN {message} m ON m.conversation_id = c.id
    WHERE c.owner_id = %s AND c.updated_at >= %s AND m.created_at >= %s AND m.role = %s),
  (SELECT COUNT(*) FROM {message} m WHERE m.status IN ('pending', 'streaming')
    AND (SELECT c.owner_id FROM {conversation} c WHERE c.id = m.conversation_id) = %s)
"""
assert Message.ACTIVE_STATUSES == ("pending", "streaming"), "update _RATE_SQL's condition"


def check_rate(owner: User) -> None:
    """Sends per minute and answers being written at once, per person (docs/SECURITY.md rule
    14). One statement for both counts: this is on every send's path to the first token.

    Call it inside the transaction that inserts the answer, so that two sends at once cannot
    both pass with one slot left (24 at once got 8 answers written against a limit of 4): on
    PostgreSQL the person's row is locked first, so the count sees every send committed before;
    SQLite's IMMEDIATE transactions already take the write lock at BEGIN."""
    lock_person(owner.pk)
    minute_ago = timezone.now() - timedelta(minutes=1)
    adapt = connection.ops.adapt_datetimefield_value
    sql = _RATE_SQL.format(message=Message._meta.db_table, conversation=Conversation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                owner.pk,
                adapt(minute_ago - timedelta(seconds=1)),
                adapt(minute_ago),
                Message.Role.ASSISTANT,
                owner.pk,
            ],
        )
        sent, active = cursor.fetchone()
    per_minute = settings.CHAT_LIMITS["sends_per_minute"]
    if sent >= per_minute:
        raise LimitExceeded(
            f"You have sent {sent} messages in the last minute; the limit is {per_minute} per "
            "minute. Wait a moment and send again."
        )
    active_limit = settings.CHAT_LIMITS["active_turns_per_user"]
    if active >= active_limit:
        raise LimitExceeded(
            f"{active} answers are being written for you right now; the limit is {active_limit} "
            "at a time. Wait for one to finish or press Stop."
        )


# Only the budget, by the membership's key: a person without one (most, and every account
# with no membership row) costs this one small statement and nothing else.
_BUDGET_SQL = "SELECT monthly_budget, budget_unit FROM {membership} WHERE user_id = %s"


@dataclass(frozen=True, slots=True)
class MonthSpent:
    """What a person's answers started this calendar month (UTC) recorded: dollars (the
    upstream's, or an estimate from list prices, `turns.persistence`) and the route's credits
    (AI/ML API's only)."""

    usd: Decimal = Decimal(0)
    credits: Decimal = Decimal(0)

    def of(self, unit: str) -> Decimal:
        return self.credits if unit == BudgetUnit.CREDITS else self.usd


def check_budget(owner: User, *, route: str = "", now: datetime | None = None) -> None:
    """Refuse a send once the person's answers this month have used their monthly budget
    (`Membership.monthly_budget`, in dollars or credits): used >= budget, so a budget of 0
    refuses every send. Call it before anything is saved, beside `check_rate`.

    The budget is for the server's keys: a send on a `route` the person holds their own key
    for is not refused, and the answers written with their key (`Message.own_key`) do not
    count.

    The month is the calendar month in UTC, as on the Usage page. An answer counts once it
    has finished (its cost is known only then), so the answers being written when the budget
    runs out may go past it, by at most the answers a person may have at once."""
    with connection.cursor() as cursor:
        cursor.execute(_BUDGET_SQL.format(membership=Membership._meta.db_table), [owner.pk])
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return
    budget, unit = Decimal(str(row[0])), row[1]
    if route and PersonKey.objects.filter(owner_id=owner.pk, route=route).exists():
        return
    month = (now or timezone.now()).astimezone(UTC).date().replace(day=1)
    used = month_spent(owner_id=owner.pk, month=month, unit=unit)
    if used < budget:
        return
    resets = month_bounds(month)[1].date()
    if budget == 0:
        raise LimitExceeded(
            f"Your monthly budget is {budget_words(budget, unit)}, so no message can be sent. "
            "Ask an administrator to raise it."
        )
    spent = "spent" if unit == BudgetUnit.USD else "used"
    raise LimitExceeded(
        f"Your monthly budget of {budget_words(budget, unit)} is used up "
        f"({budget_words(used, unit)} {spent} this month). It resets on {day_words(resets)} "
        "(UTC)."
    )


def month_spent(*, owner_id: int, month: date, unit: str) -> Decimal:
    """The dollars or credits of one person's answers started in `month` (UTC): over the
    `answers_by_time` index (the month's answers), then their conversations' owner."""
    start, end = month_bounds(month)
    column = "credits_used" if unit == BudgetUnit.CREDITS else "usd_spent"
    total = (
        Message.objects.filter(
            role=Message.Role.ASSISTANT,
            created_at__gte=start,
            created_at__lt=end,
            conversation__owner_id=owner_id,
        )
        .exclude(own_key=True)
        .aggregate(total=Sum(column))["total"]
    )
    return total or Decimal(0)


def month_spent_by_person(*, month: date) -> dict[int, MonthSpent]:
    """Everyone's dollars and credits of `month` (UTC) on the server's keys, by person id (the
    Admin page): one query over the month's answers."""
    start, end = month_bounds(month)
    rows = (
        Message.objects.filter(
            role=Message.Role.ASSISTANT, created_at__gte=start, created_at__lt=end
        )
        .exclude(own_key=True)
        .values("conversation__owner_id")
        .annotate(usd=Sum("usd_spent"), credits=Sum("credits_used"))
        .order_by()
    )
    return {
        row["conversation__owner_id"]: MonthSpent(
            usd=row["usd"] or Decimal(0), credits=row["credits"] or Decimal(0)
        )
        for row in rows
    }


def budget_words(amount: Decimal, unit: str) -> str:
    """ "$5.00" or "1,000.5 credits". Cut down, never rounded up: what is shown as used is
    never more than was used, and a budget used up never reads as less than itself."""
    if unit == BudgetUnit.CREDITS:
        text = f"{amount.quantize(Decimal('0.0001'), rounding=ROUND_DOWN):,f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return f"{text} credit" if text == "1" else f"{text} credits"
    return f"${amount.quantize(Decimal('0.01'), rounding=ROUND_DOWN):,.2f}"


def day_words(day: date) -> str:
    """A day as "1 January 2027": the month's name in English whatever the process's locale."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def check_images_fit(
    *,
    conversation: Conversation,
    spec: catalog.ModelSpec,
    new_images: Sequence[Attachment] = (),
    new_text: str = "",
    thread_end_id: uuid.UUID | Literal["current"] | None = "current",
) -> None:
    """Before any request: the model must read images if the thread has any, and the whole
    request (every image of the thread, base64-encoded, and the text) must fit the route.

    The thread is the path that ends at `thread_end_id` (None: there is none yet; by default
    the branch shown). Only a conversation with images walks it: images on other branches
    are not sent, and a text-only conversation costs one indexed query here."""
    end = conversation.current_leaf_id if isinstance(thread_end_id, str) else thread_end_id
    earlier_count, earlier_bytes, text_chars = 0, 0, 0
    if end is not None and (new_images or tree.has_images(conversation.id)):
        text_chars, earlier_count, earlier_bytes = tree.totals(
            conversation_id=conversation.id, leaf_id=end
        )
    if (new_images or earlier_count) and not spec.vision:
        if new_images:
            raise ServiceError(
                f"{spec.label} takes text only and cannot read the images attached. Choose a "
                "model that reads images in Settings, or remove the images."
            )
        raise ServiceError(
            f"This conversation has images, which {spec.label} cannot read (it takes text "
            "only). Choose a model that reads images in Settings."
        )
    if not new_images and not earlier_count:
        return
    new_bytes = sum(a.byte_size for a in new_images)
    budget = images.route_limits(spec.route)["request_bytes"]
    text_bytes = text_chars + len(new_text) + len(conversation.system_prompt)
    encoded = encoded_size(new_bytes, len(new_images))
    total = encoded + encoded_size(earlier_bytes, earlier_count) + text_bytes
    if total <= budget:
        return
    route = catalog.ROUTE_LABELS.get(spec.route, spec.route)
    if encoded + len(new_text) + len(conversation.system_prompt) > budget:
        raise RequestTooLarge(
            f"The images attached come to {images.megabytes(encoded)} once encoded for sending; "
            f"{route} takes at most {images.megabytes(budget)} per request. Remove an image."
        )
    raise RequestTooLarge(
        f"With the images already in this conversation, this request would come to "
        f"{images.megabytes(total)}; {route} takes at most {images.megabytes(budget)} per "
        "request. Start a new conversation to send more images."
    )


def encoded_size(raw_bytes: int, count: int) -> int:
    """Base64 (4 bytes for every 3) plus the data: URI prefix of each image."""
    return 4 * ((raw_bytes + 2) // 3) + 40 * count
