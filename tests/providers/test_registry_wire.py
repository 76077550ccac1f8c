"""Every parameter every model accepts reaches its route's wire valid: driven by the registry
and the catalog, so a parameter added there is exercised here with no change to this file."""

from __future__ import annotations

from typing import Any

import pytest

from chatapp.providers import catalog, params
from chatapp.providers.gemini.google import GeminiProvider
from chatapp.providers.gemini.segmind import SegmindProvider
from chatapp.providers.openai_compat import OpenAICompatProvider
from chatapp.providers.params import Parameter, Range
from chatapp.providers.types import ChatMessage, ChatRequest
from tests.fakes.gemini_schema import validate_gemini_request, validate_segmind_request
from tests.fakes.openapi import validate_chat_request

ADAPTERS = {"aimlapi": OpenAICompatProvider, "gemini": GeminiProvider, "segmind": SegmindProvider}
VALIDATORS = {
    "aimlapi": validate_chat_request,
    "gemini": validate_gemini_request,
    "segmind": validate_segmind_request,
}
SPECS = [spec for route in ADAPTERS for spec in catalog.CATALOG[route]]


def sample(parameter: Parameter, accepted: Range) -> Any:
    """A value the model accepts, as the settings form would send it."""
    match parameter.kind:
        case "stop":
            return "END"
        case "choice":
            return accepted.choices[-1].lower()
        case "bool":
            return "on"
        case "safety":
            return {accepted.keys[0]: accepted.choices[0]}
        case "schema":
            return '{"type": "object", "properties": {"a": {"type": "string"}}}'
        case "bias":
            return '{"1234": -100, "42": 5}'
        case "functions":
            return (
                '[{"name": "get_weather", "description": "The weather in a city",'
                ' "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]'
            )
        case "tool_choice":
            return "get_weather"
    if accepted.maximum is not None:
        return str(accepted.maximum)
    return str(accepted.minimum if accepted.minimum is not None else 1)


def accepted_options(spec: catalog.ModelSpec) -> tuple[dict[str, Any], list[Parameter]]:
    """A value for every parameter the model accepts (one of two that exclude each other)."""
    chosen = [p for p in params.PARAMETERS if p.name in spec.ranges]
    names = {p.name for p in chosen}
    chosen = [p for p in chosen if not set(p.excludes) & names]
    raw = {p.name: sample(p, spec.ranges[p.name]) for p in chosen}
    options, errors = catalog.validate_options(spec, raw)
    assert errors == {}
    return catalog.options_to_send(spec, options), chosen


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.key)
def test_every_accepted_parameter_reaches_the_wire_at_its_registered_place(all_routes, spec):
    options, chosen = accepted_options(spec)
    adapter = ADAPTERS[spec.route](alias=spec.route, api_key="k", base_url="http://x")
    request = ChatRequest(
        model=spec.id, messages=(ChatMessage.of_text("user", "Hi"),), options=options
    )
    body = adapter.build_body(request)
    VALIDATORS[spec.route](body)
    if spec.route == "segmind":
        body = body["messages"]
    for parameter in chosen:
        wire = parameter.wire[adapter.wire_format]
        target: Any = body
        for key in wire.path.split("."):
            assert key in target, f"{parameter.name} is not at {wire.path}"
            target = target[key]
