"""Template helpers for messages. HTML itself is made only in chatapp.rendering."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.urls import get_script_prefix

from .. import rendering
from ..models import Message
from ..providers.catalog import ROUTE_LABELS

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
    "tool_calls": "tool call",
    "OTHER": "stopped by the provider",
    "other": "stopped by the provider",
    "stopped": "stopped by you",
}


@register.filter
def answer_html(message: Message):
    return rendering.answer_html(message.content, message.content_html, message.html_version)


@register.filter
def plain(text: str):
    return rendering.render_plain(text or "")


@register.filter
def finish_label(reason: str) -> str:
    return FINISH_LABELS.get(reason, reason.replace("_", " ").lower() if reason else "")


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


@register.filter
def field_named(form, name: str):
    return form[name]


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key, "")
