"""The Gemini-native wire format, shared by Google's API (`google.py`) and Segmind
(`segmind.py`). Wire facts are in docs/PROTOCOLS.md §2 and §3.

Requests: `build_contents` turns the neutral history into `contents` (roles user/model,
consecutive same-role turns merged so that the two alternate, images as raw-base64
`inlineData`); `option_fields` places the neutral options where `params.PARAMETERS` says
(`generationConfig`, `safetySettings`). Each adapter wraps them in its own envelope.

Responses: `ResponseReader` turns `GenerateContentResponse` objects (stream chunks or one whole
body, and Segmind's older OpenAI-style body) into neutral events; `ErrorMapper` turns the
error bodies both routes send (`{"error": {code, status, message, details}}`, its list-wrapped
form, Segmind's `{"error": "..."}`) into the error tree.

Thought signatures are opaque strings. A part that arrives with one is recorded whole, with
the offset of its text in the answer, under `ProviderExtras({"gemini": {...}})`; on a later
turn to the same route and model that part is sent back exactly as it came - same text, same
keys, the signature string untouched (it is never decoded: re-encoding can change its
alphabet). Signed parts are never merged with other text. A signature from another route or
model is not sent: Gemini rejects foreign signatures ("Corrupted thought signature", 400).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson

from .. import functions, params
from ..base import Provider
from ..errors import (
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    MalformedResponseError,
    ModelUnavailableError,
    PromptBlockedError,
    ProviderError,
    RateLimitError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from ..logprobs import from_gemini
from ..params import WireFormat
from ..types import (
    CandidateDelta,
    CandidateFinish,
    ChatMessage,
    ChatRequest,
    Ending,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    Logprobs,
    ProviderExtras,
    ReasoningDelta,
    ResponseInfo,
    TextDelta,
    TextPart,
    Usage,
    json_copy,
)
from ..wire import (
    clip_detail,
    message_text,
    retry_after,
    seconds_until,
    shorten,
    status_code,
    text_reason,
)
from . import tools
from .safety import block_words, flagged_categories

# Gemini's finishReason -> the neutral reason, and words of its own where the neutral reason's
# words would say less (docs/PROTOCOLS.md §3). A message stores the neutral reason and keeps
# Gemini's word in its provider extras.
FINISH_REASONS: Mapping[str, tuple[FinishReason, Ending | None]] = {
    "STOP": ("stop", None),
    "MAX_TOKENS": ("length", None),
    "SAFETY": ("safety", None),
    "RECITATION": ("recitation", None),
    "OTHER": ("other", None),
    "FINISH_REASON_UNSPECIFIED": ("other", None),
    "IMAGE_RECITATION": (
        "recitation",
        Ending(
            "blocked: image recitation of a source",
            "an image was too close to a source the model may not reproduce",
        ),
    ),
    "LANGUAGE": (
        "other",
        Ending("blocked: unsupported language", "it was in a language the model does not support"),
    ),
    "BLOCKLIST": (
        "safety",
        Ending("blocked: forbidden terms", "it contained terms on the provider's blocklist"),
    ),
    "PROHIBITED_CONTENT": (
        "safety",
        Ending("blocked: prohibited content", "it may contain prohibited content"),
    ),
    "SPII": (
        "safety",
        Ending(
            "blocked: sensitive personal information",
            "it contained sensitive personal information",
        ),
    ),
    "IMAGE_SAFETY": (
        "safety",
        Ending(
            "blocked: image flagged by safety filters",
            "an image was flagged by the safety filters",
        ),
    ),
    "IMAGE_PROHIBITED_CONTENT": (
        "safety",
        Ending("blocked: prohibited image content", "an image may contain prohibited content"),
    ),
    "MODEL_ARMOR": (
        "safety",
        Ending("blocked by Model Armor", "a Model Armor policy blocked it"),
    ),
    "MALFORMED_FUNCTION_CALL": (
        "other",
        Ending("stopped: malformed function call", "the model wrote a malformed tool call"),
    ),
    "IMAGE_OTHER": (
        "other",
        Ending("stopped: image generation failed", "image generation failed"),
    ),
    "NO_IMAGE": (
        "other",
        Ending("stopped: no image made", "the model was to make an image but made none"),
    ),
    "UNEXPECTED_TOOL_CALL": (
        "other",
        Ending("stopped: unexpected tool call", "the model called a tool, but none was offered"),
    ),
    "TOO_MANY_TOOL_CALLS": (
        "other",
        Ending("stopped: too many tool calls", "the model called tools too many times in a row"),
    ),
    "MISSING_THOUGHT_SIGNATURE": (
        "other",
        Ending(
            "stopped: missing thought signature",
            "a thought signature of an earlier turn was missing",
        ),
    ),
    "MALFORMED_RESPONSE": (
        "other",
        Ending("stopped: malformed response", "the provider's response was malformed"),
    ),
}
# Segmind's older OpenAI-style body.
_OPENAI_FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
}

# Google's textual status -> HTTP status, for errors that arrive without one (mid-stream).
_RPC_STATUS: Mapping[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# ErrorInfo reasons that mean the key itself is wrong, whatever the status (Google sends an
# invalid key as 400 INVALID_ARGUMENT).
_KEY_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
    }
)
# Parts whose signature is not recorded as a text part's: function calls are recorded whole,
# signed or not, where they stand in the answer (`ResponseReader._call`), and so are code
# execution's parts, with the fence that stands for them in the text.
_NOT_TEXT_PARTS = frozenset(
    {
        "functionCall",
        "functionResponse",
        "executableCode",
        "codeExecutionResult",
        "inlineData",
        "fileData",
        "function_call",
        "function_response",
        "inline_data",
        "file_data",
    }
)

_BAD_REQUEST = (
    "The provider refused the request as invalid: check this conversation's settings and "
    "attachments."
)


# --- requests ---------------------------------------------------------------------------------


def build_contents(
    messages: Iterable[ChatMessage], *, route: str, model: str
) -> list[dict[str, Any]]:
    """The history as Gemini `contents`. `route` and `model` are where the request goes: the
    thought signatures of an earlier answer are sent back only to the route and model that
    produced them."""
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant":
            role, parts = "model", _model_parts(message, route=route, model=model)
        elif message.role == "tool":
            role, parts = "user", _response_parts(message)
        else:
            role, parts = "user", _user_parts(message)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            # Gemini wants user and model turns to alternate (a failed answer leaves two user
            # turns in a row). Parts stay separate: a signed part keeps its exact text.
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _user_parts(message: ChatMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            parts.append(inline_data(part))
        elif isinstance(part, TextPart) and part.text:
            parts.append({"text": part.text})
    return parts


def inline_data(part: ImagePart) -> dict[str, Any]:
    """Raw base64, no `data:` prefix (docs/PROTOCOLS.md §2, §3)."""
    return {
        "inlineData": {
            "mimeType": part.mime_type,
            "data": base64.b64encode(part.data).decode("ascii"),
        }
    }


def _model_parts(message: ChatMessage, *, route: str, model: str) -> list[dict[str, Any]]:
    text = message.text
    parts: list[dict[str, Any]] = []
    records = signed_parts_for(message.extras, route=route, model=model)
    replayed = _replay(text, records) if records else None
    if replayed is not None:
        parts.extend(replayed)
    elif text:
        parts.append({"text": text})
    calls = functions.calls_of(message.extras) if functions.CALLS_KEY in message.extras else []
    if calls and not any("functionCall" in part for part in parts):
        # Calls made by another model (or whose records did not fit): sent as calls, unsigned.
        parts.extend(_call_part(call) for call in calls)
    parts.extend(inline_data(p) for p in message.parts if isinstance(p, ImagePart))
    return parts


def _call_part(call: functions.Call) -> dict[str, Any]:
    body: dict[str, Any] = {"name": call["name"], "args": json.loads(call["arguments"])}
    if call["id"]:
        body["id"] = call["id"]
    return {"functionCall": body}


def _response_parts(message: ChatMessage) -> list[dict[str, Any]]:
    """The results a person typed, one `functionResponse{name, response, id?}` part per call
    (docs/PROTOCOLS.md §3b); a result that is not a JSON object goes under "result"."""
    parts = []
    for result in functions.results_of(message.extras):
        body: dict[str, Any] = {
            "name": result["name"],
            "response": functions.response_object(result["content"]),
        }
        if result["id"]:
            body["id"] = result["id"]
        parts.append({"functionResponse": body})
    return parts


def signed_parts_for(extras: Mapping[str, Any], *, route: str, model: str) -> list[Any]:
    """The recorded signed parts of an answer, if it came from this route and model."""
    gemini = extras.get("gemini") if extras else None
    if not isinstance(gemini, Mapping):
        return []
    if gemini.get("route") != route or gemini.get("model") != model:
        return []
    parts = gemini.get("parts")
    return list(parts) if isinstance(parts, list | tuple) else []


def _replay(text: str, records: list[Any]) -> list[dict[str, Any]] | None:
    """The answer as parts: each signed part exactly as received, at its offset; the text
    between them as plain parts. None if the records do not fit the text (then no signature
    is sent, which Gemini accepts for plain text turns)."""
    parts: list[dict[str, Any]] = []
    position = 0
    after_code = False
    for record in records:
        if not isinstance(record, Mapping):
            return None
        at = record.get("at")
        if type(at) is not int or not position <= at <= len(text):
            return None
        part = {str(key): value for key, value in record.items() if key != "at"}
        fence = tools.code_fence(part)
        if at > position:
            gap = text[position:at]
            # The line break the reader put before a fence is the app's, not the model's: a
            # part of whitespace alone beside a code part is not sent.
            if fence is not None and gap.endswith("\n"):
                gap = gap[:-1]
            if gap.strip() or not (after_code or fence is not None):
                parts.append({"text": gap})
            position = at
        after_code = fence is not None
        if fence is not None:
            # Code run by the model goes back as the part it came as, in place of its fence.
            if text[at : at + len(fence)] != fence:
                return None
            parts.append(part)
            position = at + len(fence)
            continue
        if part.get("thought") is True:
            # A thought summary is not part of the answer text: it is echoed on its own.
            parts.append(part)
            continue
        segment = part.get("text", "")
        if not isinstance(segment, str) or text[at : at + len(segment)] != segment:
            return None
        parts.append(part)
        position = at + len(segment)
    if position < len(text) and (text[position:].strip() or not after_code):
        parts.append({"text": text[position:]})
    return parts


def system_instruction(system: str, *, parts_as_object: bool = False) -> dict[str, Any] | None:
    """`{"parts": [{"text": ...}]}`; Segmind documents the single-object form
    `{"parts": {"text": ...}}`, which Google's own REST examples also use."""
    if not system.strip():
        return None
    part = {"text": system}
    return {"parts": part if parts_as_object else [part]}


def option_fields(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options' fields of a Gemini request: `generationConfig` and `safetySettings`, as
    the parameter registry places them. Raises BadRequestError, before any network I/O, for
    options Gemini refuses together (a thinking budget and a thinking level)."""
    try:
        return params.wire_fields(options, "gemini")
    except params.ParameterConflict as exc:
        raise BadRequestError(f"{str(exc).rstrip('.')} (Gemini refuses both).") from None


# --- responses --------------------------------------------------------------------------------


class ResponseReader:
    """Events from `GenerateContentResponse` objects: stream chunks fed one by one, or one
    whole body. Candidate 0 is the answer; with candidateCount > 1 the others are separate
    answers, each read apart by its index as `CandidateDelta`/`CandidateFinish` events.

    What it yields as `ProviderExtras` (cumulative, so a shallow or deep merge ends the same):
    - `gemini`: `{route, model, parts: [...]}` - signed parts to echo on later turns;
    - `safety_ratings`, `citation_metadata`, `finish_message` of the candidate, as sent;
    - `prompt_feedback` as sent (block reason and the prompt's safety ratings);
    - `grounding` and `url_context`: what Google Search and URL context left, checked and
      bounded (`tools.grounding`, `tools.url_context`).

    Code execution's `executableCode` and `codeExecutionResult` parts become text: each one's
    fence (`tools.code_fence`), in order with the text around it, and the part is recorded
    with the signed ones so that a later turn sends it back in its place.
    """

    def __init__(self, *, route: str, model: str, errors: ErrorMapper, candidates: int = 1) -> None:
        self.route = route
        self.model = model
        self.errors = errors
        # candidateCount asked for: candidates 1.. of it come as CandidateDelta events.
        self.candidates = candidates
        self.finished: set[int] = set()  # the other candidates that have ended
        self.info_sent = False
        self.length = 0  # characters of answer text so far
        self.finish: str | None = None
        self.block_reason: str | None = None
        self.signed: list[dict[str, Any]] = []
        self.calls: list[functions.Call] = []  # functionCall parts read (several: parallel)
        self.extras: dict[str, Any] = {}
        self.last_usage: Usage | None = None
        self.seen = False  # anything at all was read
        # Built-in tools (tools.py): where Gemini's text parts sit in the answer, the last
        # grounding metadata and the answer's length when it was read, the answer's last
        # character (a fence starts on a line of its own).
        self.text_map = tools.TextMap()
        self._grounding: Any = None
        self._grounded_at = -1
        self._last_char = ""

    @property
    def request_id(self) -> str | None:
        return self.errors.request_id

    # -- input --

    def feed_data(self, data: bytes) -> list[Event]:
        """One SSE `data:` payload."""
        stripped = data.strip()
        if not stripped or stripped == b"[DONE]":
            return []
        try:
            value = orjson.loads(data)  # the per-chunk hot path
        except ValueError:
            events = self._split_lines(data)
            if events is None:
                raise self.errors.malformed(data) from None
            return events
        return self.feed(value, data)

    def feed_body(self, raw: bytes) -> list[Event]:
        """A whole JSON body: one response, or a list of them (`streamGenerateContent`
        without `alt=sse` answers a JSON array)."""
        try:
            value = json.loads(raw)
        except ValueError:
            raise self.errors.malformed(raw) from None
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            if "error" in value[0]:
                raise self.errors.from_body(None, value, raw.decode("utf-8", "replace"))
            events: list[Event] = []
            for item in value:
                events.extend(self.feed(item, raw))
            return events
        return self.feed(value, raw)

    def feed(self, response: Any, raw: bytes = b"") -> list[Event]:
        if type(response) is not dict:
            raise self.errors.malformed(raw or json.dumps(response).encode())
        if response.get("error"):
            raise self.errors.from_body(None, response, raw.decode("utf-8", "replace"))
        self.seen = True
        events: list[Event] = []
        if not self.info_sent and (response.get("responseId") or response.get("modelVersion")):
            self.info_sent = True
            events.append(
                ResponseInfo(
                    request_id=self.request_id,
                    response_id=self._str(response.get("responseId")),
                    model=self._str(response.get("modelVersion")),
                )
            )
        changed = False
        candidates = response.get("candidates")
        if isinstance(candidates, list):
            for candidate in candidates:
                if type(candidate) is not dict:
                    continue
                # JSON from protobuf leaves out a zero: candidate 0 often has no index.
                index = candidate.get("index", 0)
                if index == 0:
                    changed |= self._candidate(candidate, events)
                elif type(index) is int and 0 < index < self.candidates:
                    # Another answer of the same request, by its index; never mixed in.
                    self._other(index, candidate, events)
        elif isinstance(response.get("choices"), list):
            self._choices(response, events)
        feedback = response.get("promptFeedback")
        if isinstance(feedback, dict) and feedback:
            if self.extras.get("prompt_feedback") != feedback:
                self.extras["prompt_feedback"] = json_copy(feedback)
                changed = True
            reason = feedback.get("blockReason")
            if isinstance(reason, str) and reason:
                self.block_reason = reason
        usage = response.get("usageMetadata")
        if isinstance(usage, dict):
            self._usage(
                Usage(
                    prompt_tokens=_int(usage.get("promptTokenCount")),
                    completion_tokens=_int(usage.get("candidatesTokenCount")),
                    reasoning_tokens=_int(usage.get("thoughtsTokenCount")),
                    total_tokens=_int(usage.get("totalTokenCount")),
                ),
                events,
            )
        if changed:
            events.append(ProviderExtras(self.snapshot()))
        return events

    def _candidate(self, candidate: dict[str, Any], events: list[Event]) -> bool:
        changed = False
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if type(part) is not dict:
                continue
            fence = tools.code_fence(part)
            if fence is not None:
                self._code(part, fence, events)
                changed = True
                continue
            if "functionCall" in part:
                changed |= self._call(part)
                continue
            text = part.get("text")
            text = text if isinstance(text, str) else ""
            thought = part.get("thought") is True
            signature = part.get("thoughtSignature", part.get("thought_signature"))
            if isinstance(signature, str) and signature and not _NOT_TEXT_PARTS & part.keys():
                # Recorded whole, before its text is counted: `at` is where the text starts.
                self.signed.append({"at": self.length, **json_copy(part)})
                changed = True
            if not text:
                continue
            if thought:
                self.text_map.other("thought")
                events.append(ReasoningDelta(text))
            else:
                self.text_map.text(self.length, text)
                events.append(TextDelta(text))
                self.length += len(text)
                self._last_char = text[-1]
        result = candidate.get("logprobsResult")
        if result:
            tokens = from_gemini(result)
            if tokens:
                events.append(Logprobs(tokens))
        changed |= self._tool_metadata(candidate)
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason:
            self.finish = reason
        for wire, key in (
            ("safetyRatings", "safety_ratings"),
            ("citationMetadata", "citation_metadata"),
            ("finishMessage", "finish_message"),
        ):
            value = candidate.get(wire)
            if value and self.extras.get(key) != value:
                self.extras[key] = json_copy(value)
                changed = True
        return changed

    def _call(self, part: dict[str, Any]) -> bool:
        """A `functionCall` part: checked and bounded (`functions.gemini_call`), kept as a
        call, and recorded whole where it stands, its `thoughtSignature` untouched, so that
        the next request of the turn sends the model's content back exactly as it came."""
        call = functions.gemini_call(part)
        if call is None or len(self.calls) >= functions.MAX_CALLS:
            return False
        self.calls.append(call)
        self.signed.append({"at": self.length, **json_copy(part)})
        return True

    def _other(self, index: int, candidate: dict[str, Any], events: list[Event]) -> None:
        """Candidate `index` (1 or more): its text and thoughts, log probabilities and finish.
        Its thought signatures and ratings are not kept: a later turn sends a text answer
        without signatures, which Gemini accepts."""
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        text: list[str] = []
        thoughts: list[str] = []
        for part in parts if isinstance(parts, list) else ():
            piece = part.get("text") if type(part) is dict else None
            if isinstance(piece, str) and piece:
                (thoughts if part.get("thought") is True else text).append(piece)
        if text or thoughts:
            events.append(CandidateDelta(index, "".join(text), "".join(thoughts)))
        result = candidate.get("logprobsResult")
        if result:
            tokens = from_gemini(result)
            if tokens:
                events.append(Logprobs(tokens, index))
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason and index not in self.finished:
            self.finished.add(index)
            known = FINISH_REASONS.get(reason)
            neutral = known[0] if known else _OPENAI_FINISH_REASONS.get(reason, "other")
            events.append(CandidateFinish(index, neutral, reason))

    def _code(self, part: dict[str, Any], fence: str, events: list[Event]) -> None:
        """A code part as its fence, on a line of its own, recorded for later turns."""
        if self.length and self._last_char != "\n":
            events.append(TextDelta("\n"))
            self.length += 1
        self.signed.append({"at": self.length, **json_copy(part)})
        self.text_map.other("code")
        events.append(TextDelta(fence))
        self.length += len(fence)
        self._last_char = "\n"

    def _tool_metadata(self, candidate: dict[str, Any]) -> bool:
        changed = False
        raw = candidate.get("groundingMetadata")
        if raw is not None:
            self._grounding = json_copy(raw)
            changed |= self._place_grounding()
        found = tools.url_context(candidate.get("urlContextMetadata"))
        if found is not None and self.extras.get("url_context") != found:
            self.extras["url_context"] = found
            changed = True
        return changed

    def _place_grounding(self) -> bool:
        """The grounding metadata read against the text so far (its offsets point into it)."""
        self._grounded_at = self.length
        found = tools.grounding(self._grounding, self.text_map)
        if found is None or self.extras.get("grounding") == found:
            return False
        self.extras["grounding"] = found
        return True

    def _choices(self, body: dict[str, Any], events: list[Event]) -> None:
        """Segmind's older OpenAI-style body: `choices[0].message.content`."""
        for choice in body["choices"]:
            if type(choice) is not dict or choice.get("index", 0) != 0:
                continue
            message = choice.get("message") or choice.get("delta")
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                content = "".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
                )
            if isinstance(content, str) and content:
                events.append(TextDelta(content))
                self.length += len(content)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                self.finish = reason
        usage = body.get("usage")
        if isinstance(usage, dict):
            details = usage.get("completion_tokens_details")
            self._usage(
                Usage(
                    prompt_tokens=_int(usage.get("prompt_tokens")),
                    completion_tokens=_int(usage.get("completion_tokens")),
                    reasoning_tokens=_int(details.get("reasoning_tokens"))
                    if isinstance(details, dict)
                    else None,
                    total_tokens=_int(usage.get("total_tokens")),
                ),
                events,
            )
        if not self.info_sent and (body.get("id") or body.get("model")):
            self.info_sent = True
            events.insert(
                0,
                ResponseInfo(
                    request_id=self.request_id,
                    response_id=self._str(body.get("id")),
                    model=self._str(body.get("model")),
                ),
            )

    def _usage(self, usage: Usage, events: list[Event]) -> None:
        # Cumulative on the wire: each report replaces the last one whole.
        if usage != Usage() and usage != self.last_usage:
            self.last_usage = usage
            events.append(usage)

    def _split_lines(self, data: bytes) -> list[Event] | None:
        """Several JSON objects in one event without blank lines between them."""
        if b"\n" not in data:
            return None
        values = []
        for line in data.split(b"\n"):
            if line.strip():
                try:
                    values.append((json.loads(line), line))
                except ValueError:
                    return None
        events: list[Event] = []
        for value, line in values:
            events.extend(self.feed(value, line))
        return events

    def _str(self, value: Any) -> str | None:
        return None if value is None else self.errors.redact(str(value))

    # -- output --

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.signed:
            data["gemini"] = {
                "route": self.route,
                "model": self.model,
                "parts": [dict(part) for part in self.signed],
            }
        if self.calls:
            data[functions.CALLS_KEY] = [dict(call) for call in self.calls]
        data.update(json_copy(self.extras))
        return data

    def end(self, *, whole_body: bool) -> list[Event]:
        """The closing events once the response is over. `whole_body`: a complete JSON body
        (then no finishReason still means a normal end); for a stream, the finishReason in
        the last chunk is the only sign that the answer is complete."""
        events: list[Event] = []
        if not self.info_sent and self.request_id:
            self.info_sent = True
            events.append(ResponseInfo(request_id=self.request_id))
        # Text that came after the metadata may be where its offsets point.
        late = self._grounding is not None and self._grounded_at != self.length
        if late and self._place_grounding():
            events.append(ProviderExtras(self.snapshot()))
        if self.finish is None and self.length == 0 and self.block_reason:
            raise self.errors.prompt_blocked(self.block_reason, self.extras.get("prompt_feedback"))
        if self.finish is None:
            if not self.seen:
                raise self.errors.empty()
            if not whole_body:
                raise UpstreamConnectionError(
                    "The provider's stream ended before the answer was complete. Press Retry.",
                    upstream_request_id=self.request_id,
                )
            events.append(Finish(reason="stop", raw=""))
            return events
        raw = self.finish
        known = FINISH_REASONS.get(raw)
        reason = known[0] if known else _OPENAI_FINISH_REASONS.get(raw, "other")
        if self.calls and reason == "stop":
            reason = "tool_calls"  # Gemini ends a step of calls with STOP
        events.append(Finish(reason=reason, raw=raw))
        return events


# --- errors -----------------------------------------------------------------------------------


class ErrorMapper:
    """Error bodies and statuses of the Gemini-native routes -> the error tree, every message
    redacted and actionable."""

    def __init__(self, redact: Callable[[str], str], *, segmind: bool = False) -> None:
        self.redact = redact
        self.segmind = segmind
        self.request_id: str | None = None

    def detail(self, text: str) -> str:
        return clip_detail(self.redact(text))

    def malformed(self, raw: bytes) -> MalformedResponseError:
        return MalformedResponseError(
            upstream_request_id=self.request_id,
            detail=self.detail(raw.decode("utf-8", "replace")),
        )

    def empty(self) -> UpstreamError:
        return UpstreamError(
            "The provider ended its response without an answer or a reason. Press Retry.",
            upstream_request_id=self.request_id,
        )

    def prompt_blocked(self, reason: str, feedback: Any) -> PromptBlockedError:
        words = block_words(reason)
        flagged = flagged_categories(feedback)
        if flagged:
            words += f" ({', '.join(flagged)})"
        return PromptBlockedError(
            f"Your prompt was blocked: {words} [{reason}]. Rephrase it"
            + (", or relax the safety settings," if reason == "SAFETY" and not self.segmind else "")
            + " and send it again.",
            block_reason=reason,
            upstream_request_id=self.request_id,
            detail=self.detail(json.dumps(feedback) if feedback else reason),
        )

    def from_body(
        self,
        status: int | None,
        body: Any,
        text: str,
        headers: httpx.Headers | None = None,
    ) -> ProviderError:
        message, code, rpc_status, details = _error_fields(body)
        if message is None and text.strip() and not isinstance(body, dict | list):
            message = text_reason(text)
        effective = status
        if effective is None:
            effective = code if code is not None else _RPC_STATUS.get(rpc_status or "")
        reasons = {d.get("reason") for d in details if isinstance(d, dict)}
        reason = shorten(self.redact(message or ""))
        said = f" (upstream said: {reason})" if reason else ""
        wait = _retry_delay(details)
        if wait is None and headers is not None:
            wait = retry_after(headers.get("retry-after"))
            if wait is None:
                wait = _reset_at(headers.get("x-rate-limit-reset-at-utc"))

        cls: type[ProviderError]
        default: str | None = None
        if reasons & _KEY_REASONS or effective == 401:
            cls = AuthenticationError
        elif effective == 403:
            cls = AuthenticationError
            default = (
                "The provider refused this key for the request (permission denied). Check the "
                "key and that its project may use this model."
            )
        elif effective == 406:
            if "content-type" in (message or "").lower() or "content type" in (message or ""):
                cls = BadRequestError
                default = (
                    "The provider refused the request's content type (HTTP 406), though it "
                    "is JSON. Check this route's base URL: something in between may rewrite it."
                )
            else:
                cls = InsufficientCreditsError  # Segmind: not enough credits
        elif effective == 402:
            cls = InsufficientCreditsError
        elif effective == 405:
            cls = ModelUnavailableError
            default = (
                "The provider does not accept requests at this address (HTTP 405). Check the "
                "model and this route's base URL."
            )
        elif effective == 410:
            cls = ModelUnavailableError
            default = "The provider has retired this model. Choose another model."
        elif effective == 404:
            cls = ModelUnavailableError
        elif effective == 429:
            cls = RateLimitError
        elif effective in (408, 504):
            cls = UpstreamTimeout
            default = (
                "The provider took too long to answer. Press Retry, perhaps with a lower "
                "max tokens or thinking budget."
            )
        elif effective is not None and 300 <= effective < 400:
            return ProviderError(
                f"The provider answered with a redirect (HTTP {effective}), which is not "
                "followed. Check this route's base URL.",
                status=effective,
                upstream_request_id=self.request_id,
                detail=self.detail(text),
            )
        elif effective is not None and 400 <= effective < 500 and effective != 499:
            cls = BadRequestError
            default = _BAD_REQUEST
        else:
            cls = UpstreamError
        return cls(
            (default or cls.default_message) + said,
            status=effective,
            retry_after=wait,
            upstream_request_id=self.request_id,
            detail=self.detail(text),
        )


def _error_fields(body: Any) -> tuple[str | None, int | None, str | None, list[Any]]:
    """(message, code, status text, details) from `{"error": {...}}`, its list-wrapped form,
    Segmind's `{"error": "..."}` and `{"message": ...}`."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        return (body.strip() or None) if isinstance(body, str) else None, None, None, []
    error = body.get("error")
    if isinstance(error, dict):
        details = error.get("details")
        status = error.get("status")
        return (
            message_text(error.get("message")),
            status_code(error.get("code")),
            status if isinstance(status, str) else None,
            details if isinstance(details, list) else [],
        )
    message = (
        message_text(error) or message_text(body.get("message")) or message_text(body.get("detail"))
    )
    return message, status_code(body.get("code")) or status_code(body.get("statusCode")), None, []


def _retry_delay(details: list[Any]) -> float | None:
    """`RetryInfo.retryDelay`: a Duration, "37s" / "0.5s" in JSON, or {seconds, nanos}."""
    for detail in details:
        if not isinstance(detail, dict) or "retryDelay" not in detail:
            continue
        delay = detail["retryDelay"]
        try:
            if isinstance(delay, str):
                seconds = float(delay.strip().removesuffix("s"))
            elif isinstance(delay, dict):
                seconds = float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
            else:
                seconds = float(delay)
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _reset_at(value: str | None) -> float | None:
    """Segmind's `x-rate-limit-reset-at-utc` (its format is not documented): epoch seconds or
    milliseconds, ISO 8601 or an HTTP date -> seconds from now."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        stamp = float(text)
    except ValueError:
        return seconds_until(text)
    if not math.isfinite(stamp):
        return None
    if stamp > 1e11:  # milliseconds
        stamp /= 1000
    return max(0.0, stamp - datetime.now(UTC).timestamp())


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


# --- the adapters' shared plumbing ------------------------------------------------------------


class NativeProvider(Provider):
    """What the Google and Segmind adapters share: the client checks, the body parts, the
    mapping of transport failures. Each subclass owns its URL, headers and envelope."""

    wire_format: ClassVar[WireFormat] = "gemini"
    segmind: bool = False

    def contents(self, request: ChatRequest) -> list[dict[str, Any]]:
        return build_contents(request.messages, route=self.alias, model=request.model)

    def reader(self, request: ChatRequest, errors: ErrorMapper) -> ResponseReader:
        return ResponseReader(
            route=self.alias, model=request.model, errors=errors, candidates=request.candidates
        )

    def error_mapper(self) -> ErrorMapper:
        return ErrorMapper(self.redact, segmind=self.segmind)

    async def status_error(
        self, response: httpx.Response, errors: ErrorMapper, raw: bytes | None = None
    ) -> ProviderError:
        if raw is None:
            raw = await self.read_error_body(response)
        return self.error_from_raw(response.status_code, raw, response.headers, errors)

    def error_from_raw(
        self, status: int, raw: bytes, headers: httpx.Headers, errors: ErrorMapper
    ) -> ProviderError:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return errors.from_body(status, body, self.error_text(raw), headers)
