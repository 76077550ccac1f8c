"""The model catalog's ranges per model, and the offline demo route."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.providers import catalog
from chatapp.providers.demo import DemoProvider, demo_answer
from chatapp.providers.types import (
    CandidateDelta,
    CandidateFinish,
    ChatMessage,
    ChatRequest,
    Finish,
    TextDelta,
)

SEED_IDS = [
    "gemini-1.5-pro",
    "gemini-pro",
    "google/gemini-pro",
    "gemini-1.5-flash",
    "google/gemini-3-1-pro-preview",
]
CURRENT_IDS = ["google/gemini-2.5-flash", "google/gemini-2.5-pro", "google/gemini-3-flash-preview"]


@pytest.fixture
def aimlapi_route(settings):
    settings.PROVIDERS = {
        "aimlapi": {
            "BACKEND": "chatapp.providers.openai_compat.OpenAICompatProvider",
            "OPTIONS": {},
        }
    }


@pytest.mark.parametrize("model_id", SEED_IDS + CURRENT_IDS)
def test_seed_and_current_ids_are_offered(aimlapi_route, model_id):
    assert catalog.get_model("aimlapi", model_id) is not None


@pytest.mark.parametrize("model_id", ["gemini-1.5-pro", "gemini-1.5-flash", "gemini-pro"])
def test_legacy_ids_take_top_p_from_0_1_and_always_send_max_tokens(aimlapi_route, model_id):
    spec = catalog.get_model("aimlapi", model_id)
    assert spec.legacy
    assert catalog.validate_options(spec, {"top_p": "0.1"}) == ({"top_p": 0.1}, {})
    assert "top_p" in catalog.validate_options(spec, {"top_p": "0.05"})[1]
    assert "seed" in catalog.validate_options(spec, {"seed": "3"})[1]
    assert (
        "max_completion_tokens" in catalog.validate_options(spec, {"max_completion_tokens": "9"})[1]
    )
    sent = catalog.options_to_send(spec, {})
    assert isinstance(sent["max_tokens"], int)
    assert sent["max_tokens"] > 512


@pytest.mark.parametrize("model_id", [*CURRENT_IDS, "google/gemini-3-1-pro-preview"])
def test_current_ids_take_top_p_from_0_01_and_seed_from_1(aimlapi_route, model_id):
    spec = catalog.get_model("aimlapi", model_id)
    options, errors = catalog.validate_options(
        spec, {"top_p": "0.01", "seed": "1", "max_completion_tokens": "100"}
    )
    assert errors == {}
    assert options == {"top_p": 0.01, "seed": 1, "max_completion_tokens": 100}
    assert "seed" in catalog.validate_options(spec, {"seed": "0"})[1]
    assert catalog.options_to_send(spec, {}) == {}  # nothing the person left empty is sent


def test_every_limit_is_named_in_its_message(aimlapi_route):
    spec = catalog.get_model("aimlapi", "google/gemini-2.5-flash")
    _, errors = catalog.validate_options(
        spec,
        {
            "temperature": "2.01",
            "frequency_penalty": "-3",
            "max_tokens": "0",
            "stop": "1\n2\n3\n4\n5",
            "seed": "x",
        },
    )
    assert errors["temperature"] == (
        "Temperature must be 0–2 for Gemini 2.5 Flash on AI/ML API (got 2.01)."
    )
    assert "-2–2" in errors["frequency_penalty"]
    assert "1–65536" in errors["max_tokens"]
    assert "at most 4 sequences" in errors["stop"]
    assert "(got 5)" in errors["stop"]
    assert "whole number" in errors["seed"]


def test_non_finite_numbers_are_refused(aimlapi_route):
    spec = catalog.get_model("aimlapi", "google/gemini-2.5-flash")
    for value in ("nan", "inf", "-inf"):
        assert "temperature" in catalog.validate_options(spec, {"temperature": value})[1]


def test_unconfigured_routes_are_not_offered(settings):
    settings.PROVIDERS = {"demo": {"BACKEND": "chatapp.providers.demo.DemoProvider", "OPTIONS": {}}}
    assert [m.key for m in catalog.available_models()] == ["demo:demo"]
    assert catalog.get_model("aimlapi", "google/gemini-2.5-flash") is None
    assert catalog.grouped_models()[0][0] == "Offline demo"


def test_no_key_means_only_the_demo_route():
    """What settings.py builds from the environment with no API key."""
    import subprocess
    import sys

    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','chatapp.settings'); django.setup(); from django.conf import settings; print(list(settings.PROVIDERS))"
    env = {k: v for k, v in __import__("os").environ.items() if not k.endswith("_API_KEY")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['demo']"


def _run(provider, request):
    async def collect():
        return [event async for event in provider.stream(request)]

    return asyncio.run(collect())


def test_demo_is_deterministic_labelled_and_honours_max_tokens():
    provider = DemoProvider(alias="demo", first_token_delay=0, token_delay=0)
    request = ChatRequest(model="demo", messages=(ChatMessage.of_text("user", "Hi <there>"),))
    first, second = _run(provider, request), _run(provider, request)
    text = "".join(e.text for e in first if isinstance(e, TextDelta))
    assert first == second
    assert text == demo_answer("Hi <there>")
    assert text.startswith("**Offline demo**")
    assert DemoProvider.label == "Offline demo"
    short = _run(
        provider, ChatRequest(model="demo", messages=request.messages, options={"max_tokens": 5})
    )
    assert sum(isinstance(e, TextDelta) for e in short) == 5
    assert next(e for e in short if isinstance(e, Finish)).reason == "length"


def test_the_demo_answers_each_other_candidate_with_another_seed_and_has_no_probabilities():
    provider = DemoProvider(alias="demo", first_token_delay=0, token_delay=0)
    request = ChatRequest(
        model="demo", messages=(ChatMessage.of_text("user", "Hi"),), options={"candidate_count": 3}
    )
    events = _run(provider, request)
    others = [e for e in events if isinstance(e, CandidateDelta)]
    assert [(e.index, e.text) for e in others] == [
        (1, demo_answer("Hi", 1)),
        (2, demo_answer("Hi", 2)),
    ]
    assert [e.index for e in events if isinstance(e, CandidateFinish)] == [1, 2]
    assert isinstance(events[-1], Finish)
    demo = catalog.find_model("demo", "demo")
    assert demo is not None
    assert "candidate_count" in demo.ranges
    assert "logprobs" not in demo.ranges
