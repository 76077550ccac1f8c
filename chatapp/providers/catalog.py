"""Which models each route offers, and the range of each parameter each model accepts.

What a parameter is (label, kind, wire names) is declared once in `params.py`; a model here
says only which parameters it takes and within which range. Ranges are the upstreams'
(docs/PROTOCOLS.md): on AI/ML API (§1) legacy ids (Gemini 1.0/1.5) take top_p 0.1–1 and need
an explicit max_tokens (the upstream default of 512 cuts answers), current ids (2.x/3.x) take
top_p 0.01–1, seed ≥ 1 and max_completion_tokens, and at most 4 stop sequences. The
Gemini-native routes (§2 Segmind, §3 Google) take up to 5 stop sequences, structured output
(JSON, or JSON matching a schema), a candidate count, a thinking budget (2.5) or level (3)
and, on Google, top_k, safety settings, the built-in tools (Google Search, URL context, code
execution) and (2.5 Flash) token log probabilities. AI/ML API's current ids take `n` and log
probabilities, its legacy ids a logit bias. Function calling (§1b, §3b: declared functions and
a tool choice, with parallel calls on AI/ML API) is on AI/ML API's current ids, every Google
model and Segmind's 2.x and later.
Validation (`validate_options`) happens before any network I/O, and every message names the
limit and the model.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from . import params
from .gemini.safety import HARM_CATEGORIES, THRESHOLDS
from .params import Range

ROUTE_LABELS = {
    "aimlapi": "AI/ML API",
    "gemini": "Google",
    "segmind": "Segmind",
    "demo": "Offline demo",
    # Not routes: where an imported answer was written (chatapp.exchange), shown under it.
    "chatgpt": "ChatGPT",
    "openwebui": "Open WebUI",
}

# Said next to a route's parameters in the settings panel.
ROUTE_NOTES = {
    "segmind": (
        "Segmind may ignore these settings: whether it honours Gemini's generationConfig is "
        "not documented. They are sent all the same."
    ),
}

SEED_MAX = 2**63 - 1
# The structured-output formats (params "response_format"): JSON mode, JSON matching a schema.
STRUCTURED = ("json", "json_schema")
# Gemini's built-in tools, each a switch (params "google_search", ...).
TOOLS = ("google_search", "url_context", "code_execution")
# Function calling (params "functions", "tool_choice"); AI/ML API adds "parallel_tool_calls".
FUNCTION_CALLING = ("functions", "tool_choice")
# Gemini's seed and counts are int32 on the wire.
GEMINI_INT_MAX = 2**31 - 1
# Candidates of one request (params "candidate_count"): each becomes a version of the answer
# and each is billed, so fewer than the upstreams allow (Gemini takes up to 8).
CANDIDATES_MAX = 4
# The alternatives per token either upstream returns at most (OpenAI's top_logprobs 0-20,
# Gemini's logprobs up to 20).
TOP_LOGPROBS_MAX = 20
# A logit bias's entries: AI/ML API names no limit; a person tunes a few tokens, not a list.
LOGIT_BIAS_MAX_ENTRIES = 100


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model on one route: what it is called, whether it reads images, and the parameters
    it accepts (name -> range; a parameter not listed is refused if set)."""

    route: str
    id: str
    label: str
    ranges: Mapping[str, Range]
    vision: bool = True
    legacy: bool = False
    deprecated: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The value of the "Model" choice: route and id together."""
        return f"{self.route}:{self.id}"

    @property
    def route_label(self) -> str:
        return ROUTE_LABELS.get(self.route, self.route)

    def matches(self, model_id: str) -> bool:
        return model_id == self.id or model_id in self.aliases


def _openai_ranges(
    *, legacy: bool, output_max: int, default_max_tokens: int | None, reasoning: bool = False
) -> dict[str, Range]:
    ranges = {
        "temperature": Range(0, 2),
        "top_p": Range(0.1 if legacy else 0.01, 1),
        "max_tokens": Range(1, output_max, default=default_max_tokens),
        "frequency_penalty": Range(-2, 2),
        "presence_penalty": Range(-2, 2),
        "stop": Range(max_items=4),
    }
    if not legacy:
        ranges["max_completion_tokens"] = Range(1, output_max)
        ranges["seed"] = Range(1, SEED_MAX)
        # AI/ML API documents response_format (text, json_object, json_schema) for these ids.
        ranges["response_format"] = Range(choices=STRUCTURED)
        ranges["json_schema"] = Range()
        # `n` (integer >= 1) on the current ids; the legacy ids do not take it.
        ranges["candidate_count"] = Range(1, CANDIDATES_MAX)
        # The OpenAI format's logprobs and top_logprobs (whether AI/ML API returns them for
        # Gemini ids is unverified: an answer without them shows no probabilities).
        ranges["logprobs"] = Range()
        ranges["top_logprobs"] = Range(0, TOP_LOGPROBS_MAX)
        # Function calling (docs/PROTOCOLS.md §1b), tested end to end on this route.
        ranges.update({name: Range() for name in FUNCTION_CALLING})
        ranges["parallel_tool_calls"] = Range()
    else:
        # logit_bias is documented for the legacy ids; on the current ones "some ids only",
        # which ones is unverified, so it is not offered there (docs/PROTOCOLS.md §1).
        ranges["logit_bias"] = Range(-100, 100, max_items=LOGIT_BIAS_MAX_ENTRIES)
    if reasoning:
        ranges["reasoning_effort"] = Range(choices=("low", "medium", "high"))
    return ranges


def _aimlapi(
    model_id: str,
    label: str,
    *,
    legacy: bool = False,
    deprecated: bool = False,
    vision: bool = True,
    output_max: int = 65_536,
    default_max_tokens: int | None = None,
    aliases: tuple[str, ...] = (),
    reasoning: bool = False,
) -> ModelSpec:
    return ModelSpec(
        route="aimlapi",
        id=model_id,
        label=label,
        vision=vision,
        legacy=legacy,
        deprecated=deprecated,
        aliases=aliases,
        ranges=_openai_ranges(
            legacy=legacy,
            output_max=output_max,
            default_max_tokens=default_max_tokens,
            reasoning=reasoning,
        ),
    )


def _legacy(
    model_id: str, label: str, *, default_max_tokens: int, vision: bool = True
) -> ModelSpec:
    """A deprecated Gemini 1.x id on AI/ML API: 8,192 output tokens at most, and an explicit
    max_tokens always (the upstream default of 512 cuts answers short)."""
    return _aimlapi(
        model_id,
        label,
        legacy=True,
        deprecated=True,
        vision=vision,
        output_max=8192,
        default_max_tokens=default_max_tokens,
    )


def _gemini_ranges(
    *,
    route: str,
    output_max: int,
    legacy: bool,
    thinking: Mapping[str, Range],
    logprobs: bool = False,
) -> dict[str, Range]:
    """Gemini-native generationConfig ranges (docs/PROTOCOLS.md §3). Google also takes top_k
    up to 64 and safety settings, and, on the models known to return them (`logprobs`),
    token log probabilities; for Segmind, whether generationConfig is honoured at all is
    unverified, so only the common core (with a candidate count) is offered there."""
    ranges = {
        "temperature": Range(0, 2),
        "top_p": Range(0, 1),
        "max_tokens": Range(1, output_max),
        "stop": Range(max_items=5),
        "seed": Range(0, GEMINI_INT_MAX),
        # Gemini 1.5 takes JSON mode; a schema only as `responseSchema` (an OpenAPI subset),
        # which is not offered: `responseJsonSchema` is for 2.x and later.
        "response_format": Range(choices=("json",) if legacy else STRUCTURED),
        "candidate_count": Range(1, CANDIDATES_MAX),
    }
    if not legacy:
        ranges["json_schema"] = Range()
        ranges["frequency_penalty"] = Range(-2, 2)
        ranges["presence_penalty"] = Range(-2, 2)
    if not legacy and route == "segmind":
        # Function calling (docs/PROTOCOLS.md §2, §3b), in Segmind's envelope beside
        # `contents`; tested end to end against the fake upstream only.
        ranges.update({name: Range() for name in FUNCTION_CALLING})
    if route == "gemini":
        ranges["top_k"] = Range(1, 64)
        ranges["safety_settings"] = Range(choices=tuple(THRESHOLDS), keys=HARM_CATEGORIES)
        if logprobs:
            ranges["logprobs"] = Range()
            ranges["top_logprobs"] = Range(1, TOP_LOGPROBS_MAX)
        if not legacy:
            # Gemini's built-in tools (docs/PROTOCOLS.md §3b), Gemini 2.x and later; not on
            # Segmind, whose envelope has no place for `tools`.
            ranges.update({tool: Range() for tool in TOOLS})
            # Function calling (docs/PROTOCOLS.md §3b), tested end to end on Google.
            ranges.update({name: Range() for name in FUNCTION_CALLING})
    return {**ranges, **thinking}


def _budget(minimum: int, maximum: int, *, can_turn_off: bool) -> dict[str, Range]:
    special = ((0, "off"), (-1, "dynamic")) if can_turn_off else ((-1, "dynamic"),)
    return {"thinking_budget": Range(minimum, maximum, special=special)}


def _level(*levels: str) -> dict[str, Range]:
    return {"thinking_level": Range(choices=levels)}


# Thinking ranges per model family: 2.5 Pro 128–32768 (cannot be turned off), 2.5 Flash
# 1–24576 and Flash-Lite 512–24576 (0 turns thinking off), -1 lets the model decide; Gemini 3
# takes a level instead (Pro: low/high; Flash: minimal to high).
_PRO_25 = _budget(128, 32_768, can_turn_off=False)
_FLASH_25 = _budget(1, 24_576, can_turn_off=True)
_LITE_25 = _budget(512, 24_576, can_turn_off=True)
_PRO_3 = _level("LOW", "HIGH")
_FLASH_3 = _level("MINIMAL", "LOW", "MEDIUM", "HIGH")


def _native(
    route: str,
    model_id: str,
    label: str,
    *,
    thinking: Mapping[str, Range],
    legacy: bool = False,
    output_max: int = 65_536,
    logprobs: bool = False,
) -> ModelSpec:
    return ModelSpec(
        route=route,
        id=model_id,
        label=label,
        legacy=legacy,
        ranges=_gemini_ranges(
            route=route,
            output_max=output_max,
            legacy=legacy,
            thinking=thinking,
            logprobs=logprobs,
        ),
    )


CATALOG: dict[str, tuple[ModelSpec, ...]] = {
    "aimlapi": (
        # Current ids first: they are what a person should pick today.
        # reasoning_effort: only on some ids (not on 3-1-pro-preview, docs/PROTOCOLS.md §1);
        # offered where Google's own OpenAI-compatible endpoint documents it, Gemini 2.5.
        _aimlapi("google/gemini-2.5-flash", "Gemini 2.5 Flash", reasoning=True),
        _aimlapi("google/gemini-2.5-pro", "Gemini 2.5 Pro", reasoning=True),
        _aimlapi("google/gemini-3-flash-preview", "Gemini 3 Flash (preview)"),
        _aimlapi("google/gemini-3-1-pro-preview", "Gemini 3.1 Pro (preview)"),
        _aimlapi("google/gemini-3-5-flash", "Gemini 3.5 Flash"),
        _aimlapi("google/gemini-flash-latest", "Gemini Flash (latest)"),
        _aimlapi("google/gemini-pro-latest", "Gemini Pro (latest)"),
        # The seed documents' ids, which AI/ML API now lists as deprecated (may answer 404).
        _legacy("gemini-1.5-pro", "Gemini 1.5 Pro", default_max_tokens=8192),
        _legacy("gemini-1.5-flash", "Gemini 1.5 Flash", default_max_tokens=8192),
        _legacy("gemini-pro", "Gemini 1.0 Pro", default_max_tokens=2048, vision=False),
        _legacy("google/gemini-pro", "Gemini 1.0 Pro", default_max_tokens=2048, vision=False),
    ),
    "gemini": (
        # responseLogprobs: offered on the 2.5 Flash models, which return it; which other
        # models do is unverified (docs/PROTOCOLS.md §3).
        _native(
            "gemini", "gemini-2.5-flash", "Gemini 2.5 Flash", thinking=_FLASH_25, logprobs=True
        ),
        _native("gemini", "gemini-2.5-pro", "Gemini 2.5 Pro", thinking=_PRO_25),
        _native(
            "gemini",
            "gemini-2.5-flash-lite",
            "Gemini 2.5 Flash-Lite",
            thinking=_LITE_25,
            logprobs=True,
        ),
        _native("gemini", "gemini-3-flash-preview", "Gemini 3 Flash (preview)", thinking=_FLASH_3),
        _native("gemini", "gemini-3.1-pro-preview", "Gemini 3.1 Pro (preview)", thinking=_PRO_3),
        _native("gemini", "gemini-3-pro-preview", "Gemini 3 Pro (preview)", thinking=_PRO_3),
    ),
    "segmind": (
        _native("segmind", "gemini-2.5-flash", "Gemini 2.5 Flash", thinking=_FLASH_25),
        _native("segmind", "gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", thinking=_LITE_25),
        _native("segmind", "gemini-3-pro", "Gemini 3 Pro", thinking=_PRO_3),
        # The seed documents' model: ~11 s per answer, $0.017 per call (docs/PROTOCOLS.md §2).
        _native(
            "segmind",
            "gemini-1.5-pro",
            "Gemini 1.5 Pro",
            thinking={},
            legacy=True,
            output_max=8192,
        ),
    ),
    "demo": (
        ModelSpec(
            route="demo",
            id="demo",
            label="Offline demo",
            # Its candidates are its own answer with other seeds; it has no token
            # probabilities to show.
            ranges={
                name: accepted
                for name, accepted in _openai_ranges(
                    legacy=False, output_max=65_536, default_max_tokens=None
                ).items()
                if name not in ("logprobs", "top_logprobs")
            },
        ),
    ),
}


# The routes a person can use: the server's (`settings.PROVIDERS`, the default everywhere
# below) or theirs with their own keys (`credentials.selectors.PersonRoutes`).
Routes = Collection[str]


def available_models(routes: Routes | None = None) -> list[ModelSpec]:
    """Models of the routes (a route exists when its key is set), in catalog order."""
    chosen = settings.PROVIDERS if routes is None else routes
    return [spec for route, specs in CATALOG.items() if route in chosen for spec in specs]


@dataclass(frozen=True, slots=True)
class RouteStatus:
    route: str
    label: str
    configured: bool  # its API key is set (the offline demo needs none)
    models: tuple[str, ...]  # labels, in catalog order


def route_statuses() -> list[RouteStatus]:
    """Every upstream route and whether this server can use it (the Admin page): the demo
    only while it is the one route, as it is then."""
    return [
        RouteStatus(
            route=route,
            label=ROUTE_LABELS.get(route, route),
            configured=route in settings.PROVIDERS,
            models=tuple(spec.label for spec in specs),
        )
        for route, specs in CATALOG.items()
        if route != "demo" or route in settings.PROVIDERS
    ]


def find_model(route: str, model_id: str) -> ModelSpec | None:
    """The catalog's spec of a model, matched by id or alias, whoever can use it (its label,
    how its wire format works); None if the catalog has no such model."""
    return next((s for s in CATALOG.get(route, ()) if s.matches(model_id)), None)


def get_model(route: str, model_id: str, routes: Routes | None = None) -> ModelSpec | None:
    """The spec of a model offered on the routes, matched by id or alias; None if not."""
    if route not in (settings.PROVIDERS if routes is None else routes):
        return None
    return find_model(route, model_id)


# Longer than any "route:model" key (a route name, a model id of at most 200 characters).
MODEL_KEY_MAX_CHARS = 240


def get_model_by_key(key: str, routes: Routes | None = None) -> ModelSpec | None:
    route, _, model_id = key.partition(":")
    return get_model(route, model_id, routes)


def default_model(routes: Routes | None = None) -> ModelSpec:
    models = available_models(routes)
    # Routes that name no catalog model cannot happen (a key opens a route of the catalog);
    # the server's first model keeps a page drawable if they ever did.
    return models[0] if models else available_models()[0]


def grouped_models(routes: Routes | None = None) -> list[tuple[str, list[ModelSpec]]]:
    """(route label, models) pairs for the grouped "Model" choice."""
    groups: dict[str, list[ModelSpec]] = {}
    for spec in available_models(routes):
        groups.setdefault(spec.route_label, []).append(spec)
    return list(groups.items())


def any_range(name: str) -> Range | None:
    """The parameter's range on some model: how to show a value the chosen model does not
    accept (which kind of control, which choices)."""
    return next(
        (spec.ranges[name] for specs in CATALOG.values() for spec in specs if name in spec.ranges),
        None,
    )


def validate_options(
    spec: ModelSpec, raw: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The person's parameters for `spec`, typed, and the errors (see `params.validate`). The
    errors name the model and its route: the same model takes other parameters elsewhere."""
    return params.validate(spec.ranges, raw, model=f"{spec.label} on {spec.route_label}")


def options_to_send(spec: ModelSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with each model default filled in (e.g. legacy max_tokens)."""
    return params.with_defaults(spec.ranges, options)
