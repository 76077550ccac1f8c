"""Template helpers for messages. HTML itself is made only in `chatapp.rendering`; words about
why an answer ended and about Gemini's safety ratings come from the provider layer, which owns
each upstream's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django import template
from django.templatetags.static import static
from django.urls import get_script_prefix
from django.utils.safestring import SafeString

from chatapp import rendering
from chatapp.conversations.models import Message
from chatapp.providers import catalog, endings, functions, logprobs, prices, structured
from chatapp.providers.gemini import safety
from chatapp.providers.gemini import tools as gemini_tools
from chatapp.providers.types import Ending
from chatapp.turns.access import stream_pass

register = template.Library()


def _ending(message: Message) -> Ending:
    extras = message.provider_extras if isinstance(message.provider_extras, dict) else {}
    raw = extras.get("finish_reason")
    return endings.describe(message.finish_reason, raw if isinstance(raw, str) else "")


@dataclass(frozen=True, slots=True)
class CallShown:
    """One function call of an answer, as the page shows it: named "Function call: <name>",
    its arguments as formatted JSON, and its result's field ("Result for <name>"); a name
    called twice in one step is numbered, so each label stays unique."""

    name: str
    label: str
    arguments: str


@register.simple_tag
def function_calls(message: Message) -> list[CallShown]:
    calls = functions.calls_of(message.provider_extras)
    seen: dict[str, int] = {}
    shown = []
    for call in calls:
        seen[call["name"]] = seen.get(call["name"], 0) + 1
        count = seen[call["name"]]
        label = call["name"] if count == 1 else f"{call['name']} ({count})"
        shown.append(CallShown(call["name"], label, functions.pretty_arguments(call)))
    return shown


@register.simple_tag
def function_results(message: Message) -> list[functions.Result]:
    if functions.RESULTS_KEY not in message.provider_extras:
        return []
    return functions.results_of(message.provider_extras)


@register.filter
def answer_html(message: Message) -> SafeString:
    return rendering.answer_html(
        message.content,
        message.content_html,
        message.html_version,
        gemini_tools.citations(message.provider_extras),
        anchor=gemini_tools.anchor(message.id),
    )


@dataclass(frozen=True, slots=True)
class ToolsShown:
    """What an answer's built-in tools left, as the page shows it (`_message.html`)."""

    report: gemini_tools.ToolReport | None
    anchor: str
    # Google's search suggestions as a whole document for a sandboxed frame's `srcdoc`
    # (docs/SECURITY.md rule 18): autoescaped into the attribute, never markup of the page.
    suggestions: str
    # Google Search was on, but no sources came with the answer (it happens: docs/PROTOCOLS.md).
    searched_without_sources: bool


# The frame's document: links open in a new tab (the sandbox lets no link navigate the page),
# and a stylesheet of this app's for Google's chips, as the page's CSP allows no inline style.
_SUGGESTIONS_DOCUMENT = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><base target="_blank">'
    '<link rel="stylesheet" href="{css}"></head><body>{content}</body></html>'
)


@register.simple_tag
def tools_shown(message: Message) -> ToolsShown | None:
    """None when the answer has nothing from a tool and was not asked for with Google Search."""
    report = gemini_tools.report(message.provider_extras)
    searched = gemini_tools.searched(message.request_options)
    if report is None and not searched:
        return None
    suggestions = ""
    if report is not None and report.entry_point:
        suggestions = _SUGGESTIONS_DOCUMENT.format(
            css=static("chatapp/search-suggestions.css"), content=report.entry_point
        )
    return ToolsShown(
        report=report,
        anchor=gemini_tools.anchor(message.id),
        suggestions=suggestions,
        searched_without_sources=searched
        and message.status == Message.Status.COMPLETE
        and (report is None or not report.sources),
    )


@register.simple_tag
def json_answer(message: Message) -> structured.JsonAnswer | None:
    """An answer asked for as JSON (the response format frozen on it): formatted, and whether
    it is JSON and matches its schema; None for any other answer."""
    options = message.request_options or {}
    if options.get("response_format") not in ("json", "json_schema") or not message.content:
        return None
    schema = options.get("json_schema") if options.get("response_format") == "json_schema" else None
    return structured.check_answer(message.content, schema if isinstance(schema, dict) else None)


@register.filter
def plain(text: str) -> SafeString:
    return rendering.render_plain(text or "")


@register.simple_tag
def ending_note(message: Message) -> str:
    """A sentence under a complete answer that ended for another reason than a normal stop
    (or has no text at all), so that no answer is ever an empty bubble."""
    if message.status != Message.Status.COMPLETE:
        return ""
    if message.finish_reason in endings.NORMAL:
        return "" if message.content else "The model returned no text."
    ending = _ending(message)
    if message.content:
        note = f"The answer stopped early: {ending.explanation}."
    else:
        note = f"No answer: {ending.explanation}."
    spec = catalog.find_model(message.route, message.model)
    if ending.relaxable and spec is not None and "safety_settings" in spec.ranges:
        note += " The safety settings in Settings can relax the filters."
    said = (message.provider_extras or {}).get("finish_message")
    if isinstance(said, str) and said.strip():
        note += f" The provider said: {said.strip()[:500]}"
    return note


@register.simple_tag
def safety_report(message: Message) -> safety.SafetyReport | None:
    """What the "Safety ratings" disclosure under an answer shows (None: nothing)."""
    return safety.report(message.provider_extras)


@register.simple_tag
def token_probabilities(message: Message) -> logprobs.Report | None:
    """What the "Token probabilities" disclosure under an answer shows (None: nothing)."""
    return logprobs.report(message.provider_extras)


def _candidate(message: Message) -> str:
    """Which candidate of its request an answer is, and where the request's usage is."""
    extras = message.provider_extras if isinstance(message.provider_extras, dict) else {}
    candidate = extras.get("candidate")
    if not isinstance(candidate, dict):
        return ""
    index, count = candidate.get("index"), candidate.get("of")
    if type(index) is not int or type(count) is not int or not 0 <= index < count:
        return ""
    if index == 0:
        return f"candidate 1 of {count} · usage for all {count}"
    return f"candidate {index + 1} of {count} · usage counted on candidate 1"


@register.filter
def route_label(route: str) -> str:
    return catalog.ROUTE_LABELS.get(route, route)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.2f} s" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _amount(value: Decimal) -> str:
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text or "0"


@register.simple_tag
def message_meta(message: Message) -> SafeString:
    """The line under an answer, a span per figure: model reported, tokens, credits, time to
    first token, duration, why it ended. Missing figures are left out. One string from the
    renderer, not a loop in the template: the loop was ~a quarter of an answer's render (a
    context pushed and two variables resolved per figure), on every turn's end and every
    answer of a page."""
    return rendering.render_spans(_meta_items(message), "meta-")


def _meta_items(message: Message) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    model = message.model_reported or message.model
    route = catalog.ROUTE_LABELS.get(message.route, message.route)
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
    if candidate := _candidate(message):
        items.append(("candidate", candidate))
    if message.finish_reason:
        items.append(("finish", _ending(message).label))
    return items


@register.simple_tag
def stream_view(message: Message) -> rendering.StreamUpdate:
    return rendering.partial_answer(message.content)


@register.simple_tag(takes_context=True)
def stream_url(context: template.Context, message: Message, block: int) -> str:
    """The SSE endpoint of a message (routed by chatapp.asgi, outside Django's URLconf), with
    where the page's open block starts and the end of the text it already shows, and a pass
    (`turns.access`) for the person and session of the request the page is rendered for, so
    that attaching costs no database work."""
    url = f"{get_script_prefix()}stream/{message.id}/?block={block}&after={len(message.content)}"
    request = context.get("request")
    session = getattr(request, "session", None)
    user = getattr(request, "user", None)
    if session is not None and session.session_key and user is not None and user.pk:
        token = stream_pass(
            person_id=user.pk, message_id=message.id, session_key=session.session_key
        )
        url += f"&pass={token}"
    return url


@register.filter
def input_price(spec: catalog.ModelSpec) -> str:
    """The model's list price for input, USD per million tokens (`providers.prices`), for the
    composer's cost estimate (app.js); "" when it has none, and the estimate is hidden."""
    price = prices.price_of(spec.route, spec.id)
    return "" if price is None else f"{price.input:f}"
