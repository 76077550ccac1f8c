"""The processes that run generations: this one's identity, its heartbeat, and the reaper
that marks the answers of a process that died as interrupted (their text kept)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import timedelta

from django.db.models.functions import Length
from django.utils import timezone

from chatapp.conversations.models import Message

from .models import Worker
from .persistence import storable_text

log = logging.getLogger(__name__)

# This process. Messages record the worker that runs them (see models.Worker).
WORKER_ID = uuid.uuid4()
HOSTNAME = socket.gethostname()


INTERRUPTED_MESSAGE = (
    "The server stopped while this answer was being written. The text up to that moment is "
    "kept; press Retry to ask again or Continue to pick up where it stopped."
)


def worker_heartbeat(*, worker_id: uuid.UUID, hostname: str, pid: int) -> None:
    now = timezone.now()
    updated = Worker.objects.filter(pk=worker_id).update(seen_at=now)
    if not updated:
        Worker.objects.update_or_create(
            pk=worker_id, defaults={"hostname": hostname, "pid": pid, "seen_at": now}
        )


def runs_reap(
    *,
    live_worker_id: uuid.UUID,
    stale_after: float,
    hostname: str,
    recovered: Mapping[uuid.UUID, str] | None = None,
) -> list[uuid.UUID]:
    """Mark as interrupted the active messages whose worker is gone, keeping their text.

    `recovered` is what those runs had published (turns.published): where it is longer than
    the last checkpoint, it is the answer's text. Returns the ids marked, so the caller can
    tell their listeners.
    """
    ids = runs_orphaned(live_worker_id=live_worker_id, stale_after=stale_after, hostname=hostname)
    return runs_interrupt(message_ids=ids, recovered=recovered or {})


def runs_interrupt(
    *, message_ids: list[uuid.UUID], recovered: Mapping[uuid.UUID, str]
) -> list[uuid.UUID]:
    """Mark these orphaned answers interrupted, each with the longer of its checkpointed and
    its recovered published text (a checkpoint is a prefix of what was published)."""
    if not message_ids:
        return []
    for message_id, text in recovered.items():
        Message.objects.filter(pk=message_id, status__in=Message.ACTIVE_STATUSES).annotate(
            chars=Length("content")
        ).filter(chars__lt=len(text)).update(content=storable_text(text))
    Message.objects.filter(pk__in=message_ids, status__in=Message.ACTIVE_STATUSES).update(
        status=Message.Status.INTERRUPTED,
        error_code="interrupted",
        error_message=INTERRUPTED_MESSAGE,
        finished_at=timezone.now(),
    )
    Worker.objects.filter(seen_at__lt=timezone.now() - timedelta(days=1)).delete()
    log.warning("marked %d orphaned run(s) interrupted", len(message_ids))
    return message_ids


def runs_orphaned(
    *, live_worker_id: uuid.UUID, stale_after: float, hostname: str
) -> list[uuid.UUID]:
    """The active messages whose worker is gone: not seen for `stale_after` seconds, or at
    once when it ran on this host and its process no longer exists (a restart after a crash
    need not wait)."""
    recent = Worker.objects.filter(seen_at__gte=timezone.now() - timedelta(seconds=stale_after))
    alive = [
        worker.pk
        for worker in recent.only("id", "hostname", "pid")
        if worker.hostname != hostname or _process_exists(worker.pid)
    ]
    orphans = Message.objects.filter(status__in=Message.ACTIVE_STATUSES).exclude(
        worker_id__in=[live_worker_id, *alive]
    )
    return list(orphans.values_list("pk", flat=True))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True
