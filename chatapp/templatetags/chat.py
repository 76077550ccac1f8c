"""Template helpers for messages. HTML itself is made only in chatapp.rendering."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django import template
from django.urls import get_script_prefix

from .. import rendering
from ..models import Message
from ..providers.catalog import ROUTE_LABELS
from ..providers.gemini_wire import BLOCK_REASONS

register = template.Library()

# Finish reasons as upstreams spell them (OpenAI format and Gemini), in a person's words.
FINISH_LABELS = {
    "stop": "finished",
    "STOP": "finished",
    "length": "stopped: length limit",
    "MAX_TOKENS": "stopped: length limit",
    "content_filter": "blocked by safety filters",
    "SAFETY": "blocked by safety filters",
    "RECITATION": "blocked: recitation of a source",
    "LANGUAGE": "blocked: unsupported language",
    "BLOCKLIST": "blocked: forbidden terms",
    "PROHIBITED_CONTENT": "blocked: prohibited content",
    "SPII": "blocked: sensitive personal information",
    "MALFORMED_FUNCTION_CALL": "stopped: malformed function call",
    "IMAGE_SAFETY": "blocked: image flagged by safety filters",
    "IMAGE_PROHIBITED_CONTENT": "blocked: prohibited image content",
    "IMAGE_RECITATION": "blocked: image recitation of a source",
    "IMAGE_OTHER": "stopped: image generation failed",
    "NO_IMAGE": "stopped: no image made",
    "MODEL_ARMOR": "blocked by Model Armor",
    "UNEXPECTED_TOOL_CALL": "stopped: unexpected tool call",
    "TOO_MANY_TOOL_CALLS": "stopped: too many tool calls",
    "MISSING_THOUGHT_SIGNATURE": "stopped: missing thought signature",
    "MALFORMED_RESPONSE": "stopped: malformed response",
    "FINISH_REASON_UNSPECIFIED": "stopped by the provider",
    "tool_calls": "tool call",
    "OTHER": "stopped by the provider",
    "other": "stopped by the provider",
    "stopped": "stopped by you",
}

# A normal end: nothing to explain under the answer.
NORMAL_ENDINGS = frozenset({"", "stop", "STOP", "tool_calls"})

# Why an answer ended early, as the end of "No answer: ..." / "The answer stopped early: ...".
FINISH_EXPLANATIONS = {
    "length": "it reached the length limit (Max tokens; thinking counts towards it)",
    "MAX_TOKENS": "it reached the length limit (Max tokens; thinking counts towards it)",
    "content_filter": "the safety filters blocked it",
    "SAFETY": "the safety filters blocked it",
    "RECITATION": "it was too close to a source the model may not recite",
    "IMAGE_RECITATION": "an image was too close to a source the model may not reproduce",
    "LANGUAGE": "it was in a language the model does not support",
    "BLOCKLIST": "it contained terms on the provider's blocklist",
    "PROHIBITED_CONTENT": "it may contain prohibited content",
    "SPII": "it contained sensitive personal information",
    "IMAGE_SAFETY": "an image was flagged by the safety filters",
    "IMAGE_PROHIBITED_CONTENT": "an image may contain prohibited content",
    "IMAGE_OTHER": "image generation failed",
    "NO_IMAGE": "the model was to make an image but made none",
    "MODEL_ARMOR": "a Model Armor policy blocked it",
    "MALFORMED_FUNCTION_CALL": "the model wrote a malformed tool call",
    "UNEXPECTED_TOOL_CALL": "the model called a tool, but none was offered",
    "TOO_MANY_TOOL_CALLS": "the model called tools too many times in a row",
    "MISSING_THOUGHT_SIGNATURE": "a thought signature of an earlier turn was missing",
    "MALFORMED_RESPONSE": "the provider's response was malformed",
    "OTHER": "the provider stopped it without giving a reason",
    "other": "the provider stopped it without giving a reason",
    "FINISH_REASON_UNSPECIFIED": "the provider stopped it without giving a reason",
}
SAFETY_ENDINGS = frozenset({"SAFETY", "content_filter"})

# Safety ratings in a person's words (Gemini's HarmCategory, HarmProbability, HarmSeverity).
HARM_CATEGORY_WORDS = {
    "HARM_CATEGORY_HARASSMENT": "Harassment",
    "HARM_CATEGORY_HATE_SPEECH": "Hate speech",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT": "Sexually explicit",
    "HARM_CATEGORY_DANGEROUS_CONTENT": "Dangerous content",
    "HARM_CATEGORY_CIVIC_INTEGRITY": "Civic integrity",
    "HARM_CATEGORY_JAILBREAK": "Jailbreak",
    "HARM_CATEGORY_IMAGE_HATE": "Hate (image)",
    "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT": "Dangerous content (image)",
    "HARM_CATEGORY_IMAGE_HARASSMENT": "Harassment (image)",
    "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT": "Sexually explicit (image)",
    "HARM_CATEGORY_UNSPECIFIED": "Unspecified",
}
PROBABILITY_WORDS = {
    "NEGLIGIBLE": "negligible",
    "LOW": "low",
    "MEDIUM": "medium",
    "HIGH": "high",
    "HARM_PROBABILITY_UNSPECIFIED": "not rated",
}
# Upstream data shown as text: bounded, whatever a provider sends.
_MAX_RATINGS = 24
_MAX_WORDS = 80


@register.filter
def answer_html(message: Message):
    return rendering.answer_html(message.content, message.content_html, message.html_version)


@register.filter
def plain(text: str):
    return rendering.render_plain(text or "")


@register.filter
def finish_label(reason: str) -> str:
    return FINISH_LABELS.get(reason, reason.replace("_", " ").lower() if reason else "")


def _words(value: Any, known: Mapping[str, str], prefix: str = "") -> str:
    text = str(value)[:_MAX_WORDS]
    if text in known:
        return known[text]
    return text.removeprefix(prefix).replace("_", " ").lower()


@register.simple_tag
def ending_note(message: Message) -> str:
    """A sentence under a complete answer that ended for another reason than a normal stop
    (or has no text at all), so that no answer is ever an empty bubble."""
    if message.status != Message.Status.COMPLETE:
        return ""
    reason = message.finish_reason
    if reason in NORMAL_ENDINGS:
        return "" if message.content else "The model returned no text."
    explanation = FINISH_EXPLANATIONS.get(reason) or (
        f"the provider ended it ({finish_label(reason)})"
    )
    if message.content:
        note = f"The answer stopped early: {explanation}."
    else:
        note = f"No answer: {explanation}."
    if reason in SAFETY_ENDINGS and message.route == "gemini":
        note += " The safety settings in Settings can relax the filters."
    said = (message.provider_extras or {}).get("finish_message")
    if isinstance(said, str) and said.strip():
        note += f" The provider said: {said.strip()[:500]}"
    return note


def _ratings(value: Any) -> list[dict[str, str]]:
    rows = []
    for rating in value[:_MAX_RATINGS] if isinstance(value, list) else ():
        if not isinstance(rating, dict) or not rating.get("category"):
            continue
        level = rating.get("probability")
        severity = rating.get("severity")
        details = []
        if level:
            details.append(_words(level, PROBABILITY_WORDS) + " probability")
        if severity and severity != "HARM_SEVERITY_UNSPECIFIED":
            details.append(_words(severity, {}, "HARM_SEVERITY_") + " severity")
        rows.append(
            {
                "category": _words(rating["category"], HARM_CATEGORY_WORDS, "HARM_CATEGORY_"),
                "level": ", ".join(details) or "not rated",
                "blocked": "blocked" if rating.get("blocked") is True else "",
            }
        )
    return rows


@register.simple_tag
def safety_report(message: Message) -> dict[str, Any] | None:
    """What the "Safety ratings" disclosure under an answer shows: why the prompt was
    blocked, and the ratings of the prompt and of the answer (Gemini's `promptFeedback`
    and `safetyRatings`, kept in `provider_extras`). None when there is nothing to show."""
    extras = message.provider_extras if isinstance(message.provider_extras, dict) else {}
    feedback = extras.get("prompt_feedback")
    feedback = feedback if isinstance(feedback, dict) else {}
    block = ""
    reason = feedback.get("blockReason")
    if isinstance(reason, str) and reason:
        reason = reason[:_MAX_WORDS]
        block = f"{BLOCK_REASONS.get(reason, 'the provider refused it')} ({reason})"
    sections = []
    for title, ratings in (
        ("Your prompt", feedback.get("safetyRatings")),
        ("This answer", extras.get("safety_ratings")),
    ):
        rows = _ratings(ratings)
        if rows:
            sections.append({"title": title, "ratings": rows})
    if not block and not sections:
        return None
    return {"block": block, "sections": sections}


@register.filter
def route_label(route: str) -> str:
    return ROUTE_LABELS.get(route, route)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.2f} s" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _amount(value: Decimal) -> str:
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text or "0"


@register.simple_tag
def message_meta(message: Message) -> list[tuple[str, str]]:
    """(label, value) pairs for the line under an answer: model reported, tokens, credits,
    time to first token, duration, finish reason. Missing figures are left out."""
    items: list[tuple[str, str]] = []
    model = message.model_reported or message.model
    route = ROUTE_LABELS.get(message.route, message.route)
    items.append(("model", f"{route} · {model}" if model else route))
    tokens = []
    if message.prompt_tokens is not None:
        tokens.append(f"{message.prompt_tokens:,} in")
    if message.completion_tokens is not None:
        tokens.append(f"{message.completion_tokens:,} out")
    if message.reasoning_tokens:
        tokens.append(f"{message.reasoning_tokens:,} reasoning")
    if tokens:
        items.append(("tokens", " / ".join(tokens) + " tokens"))
    if message.credits_used is not None:
        items.append(("credits", f"{_amount(message.credits_used)} credits"))
    if message.usd_spent:
        items.append(("cost", f"${_amount(message.usd_spent)}"))
    if message.ttft_ms is not None:
        items.append(("ttft", f"first token {_seconds(message.ttft_ms)}"))
    if message.duration_ms is not None:
        items.append(("duration", _seconds(message.duration_ms)))
    if message.finish_reason:
        items.append(("finish", finish_label(message.finish_reason)))
    return items


@register.simple_tag
def stream_url(message: Message) -> str:
    """The SSE endpoint of a message (routed by chatapp.asgi, outside Django's URLconf), with
    the offset of the text the page already shows."""
    return f"{get_script_prefix()}stream/{message.id}/?after={len(message.content)}"
