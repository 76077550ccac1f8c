"""The "Usage" page: a month of the person's answers (an administrator: everyone's), as a
chart of tokens per day and a table per day, route and model, from what each answer recorded."""

from __future__ import annotations

import re
from datetime import date

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from chatapp.conversations.usage import month_usage

from ..charts import HEIGHT, WIDTH, stacked_bars
from ..requests import AuthenticatedRequest

MONTHS_OFFERED = 12
MONTH = re.compile(r"(\d{4})-(\d{2})")


def _months(today: date) -> list[date]:
    """The current month and the eleven before it, newest first."""
    months, year, month = [], today.year, today.month
    for _ in range(MONTHS_OFFERED):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


@require_GET
def usage_page(request: AuthenticatedRequest) -> HttpResponse:
    months = _months(timezone.now().date())
    chosen, error = months[0], ""
    if raw := request.GET.get("month", ""):
        match = MONTH.fullmatch(raw[:7])
        picked = (
            date(int(match[1]), int(match[2]), 1) if match and 1 <= int(match[2]) <= 12 else None
        )
        if picked in months:
            chosen = picked
        else:
            error = (
                f"There is no usage page for “{raw[:20]}”: choose one of the last "
                f"{MONTHS_OFFERED} months. Showing {months[0]:%B %Y}."
            )
    everyone = request.user.is_superuser and request.GET.get("who") == "everyone"
    report = month_usage(month=chosen, owner=None if everyone else request.user)
    columns = [
        (
            str(day.day) if day.day in (1, 8, 15, 22, 29) else "",
            f"{day:%d %B}: {totals.tokens_in:,} tokens in, {totals.tokens_out:,} out, "
            f"{totals.answers:,} answers",
            [("bar-in", totals.tokens_in), ("bar-out", totals.tokens_out)],
        )
        for day, totals in sorted(report.by_day.items())
    ]
    context = {
        "months": months,
        "chosen": chosen,
        "error": error,
        "everyone": everyone,
        "report": report,
        "bars": stacked_bars(columns),
        "chart_width": WIDTH,
        "chart_height": HEIGHT,
    }
    return render(request, "chatapp/usage.html", context, status=400 if error else 200)
