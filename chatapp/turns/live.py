"""A conversation's open pages kept in step: the SSE endpoint `/stream/c/<conversation>/` that
each page of a saved conversation holds, and the publisher the turn views call. A second tab
sees a message sent from the first as it is sent, and its answer streams there too (the page
attaches to the answer's own stream)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.conf import settings
from django.contrib.auth.models import User

from chatapp.conversations.models import Conversation
from chatapp.core.db import db

from . import manager
from .consumer import SSEConsumer, session_user
from .protocol import (
    SSE_HEADERS,
    SSE_HEARTBEAT,
    SSE_LIVE,
    SSE_OPEN,
    ConversationTitle,
    ConversationTurn,
    SessionEnded,
    conversation_group,
    session_group,
    sse_event,
)

# Longest tab id a page may give (app.js makes 16 hex characters).
TAB_MAX_CHARS = 40


def publish_turn(
    *,
    conversation_id: uuid.UUID,
    html: str,
    tab: str,
    replaces: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
) -> None:
    """Tell the conversation's other open pages (from a synchronous view): a new turn that
    follows the message `after` (a page showing another branch leaves it out), or articles
    that take the place of the message `replaces` and all that followed it (a page that does
    not show it leaves them out)."""
    frame: ConversationTurn = {
        "type": "conversation.turn",
        "html": html,
        "replaces": f"m-{replaces}" if replaces else "",
        "after": f"m-{after}" if after else "",
        "tab": tab[:TAB_MAX_CHARS],
    }
    manager.group_send(conversation_group(conversation_id), frame)


def _authorise(session_key: str, conversation_id: uuid.UUID) -> tuple[User | None, bool]:
    """The session's person, and whether the conversation is theirs."""
    user = session_user(session_key)
    if user is None:
        return None, False
    return user, Conversation.objects.filter(pk=conversation_id, owner=user).exists()


class ConversationStreamConsumer(SSEConsumer):
    """`turn` events for one page of a conversation, with heartbeats; it ends when the person
    logs out (their session's group), like an answer's stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tab = ""

    async def handle(self, body: bytes) -> None:
        if not self._host_allowed():
            await self._respond(400, b"Bad host")
            return
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        session_key = self._cookie(settings.SESSION_COOKIE_NAME)
        user, owned = await db(_authorise, session_key, conversation_id)
        if user is None:
            await self._respond(403, b"Log in to follow this conversation.")
            return
        if not owned:
            await self._respond(404, b"Not found")
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.tab = (query.get("tab") or [""])[0][:TAB_MAX_CHARS]
        await self.send_headers(status=200, headers=SSE_HEADERS)
        self._hold(SSE_OPEN)
        await self._join(conversation_group(conversation_id))
        if session_key:
            await self._join(session_group(session_key))
        await self._send(SSE_LIVE)
        self.ticker = asyncio.create_task(self._heartbeats())

    async def conversation_turn(self, frame: ConversationTurn) -> None:
        if frame["tab"] and frame["tab"] == self.tab:
            return  # the page that sent it shows it already
        # The first line says where the articles go; the HTML follows.
        head = orjson.dumps({"replaces": frame["replaces"], "after": frame["after"]}).decode()
        await self._send(sse_event("turn", f"{head}\n{frame['html']}"))

    async def conversation_title(self, frame: ConversationTitle) -> None:
        await self._send(sse_event("title", orjson.dumps({"title": frame["title"]}).decode()))

    async def session_ended(self, frame: SessionEnded) -> None:
        await self._close()

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        heartbeat = settings.SSE_HEARTBEAT_SECONDS
        while not self.finished:
            await asyncio.sleep(heartbeat / 2)
            if loop.time() - self.last_sent >= heartbeat:
                await self._send(SSE_HEARTBEAT)
