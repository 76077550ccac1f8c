"""A run's writes: checkpoints of the text while it streams, and the final state in one UPDATE.

Bounded by design: a checkpoint at most once per `CHAT_RUN["checkpoint_interval"]` (appending
only the new text) and one final UPDATE, never a write per token (bench S6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection
from django.utils import timezone

from chatapp.conversations.models import Message
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
                content_tail,
                reasoning_tail,
                Message.Status.STREAMING,
                Message._meta.pk.get_db_prep_value(message_id, connection),
                *Message.ACTIVE_STATUSES,
            ],
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


def message_finish(*, message_id: uuid.UUID, outcome: Outcome) -> bool:
    """Save the final state of a run. Returns False if the message was already terminal
    (e.g. marked interrupted by another worker while this one was partitioned away)."""
    fields: dict[str, Any] = {
        "status": outcome.status,
        "content": outcome.content,
        "content_html": outcome.content_html,
        "html_version": outcome.html_version,
        "reasoning": outcome.reasoning,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
        "finish_reason": outcome.finish_reason[:32],
        "model_reported": outcome.model_reported[:200],
        "upstream_request_id": outcome.upstream_request_id[:200],
        "upstream_response_id": outcome.upstream_response_id[:200],
        "prompt_tokens": _count(outcome.usage.prompt_tokens),
        "completion_tokens": _count(outcome.usage.completion_tokens),
        "reasoning_tokens": _count(outcome.usage.reasoning_tokens),
        "total_tokens": _count(outcome.usage.total_tokens),
        "credits_used": _decimal(outcome.usage.credits_used),
        "usd_spent": _decimal(outcome.usage.usd_spent),
        "ttft_ms": outcome.ttft_ms,
        "duration_ms": outcome.duration_ms,
        "finished_at": timezone.now(),
    }
    if outcome.provider_extras is not None:
        fields["provider_extras"] = outcome.provider_extras
    updated = Message.objects.filter(pk=message_id, status__in=Message.ACTIVE_STATUSES).update(
        **fields
    )
    return bool(updated)


def _count(value: int | None) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _decimal(value: float | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.00000001"))
    except (InvalidOperation, ValueError):
        return None
