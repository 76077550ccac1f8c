"""Provider-neutral values: what a turn asks for and what an upstream streams back.

These are frozen dataclasses, separate from the ORM rows (`chatapp.models`), so that adapters
never import models and a request can be built, logged and tested without a database.
Adapters translate them to and from their wire format; nothing else knows a wire format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# "tool": the results a person typed for the calls of the answer before it
# (`extras["function_results"]`, providers/functions.py).
Role = Literal["user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """A validated, normalised image (see `chatapp.images`).

    `data` holds the raw bytes of the stored file; each adapter encodes them in the form its
    route expects (a `data:` URI for the OpenAI format, raw base64 `inlineData` for Gemini).
    """

    mime_type: str
    data: bytes
    width: int = 0
    height: int = 0


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One earlier turn of the conversation, as the model will see it.

    `extras` carries what a provider asked us to echo back on later turns, opaque and
    unmodified - e.g. `{"google": {"thought_signature": "..."}}` on assistant turns.
    """

    role: Role
    parts: tuple[Part, ...]
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))

    @classmethod
    def of_text(cls, role: Role, text: str, **extras: Any) -> ChatMessage:
        return cls(role=role, parts=(TextPart(text),), extras=extras)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything an adapter needs for one generation.

    `options` holds only the parameters the person set, under the neutral names of
    `params.PARAMETERS`, already validated against the model's ranges (`catalog.validate_options`).
    Adapters place them with `params.wire_fields` and send nothing else.
    `request_id` is our id for the turn (the assistant message's UUID), sent upstream where the
    protocol has a place for it so both sides can be reconciled.
    """

    model: str
    messages: tuple[ChatMessage, ...]
    system: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    request_id: str = ""

    @property
    def candidates(self) -> int:
        """How many answers the request asks for (params "candidate_count"): the first
        streams as the answer, the others come as `CandidateDelta` events."""
        count = self.options.get("candidate_count")
        return count if type(count) is int and count > 1 else 1


# --- Events an adapter yields, in order ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """Identifiers of the upstream response, yielded as soon as they are known.

    `request_id` is the upstream's billing/trace reference (AI/ML API's `x-inference-id`);
    `response_id` the id in the body; `model` the model name the upstream reports, which may
    be spelled differently from the one requested.
    """

    request_id: str | None = None
    response_id: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token and cost figures exactly as the upstream sent them: none is derived from another,
    because upstreams disagree on whether `total` includes reasoning tokens."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    credits_used: float | None = None
    usd_spent: float | None = None


# Why an upstream stopped, in neutral words. A message stores one of these (or "stopped" when
# the person pressed Stop); the upstream's own word is kept in its provider extras.
FinishReason = Literal[
    "stop", "length", "safety", "content_filter", "recitation", "tool_calls", "other"
]


@dataclass(frozen=True, slots=True)
class Finish:
    """Why the upstream stopped: `reason` is neutral, `raw` the upstream's own word."""

    reason: FinishReason
    raw: str = ""


@dataclass(frozen=True, slots=True)
class Ending:
    """Why an answer ended, in a person's words: `label` for the line under the answer,
    `explanation` to end "The answer stopped early: ..." (empty for a normal end), and whether
    the model's safety settings can change that outcome."""

    label: str
    explanation: str = ""
    relaxable: bool = False


@dataclass(frozen=True, slots=True)
class ProviderExtras:
    """Provider data to keep on the message and, where the protocol requires, echo back on the
    next turn (e.g. Gemini thought signatures). Merged into `Message.provider_extras`."""

    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Status:
    """A short human-readable progress note (e.g. "waiting for Segmind"), shown while no text
    has arrived. Not part of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One token of an answer with its log probability and the most likely alternatives at
    its place (token, log probability), as the upstream reported them, checked
    (`providers.logprobs`)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Logprobs:
    """Token log probabilities of a piece of candidate `index`'s text (0: the answer that
    streams), when they were asked for (params "logprobs")."""

    tokens: tuple[TokenLogprob, ...]
    index: int = 0


@dataclass(frozen=True, slots=True)
class CandidateDelta:
    """Text (or reasoning) of another candidate of the same request (params
    "candidate_count": AI/ML API's `n`, Gemini's `candidateCount`), by its `index` (1 or more;
    candidate 0 streams as `TextDelta`). Never mixed into the answer: the run keeps each
    candidate apart and saves it as another version of the answer."""

    index: int
    text: str = ""
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class CandidateFinish:
    """Why another candidate ended (as `Finish`, for candidate `index`)."""

    index: int
    reason: FinishReason
    raw: str = ""


Event = (
    ResponseInfo
    | TextDelta
    | ReasoningDelta
    | Usage
    | Finish
    | ProviderExtras
    | Status
    | Logprobs
    | CandidateDelta
    | CandidateFinish
)


# --- Provider data ----------------------------------------------------------------------------


def json_copy(value: Any) -> Any:
    """A plain JSON-able copy (mappings and tuples become dicts and lists)."""
    if isinstance(value, Mapping):
        return {str(k): json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_copy(v) for v in value]
    return value


def deep_merge(target: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Merge `new` into `target`, nested mappings key by key, everything else replaced."""
    for key, value in new.items():
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            deep_merge(current, value)
        else:
            target[key] = json_copy(value)
