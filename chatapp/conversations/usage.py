"""Reads for the Usage page: a month of a person's answers (or everyone's, for an
administrator), totalled per day, route and model from what each answer recorded (tokens in,
out and for reasoning, the route's credits, dollars). One query, over the `answers_by_time`
index."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from chatapp.providers import catalog

from .models import Message

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(slots=True)
class Totals:
    answers: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    reasoning: int = 0
    credits: Decimal = Decimal(0)
    usd: Decimal = Decimal(0)

    def add(self, other: Totals) -> None:
        self.answers += other.answers
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.reasoning += other.reasoning
        self.credits += other.credits
        self.usd += other.usd


@dataclass(slots=True)
class UsageRow:
    day: date
    route: str
    model: str
    person: str  # the owner's username ("" when the report is one person's)
    totals: Totals

    @property
    def route_label(self) -> str:
        return catalog.ROUTE_LABELS.get(self.route, self.route)


@dataclass(slots=True)
class MonthUsage:
    month: date  # its first day
    rows: list[UsageRow] = field(default_factory=list)
    total: Totals = field(default_factory=Totals)
    by_day: dict[date, Totals] = field(default_factory=dict)  # every day of the month
    by_person: dict[str, Totals] = field(default_factory=dict)  # everyone's report only


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def month_usage(*, month: date, owner: User | None) -> MonthUsage:
    """The answers of `owner` (None: everyone's) started in `month` (UTC), totalled."""
    start, end = month_bounds(month)
    answers = Message.objects.filter(
        role=Message.Role.ASSISTANT, created_at__gte=start, created_at__lt=end
    )
    keys = ["day", "route", "model"]
    if owner is not None:
        answers = answers.filter(conversation__owner=owner)
    else:
        keys.append("conversation__owner__username")
    grouped = (
        answers.annotate(day=TruncDate("created_at"))
        .values(*keys)
        .annotate(
            answers=Count("id"),
            tokens_in=Sum("prompt_tokens"),
            tokens_out=Sum("completion_tokens"),
            reasoning=Sum("reasoning_tokens"),
            credits=Sum("credits_used"),
            usd=Sum("usd_spent"),
        )
        .order_by(*keys)
    )
    report = MonthUsage(month=start.date())
    days = calendar.monthrange(month.year, month.month)[1]
    report.by_day = {start.date().replace(day=d): Totals() for d in range(1, days + 1)}
    for row in grouped:
        totals = Totals(
            answers=row["answers"],
            tokens_in=row["tokens_in"] or 0,
            tokens_out=row["tokens_out"] or 0,
            reasoning=row["reasoning"] or 0,
            credits=row["credits"] or Decimal(0),
            usd=row["usd"] or Decimal(0),
        )
        person = row.get("conversation__owner__username", "")
        report.rows.append(UsageRow(row["day"], row["route"], row["model"], person, totals))
        report.total.add(totals)
        report.by_day.setdefault(row["day"], Totals()).add(totals)
        if owner is None:
            report.by_person.setdefault(person, Totals()).add(totals)
    return report
