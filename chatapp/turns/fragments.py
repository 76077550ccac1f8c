"""The HTML a stream ends with: an answer's fragment exactly as the conversation page shows it
(`templates/chatapp/_message.html`), rendered once per answer by whoever ends its stream (the
run, the reaper, or a consumer that finds the answer already over)."""

from __future__ import annotations

from django.template.loader import render_to_string

from chatapp import rendering
from chatapp.conversations import tree
from chatapp.conversations.models import Message
from chatapp.providers import functions
from chatapp.providers.gemini import tools as gemini_tools

from .protocol import StreamEnd, terminal_event


def message_fragment(message: Message, *, is_last: bool = True, shell: bool = False) -> str:
    """The final HTML of a message, as the conversation page shows it, "2 / 3" included (one
    query, unless it is a new answer: `Message.versions_known`); a `shell` has an empty
    body marked `data-shell`, into which the page moves the blocks it already shows."""
    if not message.versions_known:
        tree.with_versions([message])
    return render_to_string(
        "chatapp/_message.html",
        {"message": message, "is_last": is_last, "live": True, "shell": shell},
    )


# The body of an answer's shell, exactly as `_message.html` writes it.
SHELL_BODY = '<div class="msg-body markdown" hx-disable data-shell></div>'


def stream_end(message: Message) -> StreamEnd:
    """The `stream.end` frame of a message in its final state. The shell is offered when the
    blocks a stream showed are exactly the final ones: not when a link cites a reference
    defined further down (rendering.render_markdown reads those first), nor when the answer
    has citation markers.

    One render for both: the fragment is the shell with its body filled, as the template
    would write it (a render of `_message.html` is ~0.5 ms of a turn's CPU)."""
    # Nor when the answer cites sources: its markers come with the end (the stream had none).
    marks = gemini_tools.citations(message.provider_extras)
    offer_shell = (
        bool(message.content)
        and not marks
        # Function calls are drawn with the end (the stream had none).
        and functions.CALLS_KEY not in message.provider_extras
        and not rendering.has_reference_definitions(message.content)
    )
    if not message.content:
        return {
            "type": "stream.end",
            "event": terminal_event(message.status),
            "html": message_fragment(message),
            "shell": "",
            "end": 0,
        }
    shell = message_fragment(message, shell=True)
    body = rendering.answer_html(
        message.content,
        message.content_html,
        message.html_version,
        marks,
        anchor=gemini_tools.anchor(message.id),
    )
    html = shell.replace(SHELL_BODY, f'<div class="msg-body markdown" hx-disable>{body}</div>', 1)
    return {
        "type": "stream.end",
        "event": terminal_event(message.status),
        "html": html,
        "shell": shell if offer_shell else "",
        "end": len(message.content),
    }
