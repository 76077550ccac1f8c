"""Which models each route offers, and the parameters (with ranges) each model accepts.

Ranges come from PROTOCOLS.md §1: legacy ids (Gemini 1.0/1.5) take top_p 0.1–1 and need an
explicit max_tokens (the upstream default of 512 cuts answers short); current ids (2.x/3.x)
take top_p 0.01–1, seed ≥ 1 and max_completion_tokens. Validation happens here, before any
network I/O, and every message names the limit and the model.

The Gemini-native routes (§2 Segmind, §3 Google) take up to 5 stop sequences (4 in the OpenAI
format), top_k, a candidate count, JSON output, a thinking budget (2.5) or level (3) and,
on Google, safety settings. `max_tokens` is sent as `maxOutputTokens` there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .base import Capabilities, ParamSpec

ROUTE_LABELS = {
    "aimlapi": "AI/ML API",
    "gemini": "Google",
    "segmind": "Segmind",
    "demo": "Offline demo",
}

# Said next to a route's parameters in the settings panel.
ROUTE_NOTES = {
    "segmind": (
        "Segmind may ignore these settings: whether it honours Gemini's generationConfig is "
        "not documented. They are sent all the same."
    ),
}

# The order in which parameters appear in the settings panel.
PARAM_ORDER = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "seed",
    "candidate_count",
    "json_output",
    "thinking_budget",
    "thinking_level",
    "safety_settings",
)

PARAM_LABELS = {
    "temperature": "Temperature",
    "top_p": "Top P",
    "top_k": "Top K",
    "max_tokens": "Max tokens",
    "max_completion_tokens": "Max completion tokens",
    "frequency_penalty": "Frequency penalty",
    "presence_penalty": "Presence penalty",
    "stop": "Stop sequences",
    "seed": "Seed",
    "candidate_count": "Candidate count",
    "json_output": "JSON output",
    "thinking_budget": "Thinking budget",
    "thinking_level": "Thinking level",
    "safety_settings": "Safety settings",
}

SEED_MAX = 2**63 - 1
# Gemini's seed and counts are int32 on the wire.
GEMINI_INT_MAX = 2**31 - 1
GEMINI_STOP_MAX = 5

# Google's safety settings (PROTOCOLS §3): the four adjustable harm categories, and the block
# thresholds from strictest to off. Short names ("harassment") are accepted on input.
HARM_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
SAFETY_THRESHOLDS = (
    "BLOCK_LOW_AND_ABOVE",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_NONE",
    "OFF",
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    route: str
    id: str
    label: str
    capabilities: Capabilities
    legacy: bool = False
    deprecated: bool = False
    output_max: int | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """The value of the "Model" choice: route and id together."""
        return f"{self.route}:{self.id}"

    @property
    def route_label(self) -> str:
        return ROUTE_LABELS.get(self.route, self.route)

    @property
    def params(self) -> Mapping[str, ParamSpec]:
        return self.capabilities.params

    def matches(self, model_id: str) -> bool:
        return model_id == self.id or model_id in self.aliases


def _openai_params(*, legacy: bool, output_max: int, default_max_tokens: int | None) -> dict:
    params = [
        ParamSpec("temperature", "Temperature", "float", 0, 2),
        ParamSpec("top_p", "Top P", "float", 0.1 if legacy else 0.01, 1),
        ParamSpec("max_tokens", "Max tokens", "int", 1, output_max, default=default_max_tokens),
        ParamSpec("frequency_penalty", "Frequency penalty", "float", -2, 2),
        ParamSpec("presence_penalty", "Presence penalty", "float", -2, 2),
        ParamSpec("stop", "Stop sequences", "stop", max_items=4),
    ]
    if not legacy:
        params += [
            ParamSpec("max_completion_tokens", "Max completion tokens", "int", 1, output_max),
            ParamSpec("seed", "Seed", "int", 1, SEED_MAX),
        ]
    return {p.name: p for p in params}


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
) -> ModelSpec:
    return ModelSpec(
        route="aimlapi",
        id=model_id,
        label=label,
        legacy=legacy,
        deprecated=deprecated,
        output_max=output_max,
        aliases=aliases,
        capabilities=Capabilities(
            streaming=True,
            vision=vision,
            tools=True,
            json_schema=not legacy,
            seed=not legacy,
            n=not legacy,
            params=_openai_params(
                legacy=legacy, output_max=output_max, default_max_tokens=default_max_tokens
            ),
        ),
    )


def _gemini_params(
    *,
    route: str,
    output_max: int,
    legacy: bool = False,
    thinking: ParamSpec | None = None,
) -> dict[str, ParamSpec]:
    """Gemini-native generationConfig ranges (PROTOCOLS §3). Google also takes top_k, a
    candidate count and safety settings; for Segmind, whether generationConfig is honoured at
    all is unverified, so only the common core is offered there."""
    params = [
        ParamSpec("temperature", "Temperature", "float", 0, 2),
        ParamSpec("top_p", "Top P", "float", 0, 1),
        ParamSpec("max_tokens", "Max tokens", "int", 1, output_max),
        ParamSpec("stop", "Stop sequences", "stop", max_items=GEMINI_STOP_MAX),
        ParamSpec("seed", "Seed", "int", 0, GEMINI_INT_MAX),
        ParamSpec("json_output", "JSON output", "bool"),
    ]
    if not legacy:
        params += [
            ParamSpec("frequency_penalty", "Frequency penalty", "float", -2, 2),
            ParamSpec("presence_penalty", "Presence penalty", "float", -2, 2),
        ]
    if route == "gemini":
        params += [
            ParamSpec("top_k", "Top K", "int", 1, 64),
            ParamSpec("candidate_count", "Candidate count", "int", 1, 8),
            ParamSpec("safety_settings", "Safety settings", "safety", choices=SAFETY_THRESHOLDS),
        ]
    if thinking is not None:
        params.append(thinking)
    return {p.name: p for p in params}


def _budget(minimum: int, maximum: int, *, can_turn_off: bool) -> ParamSpec:
    special = ((0, "off"), (-1, "dynamic")) if can_turn_off else ((-1, "dynamic"),)
    return ParamSpec("thinking_budget", "Thinking budget", "int", minimum, maximum, special=special)


def _level(*levels: str) -> ParamSpec:
    return ParamSpec("thinking_level", "Thinking level", "choice", choices=levels)


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
    thinking: ParamSpec | None,
    legacy: bool = False,
    output_max: int = 65_536,
) -> ModelSpec:
    return ModelSpec(
        route=route,
        id=model_id,
        label=label,
        legacy=legacy,
        output_max=output_max,
        capabilities=Capabilities(
            # Segmind answers in one piece: the run shows "waiting · N s" meanwhile.
            streaming=route != "segmind",
            vision=True,
            seed=True,
            n=route == "gemini",
            params=_gemini_params(
                route=route, output_max=output_max, legacy=legacy, thinking=thinking
            ),
        ),
    )


CATALOG: dict[str, tuple[ModelSpec, ...]] = {
    "aimlapi": (
        # Current ids first: they are what a person should pick today.
        _aimlapi("google/gemini-2.5-flash", "Gemini 2.5 Flash"),
        _aimlapi("google/gemini-2.5-pro", "Gemini 2.5 Pro"),
        _aimlapi("google/gemini-3-flash-preview", "Gemini 3 Flash (preview)"),
        _aimlapi("google/gemini-3-1-pro-preview", "Gemini 3.1 Pro (preview)"),
        _aimlapi("google/gemini-3-5-flash", "Gemini 3.5 Flash"),
        _aimlapi("google/gemini-flash-latest", "Gemini Flash (latest)"),
        _aimlapi("google/gemini-pro-latest", "Gemini Pro (latest)"),
        # The seed documents' ids, which AI/ML API now lists as deprecated (may answer 404).
        _aimlapi(
            "gemini-1.5-pro",
            "Gemini 1.5 Pro",
            legacy=True,
            deprecated=True,
            output_max=8192,
            default_max_tokens=8192,
        ),
        _aimlapi(
            "gemini-1.5-flash",
            "Gemini 1.5 Flash",
            legacy=True,
            deprecated=True,
            output_max=8192,
            default_max_tokens=8192,
        ),
        _aimlapi(
            "gemini-pro",
            "Gemini 1.0 Pro",
            legacy=True,
            deprecated=True,
            vision=False,
            output_max=8192,
            default_max_tokens=2048,
        ),
        _aimlapi(
            "google/gemini-pro",
            "Gemini 1.0 Pro",
            legacy=True,
            deprecated=True,
            vision=False,
            output_max=8192,
            default_max_tokens=2048,
        ),
    ),
    "gemini": (
        _native("gemini", "gemini-2.5-flash", "Gemini 2.5 Flash", thinking=_FLASH_25),
        _native("gemini", "gemini-2.5-pro", "Gemini 2.5 Pro", thinking=_PRO_25),
        _native("gemini", "gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", thinking=_LITE_25),
        _native("gemini", "gemini-3-flash-preview", "Gemini 3 Flash (preview)", thinking=_FLASH_3),
        _native("gemini", "gemini-3.1-pro-preview", "Gemini 3.1 Pro (preview)", thinking=_PRO_3),
        _native("gemini", "gemini-3-pro-preview", "Gemini 3 Pro (preview)", thinking=_PRO_3),
    ),
    "segmind": (
        _native("segmind", "gemini-2.5-flash", "Gemini 2.5 Flash", thinking=_FLASH_25),
        _native("segmind", "gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", thinking=_LITE_25),
        _native("segmind", "gemini-3-pro", "Gemini 3 Pro", thinking=_PRO_3),
        # The seed documents' model: ~11 s per answer, $0.017 per call (PROTOCOLS §2).
        _native(
            "segmind",
            "gemini-1.5-pro",
            "Gemini 1.5 Pro",
            thinking=None,
            legacy=True,
            output_max=8192,
        ),
    ),
    "demo": (
        ModelSpec(
            route="demo",
            id="demo",
            label="Offline demo",
            output_max=65_536,
            capabilities=Capabilities(
                streaming=True,
                vision=True,
                seed=True,
                params=_openai_params(legacy=False, output_max=65_536, default_max_tokens=None),
            ),
        ),
    ),
}


def available_models() -> list[ModelSpec]:
    """Models of the configured routes, in catalog order (a route exists when its key is set)."""
    return [spec for route in settings.PROVIDERS for spec in CATALOG.get(route, ())]


def get_model(route: str, model_id: str) -> ModelSpec | None:
    """The spec of a configured model, matched by id or alias; None if not offered."""
    if route not in settings.PROVIDERS:
        return None
    return next((s for s in CATALOG.get(route, ()) if s.matches(model_id)), None)


def get_model_by_key(key: str) -> ModelSpec | None:
    route, _, model_id = key.partition(":")
    return get_model(route, model_id)


def default_model() -> ModelSpec:
    return available_models()[0]


def grouped_models() -> list[tuple[str, list[ModelSpec]]]:
    """(route label, models) pairs for the grouped "Model" choice."""
    groups: dict[str, list[ModelSpec]] = {}
    for spec in available_models():
        groups.setdefault(spec.route_label, []).append(spec)
    return list(groups.items())


# --- Validation ------------------------------------------------------------------------------


def validate_options(
    spec: ModelSpec, raw: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse and range-check the person's parameters for `spec`.

    `raw` maps parameter names to what the form sent (strings; empty means "not set") or to
    already-typed values (stored settings). Returns (options, errors): options holds only the
    parameters that were set, typed; errors maps a parameter name to a message naming the
    limit. A parameter the model does not accept is an error if set, never silently dropped.
    """
    options: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in PARAM_ORDER:
        value = raw.get(name)
        if _is_empty(value):
            continue
        param = spec.params.get(name)
        if param is None:
            errors[name] = f"{spec.label} does not accept {_label_of(name)}; leave it empty."
            continue
        try:
            parsed = _parse(param, value, spec)
        except ValueError as exc:
            errors[name] = str(exc)
        else:
            if parsed is not None:  # "off" for a bool: the same as not set
                options[name] = parsed
    if "thinking_budget" in options and "thinking_level" in options:
        # Gemini answers 400 when both are sent.
        errors["thinking_level"] = "Set either a thinking budget or a thinking level, not both."
    return options, errors


def options_to_send(spec: ModelSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with each model default filled in (e.g. legacy max_tokens)."""
    sent = {name: value for name, value in options.items() if name in spec.params}
    for name, param in spec.params.items():
        if param.default is not None and name not in sent:
            sent[name] = param.default
    return {name: sent[name] for name in PARAM_ORDER if name in sent}


def _label_of(name: str) -> str:
    return PARAM_LABELS.get(name, name)


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return not any(str(item) for item in value)
    if isinstance(value, Mapping):
        return not value
    return False


def _parse(param: ParamSpec, value: Any, spec: ModelSpec) -> Any:
    where = f"for {spec.label}"
    if param.kind == "stop":
        items = _stop_items(value)
        if param.max_items is not None and len(items) > param.max_items:
            raise ValueError(
                f"{param.label}: at most {param.max_items} sequences {where} "
                f"(got {len(items)}); put one per line."
            )
        if any(len(item) > 200 for item in items):
            raise ValueError(f"{param.label}: each sequence can be at most 200 characters.")
        return items
    if param.kind == "choice":
        text = str(value).strip()
        for choice in param.choices:
            if text.lower() == choice.lower():
                return choice
        raise ValueError(f"{param.label} must be {param.describe()} {where} (got {text!r}).")
    if param.kind == "bool":
        return _bool(param, value)
    if param.kind == "safety":
        return _safety(param, value, where)
    number = _number(param, value)
    if any(number == special for special, _ in param.special):
        return int(number) if param.kind == "int" else number
    low, high = param.minimum, param.maximum
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{param.label} must be {param.describe()} {where} (got {value}).")
    return number


_PAIR = re.compile(r"([^=:]+?)\s*[=:]\s*(\S.*)")
_TRUE = frozenset({"1", "true", "yes", "on", "json", "application/json"})
_FALSE = frozenset({"0", "false", "no", "off", "text", "text/plain"})


def _bool(param: ParamSpec, value: Any) -> bool | None:
    """True, or None for off (an unset option is not sent)."""
    if isinstance(value, bool):
        return True if value else None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return None
    raise ValueError(f"{param.label} must be on or off (got {str(value).strip()!r}).")


def _safety(param: ParamSpec, value: Any, where: str) -> dict[str, str]:
    """{HARM_CATEGORY_...: threshold} in HARM_CATEGORIES order, from a mapping (stored
    settings) or from text: `harassment=BLOCK_NONE` pairs, one per line (or comma-separated)."""
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = []
        for item in re.split(r"[\n,;]+", str(value)):
            if not item.strip():
                continue
            pair = _PAIR.fullmatch(item.strip())
            if pair is None:
                raise ValueError(
                    f"{param.label}: write each as category=threshold (got {item.strip()!r})."
                )
            pairs.append((pair[1], pair[2]))
    chosen: dict[str, str] = {}
    for category, threshold in pairs:
        key = category.strip().upper().replace(" ", "_")
        if not key.startswith("HARM_CATEGORY_"):
            key = f"HARM_CATEGORY_{key}"
        if key not in HARM_CATEGORIES:
            names = ", ".join(c.removeprefix("HARM_CATEGORY_").lower() for c in HARM_CATEGORIES)
            raise ValueError(
                f"{param.label}: unknown harm category {category.strip()!r} {where}; use {names}."
            )
        level = threshold.strip().upper().replace(" ", "_")
        if level not in param.choices:
            raise ValueError(
                f"{param.label}: the threshold for {key.removeprefix('HARM_CATEGORY_').lower()} "
                f"must be {_words(param.choices)} (got {threshold.strip()!r})."
            )
        chosen[key] = level
    return {key: chosen[key] for key in HARM_CATEGORIES if key in chosen}


def _words(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _number(param: ParamSpec, value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{param.label} must be a number.")
    text = str(value).strip()
    if param.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{param.label} must be a whole number (got {text!r}).") from None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{param.label} must be a number (got {text!r}).") from None
    if not math.isfinite(number):
        raise ValueError(f"{param.label} must be a finite number.")
    return number


def _stop_items(value: Any) -> list[str]:
    items: Iterable[Any] = value.splitlines() if isinstance(value, str) else value
    # Stop strings are sent exactly as typed: leading/trailing spaces can matter.
    return [str(item) for item in items if str(item) != ""]
