"""A run's writes: checkpoints of the text while it streams, and the final state in one UPDATE.

Bounded by design: a checkpoint at most once per `CHAT_RUN["checkpoint_interval"]` (appending
only the new text) and one final UPDATE, never a write per token (bench S6).

This is where values from an upstream meet the database, so every one is made storable here:
counts outside the columns' range and non-finite or oversized amounts are dropped (an
upstream once reported 9,223,372,036,854,775,813 prompt tokens), strings are cut to their
column and lose NUL characters (PostgreSQL refuses them; U+FFFD keeps offsets), and the provider
extras become plain JSON PostgreSQL accepts (no NaN, no NUL).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection
from django.utils import timezone

from chatapp.conversations.models import Message
from chatapp.core import sql
from chatapp.providers import prices
from chatapp.providers.types import Usage


def message_checkpoint(*, message_id: uuid.UUID, content_tail: str, reasoning_tail: str) -> None:
    """Append the text streamed since the last checkpoint (at most one per second per message).

    Appending, not rewriting, keeps the bytes written linear in the answer's length; the final
    save (message_finish) writes the whole text once, which also repairs a checkpoint that
    failed after all. One plain statement: with hundreds of streams this runs hundreds of times
    a second, and building it through the ORM's expressions cost more than executing it.
    """
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET content = content || %s, reasoning = reasoning || %s, "
            "status = %s WHERE id = %s AND status IN (%s, %s)",
            [
                storable_text(content_tail),
                storable_text(reasoning_tail),
                Message.Status.STREAMING,
                Message._meta.pk.get_db_prep_value(message_id, connection),
                *Message.ACTIVE_STATUSES,
            ],
        )


NOT_STARTED = (
    "This server could not start writing the answer. Nothing was sent; press Retry to ask again."
)


def message_not_started(*, message_id: uuid.UUID) -> None:
    """Mark a pending answer whose run could not be started failed, saying so, so that it is
    not left pending (its page, its stream and the conversation's next send all wait on it).
    Its text, if a continuation's, is kept."""
    Message.objects.filter(pk=message_id, status__in=Message.ACTIVE_STATUSES).update(
        status=Message.Status.FAILED,
        error_code="internal",
        error_message=NOT_STARTED,
        finished_at=timezone.now(),
    )


@dataclass(slots=True)
class Outcome:
    """Everything the run knows when it ends; saved in one UPDATE. `content_html` is the
    answer rendered by `chatapp.rendering` (its `html_version`), so pages serve it as is."""

    status: str
    content: str
    content_html: str = ""
    html_version: int = 0
    reasoning: str = ""
    error_code: str = ""
    error_message: str = ""
    finish_reason: str = ""
    model_reported: str = ""
    upstream_request_id: str = ""
    upstream_response_id: str = ""
    usage: Usage = field(default_factory=Usage)
    ttft_ms: int | None = None
    duration_ms: int | None = None
    provider_extras: dict[str, Any] | None = None
    # Which model wrote it (for its list price), and whether with the person's own key.
    route: str = ""
    model: str = ""
    own_key: bool = False
    # The request's other candidates (params "candidate_count"), each saved beside this
    # answer as another version of it (`candidates_insert`), in their order.
    candidates: list[Outcome] = field(default_factory=list)


def message_finish(*, message_id: uuid.UUID, outcome: Outcome) -> dict[str, Any] | None:
    """Save the final state of a run, in one plain statement (through the ORM's update() it
    was ~0.6 ms of a turn's CPU, bench "turn cost"). Returns the values written, by field, or
    None if the message was already terminal (e.g. marked interrupted by another worker while
    this one was partitioned away).

    Dollars: the upstream's own figure when it reports one (AI/ML API's `usd_spent`). When it
    reports tokens but no dollars (Google, Segmind), `usd_spent` is an estimate from the
    model's list price (`providers.prices`), so that a budget in dollars counts every route;
    a model without a list price keeps none."""
    fields: dict[str, Any] = {
        "status": outcome.status,
        "content": storable_text(outcome.content),
        "content_html": storable_text(outcome.content_html),
        "html_version": outcome.html_version,
        "reasoning": storable_text(outcome.reasoning),
        "error_code": storable_text(outcome.error_code, 64),
        "error_message": storable_text(outcome.error_message),
        "finish_reason": storable_text(outcome.finish_reason, 32),
        "model_reported": storable_text(outcome.model_reported, 200),
        "upstream_request_id": storable_text(outcome.upstream_request_id, 200),
        "upstream_response_id": storable_text(outcome.upstream_response_id, 200),
        "prompt_tokens": _count(outcome.usage.prompt_tokens),
        "completion_tokens": _count(outcome.usage.completion_tokens),
        "reasoning_tokens": _count(outcome.usage.reasoning_tokens),
        "total_tokens": _count(outcome.usage.total_tokens),
        "credits_used": _decimal(outcome.usage.credits_used),
        "usd_spent": _decimal(outcome.usage.usd_spent),
        "ttft_ms": _count(outcome.ttft_ms),
        "duration_ms": _count(outcome.duration_ms),
        "finished_at": timezone.now(),
        "own_key": outcome.own_key,
    }
    if fields["usd_spent"] is None and (
        fields["prompt_tokens"] is not None or fields["completion_tokens"] is not None
    ):
        fields["usd_spent"] = _list_cost(message_id, fields, outcome)
    if outcome.provider_extras is not None:
        fields["provider_extras"] = storable_json(outcome.provider_extras)
    updated = sql.update_where_active(
        Message, message_id, fields, status_in=Message.ACTIVE_STATUSES
    )
    return fields if updated else None


def candidates_insert(*, answer: Message, outcome: Outcome, now: datetime) -> list[Message]:
    """The request's other candidates as new versions of `answer` (its siblings, under the
    same parent), in one statement, right after its final save and in the same transaction
    (docs/ARCHITECTURE.md, "Several candidates"). Each is an ordinary finished answer: its
    text rendered, its own finish reason, the same route, model, options and upstream ids;
    no usage, which the streamed answer records once for the whole request (so a budget
    counts it once). Created just after `now`, one microsecond apart, so the switcher orders
    them after the streamed one and by their index."""
    rows = []
    for position, candidate in enumerate(outcome.candidates, start=1):
        rows.append(
            Message(
                id=uuid.uuid4(),
                conversation_id=answer.conversation_id,
                parent_id=answer.parent_id,
                role=Message.Role.ASSISTANT,
                status=candidate.status,
                content=storable_text(candidate.content),
                content_html=storable_text(candidate.content_html),
                html_version=candidate.html_version,
                reasoning=storable_text(candidate.reasoning),
                error_code=storable_text(candidate.error_code, 64),
                error_message=storable_text(candidate.error_message),
                finish_reason=storable_text(candidate.finish_reason, 32),
                route=answer.route,
                model=answer.model,
                request_options=answer.request_options,
                model_reported=storable_text(outcome.model_reported, 200),
                upstream_request_id=storable_text(outcome.upstream_request_id, 200),
                upstream_response_id=storable_text(outcome.upstream_response_id, 200),
                own_key=outcome.own_key,
                duration_ms=_count(outcome.duration_ms),
                provider_extras=storable_json(candidate.provider_extras or {}),
                created_at=now + timedelta(microseconds=position),
                finished_at=now,
            )
        )
    sql.insert(rows)
    return rows


def _list_cost(message_id: uuid.UUID, fields: dict[str, Any], outcome: Outcome) -> Decimal | None:
    """The answer's cost at its model's list price: the run's outcome names the model; one
    that does not (an outcome built elsewhere) has it read by key."""
    route, model = outcome.route, outcome.model
    if not route:
        table = Message._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT route, model FROM {table} WHERE id = %s",
                [Message._meta.pk.get_db_prep_value(message_id, connection)],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        route, model = row
    cost = prices.list_cost(
        route=route,
        model_id=model,
        prompt_tokens=fields["prompt_tokens"],
        completion_tokens=fields["completion_tokens"],
        reasoning_tokens=fields["reasoning_tokens"],
        total_tokens=fields["total_tokens"],
    )
    return cost if cost is not None and cost < AMOUNT_LIMIT else None


# PositiveIntegerField's range on every engine Django supports (PostgreSQL's integer).
COUNT_MAX = 2**31 - 1
# DecimalField(max_digits=20, decimal_places=8): twelve digits before the point.
AMOUNT_LIMIT = Decimal(10) ** 12


def storable_text(value: str, limit: int | None = None) -> str:
    """Text a column takes: no NUL (one character for one, so offsets hold), at most `limit`."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value if limit is None else value[:limit]


def storable_json(value: Any, depth: int = 0) -> Any:
    """Plain JSON that PostgreSQL's jsonb and SQLite both accept: strings without NUL, finite
    numbers, string keys; nesting past 64 levels is dropped."""
    if depth > 64:
        return None
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {storable_text(str(k)): storable_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v, depth + 1) for v in value]
    return storable_text(str(value))


def _count(value: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= COUNT_MAX else None


def _decimal(value: float | None) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
        if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
            return None
        return amount.quantize(Decimal("0.00000001"))
    except (InvalidOperation, ValueError):
        return None
