"""The HTML a stream ends with: an answer's fragment exactly as the conversation page shows it
(`templates/chatapp/_message.html`), rendered once per answer by whoever ends its stream (the
run, the reaper, or a consumer that finds the answer already over)."""

from __future__ import annotations

from django.template.loader import render_to_string

from chatapp.conversations.models import Message

from .protocol import StreamEnd, terminal_event


def message_fragment(message: Message, *, is_last: bool = True) -> str:
    """The final HTML of a message, as the conversation page shows it."""
    return render_to_string(
        "chatapp/_message.html", {"message": message, "is_last": is_last, "live": True}
    )


def stream_end(message: Message) -> StreamEnd:
    """The `stream.end` frame of a message in its final state."""
    return {
        "type": "stream.end",
        "event": terminal_event(message.status),
        "html": message_fragment(message),
        "end": len(message.content),
    }
