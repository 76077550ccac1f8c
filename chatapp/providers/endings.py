"""Why an answer ended, in a person's words.

A message stores the neutral reason (`types.FinishReason`, or "stopped" when the person
pressed Stop) and keeps the upstream's own word in its provider extras (`finish_reason`). The
words come from the wire format that owns the raw word when it says more than the neutral
reason (Gemini's SPII, LANGUAGE, ...), else from the neutral reason itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import openai_compat
from .gemini import wire as gemini_wire
from .types import Ending

NEUTRAL: Mapping[str, Ending] = {
    "stop": Ending("finished"),
    "length": Ending(
        "stopped: length limit",
        "it reached the length limit (Max tokens; thinking counts towards it)",
    ),
    "safety": Ending("blocked by safety filters", "the safety filters blocked it", relaxable=True),
    "content_filter": Ending(
        "blocked by safety filters", "the safety filters blocked it", relaxable=True
    ),
    "recitation": Ending(
        "blocked: recitation of a source", "it was too close to a source the model may not recite"
    ),
    "tool_calls": Ending("tool call"),
    "other": Ending("stopped by the provider", "the provider stopped it without giving a reason"),
    "stopped": Ending("stopped by you"),
}
# A normal end: nothing to explain under the answer.
NORMAL = frozenset({"", "stop", "tool_calls"})

_KNOWN_RAW = frozenset(openai_compat.FINISH_REASONS) | frozenset(gemini_wire.FINISH_REASONS)
_MAX_RAW = 80


def describe(reason: str, raw: str = "") -> Ending:
    """The words for an answer that ended for `reason` (neutral), whose upstream said `raw`."""
    known = gemini_wire.FINISH_REASONS.get(raw)
    if known is not None and known[1] is not None:
        return known[1]
    if raw and raw not in _KNOWN_RAW:
        # A word no table knows yet (upstreams add reasons): say it as it came.
        words = raw[:_MAX_RAW].replace("_", " ").lower()
        return Ending(words, f"the provider ended it ({words})")
    return NEUTRAL.get(reason) or Ending(reason, f"the provider ended it ({reason})")
