"""The HTML a stream ends with (turns.fragments): the final fragment is the page's own, and
the shell is that fragment with its body left for the page to fill."""

from __future__ import annotations

import pytest

from chatapp import rendering
from chatapp.conversations.models import Conversation, Message
from chatapp.turns.fragments import SHELL_BODY, message_fragment, stream_end
from tests.conftest import add_message

pytestmark = [pytest.mark.django_db]

ANSWERS = {
    "complete": ("Some **bold** text.\n\n```python\nprint('<hi>')\n```\n", Message.Status.COMPLETE),
    "stopped": ("Half an answer", Message.Status.STOPPED),
    "failed with text": ("Before the error", Message.Status.FAILED),
    "a reference below": (
        "See [the docs][1].\n\n[1]: https://example.com/",
        Message.Status.COMPLETE,
    ),
    "no text": ("", Message.Status.FAILED),
}


@pytest.mark.parametrize("case", ANSWERS)
def test_the_end_frame_carries_the_pages_fragment_and_its_shell(case: str, user):
    content, status = ANSWERS[case]
    conversation = Conversation.objects.create(owner=user, route="aimlapi", model="x")
    add_message(conversation, role="user", content="Hi")
    message = add_message(
        conversation,
        role="assistant",
        status=status,
        content=content,
        content_html=rendering.render_markdown(content) if content else "",
        html_version=rendering.RENDERER_VERSION,
        error_message="It failed." if status == Message.Status.FAILED else "",
    )
    end = stream_end(message)
    assert end["html"] == message_fragment(message)
    if content and case != "a reference below":
        assert end["shell"] == message_fragment(message, shell=True)
        assert SHELL_BODY in end["shell"]
    else:
        assert end["shell"] == ""
    assert end["end"] == len(content)
