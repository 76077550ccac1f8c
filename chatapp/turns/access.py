"""Stream passes: a short-lived signed token that lets a browser attach to one answer's stream
without the database (docs/SECURITY.md rule 9, docs/ARCHITECTURE.md "The cost of a turn").

The send response (and every page that shows an answer being written) puts a pass in the
answer's SSE URL. It names the person and expires `PASS_SECONDS` after it was made, and its
signature covers the person, the message and the session key, so it is good only for that
answer, in the browser whose session cookie it was made for. The consumer checks it with one
HMAC: no session row, no user row, no ownership query (together 6-7 ms of the 24 ms a turn
cost, bench "turn cost"). Without a good pass (an automatic reconnect after it expired, a tab
of another session that got the HTML through the conversation's live stream) the consumer
checks the session and the owner in the database, as before.
"""

from __future__ import annotations

import time
import uuid

from django.utils.crypto import constant_time_compare, salted_hmac

# Long enough for the browser to connect after the response that carries it arrives; an
# EventSource that reconnects later falls back to the session check.
PASS_SECONDS = 120
_SALT = "chatapp.turns.access.stream-pass"


def _signature(person_id: int, message_id: uuid.UUID, session_key: str, expires: int) -> str:
    value = f"{person_id}:{message_id.hex}:{session_key}:{expires}"
    return salted_hmac(_SALT, value, algorithm="sha256").hexdigest()[:32]


def stream_pass(
    *, person_id: int, message_id: uuid.UUID, session_key: str, now: float | None = None
) -> str:
    """A pass to the stream of `message_id` for this person in this session."""
    expires = int(now if now is not None else time.time()) + PASS_SECONDS
    return f"{person_id}.{expires}.{_signature(person_id, message_id, session_key, expires)}"


def pass_holder(
    token: str, *, message_id: uuid.UUID, session_key: str, now: float | None = None
) -> int | None:
    """The person a pass was made for, if it is good for this message and session now; None
    for anything else (malformed, expired, another message or session, forged)."""
    if not session_key or len(token) > 80:
        return None
    person, _, rest = token.partition(".")
    expires, _, signature = rest.partition(".")
    if not (person.isdigit() and expires.isdigit() and signature):
        return None
    if int(expires) < (now if now is not None else time.time()):
        return None
    expected = _signature(int(person), message_id, session_key, int(expires))
    return int(person) if constant_time_compare(signature, expected) else None
