"""The shared Gemini-native wire format: history, options and signatures out; responses, SSE
and errors in. Also the catalog's per-route ranges and the routes settings.py builds."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from chatapp.providers import catalog, params
from chatapp.providers.errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    PromptBlockedError,
    RateLimitError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from chatapp.providers.gemini.google import GeminiProvider
from chatapp.providers.gemini.segmind import SegmindProvider
from chatapp.providers.gemini.wire import (
    ErrorMapper,
    ResponseReader,
    build_contents,
    option_fields,
)
from chatapp.providers.openai_compat import OpenAICompatProvider
from chatapp.providers.types import (
    ChatMessage,
    ChatRequest,
    Finish,
    ImagePart,
    ProviderExtras,
    ReasoningDelta,
    TextDelta,
    TextPart,
    Usage,
)
from chatapp.providers.wire import SSEParser
from tests.fakes.gemini_schema import validate_gemini_request, validate_segmind_request
from tests.fakes.openapi import validate_chat_request

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(255, -1, -1))
# A realistic signature: long, standard base64 with "+", "/" and padding.
SIG = base64.b64encode(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(9))).decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signed(text: str, parts: list[dict[str, Any]], *, route="gemini", model="gemini-2.5-flash"):
    return ChatMessage(
        role="assistant",
        parts=(TextPart(text),),
        extras={"gemini": {"route": route, "model": model, "parts": parts}},
    )


# --- history -> contents ----------------------------------------------------------------------


def test_roles_images_and_alternation() -> None:
    messages = (
        ChatMessage(role="user", parts=(TextPart("Look"), ImagePart("image/png", PNG, 2, 2))),
        ChatMessage.of_text("assistant", "A square."),
        ChatMessage.of_text("user", "First try"),
        # A failed answer left no assistant turn between these two.
        ChatMessage(role="user", parts=(ImagePart("image/jpeg", JPEG), TextPart("Again?"))),
        ChatMessage.of_text("assistant", ""),  # nothing said: no empty part
    )
    contents = build_contents(messages, route="gemini", model="gemini-2.5-flash")
    assert contents == [
        {
            "role": "user",
            "parts": [
                {"text": "Look"},
                {"inlineData": {"mimeType": "image/png", "data": b64(PNG)}},
            ],
        },
        {"role": "model", "parts": [{"text": "A square."}]},
        {
            "role": "user",
            "parts": [
                {"text": "First try"},
                {"inlineData": {"mimeType": "image/jpeg", "data": b64(JPEG)}},
                {"text": "Again?"},
            ],
        },
    ]
    # Raw base64 that decodes to the very bytes, no data: prefix.
    assert base64.b64decode(contents[0]["parts"][1]["inlineData"]["data"]) == PNG
    validate_gemini_request({"contents": contents})


def test_signed_parts_are_sent_back_exactly_as_received() -> None:
    text = "Hello there. More text."
    message = signed(
        text,
        [
            {"at": 0, "text": "thinking…", "thought": True, "thoughtSignature": SIG},
            {"at": 0, "text": "Hello there.", "thoughtSignature": SIG[::-1]},
            {"at": len(text), "text": "", "thoughtSignature": SIG[:40]},
        ],
    )
    contents = build_contents(
        (ChatMessage.of_text("user", "Hi"), message, ChatMessage.of_text("user", "And?")),
        route="gemini",
        model="gemini-2.5-flash",
    )
    assert (
        contents[1]["parts"]
        == [
            {"text": "thinking…", "thought": True, "thoughtSignature": SIG},
            {"text": "Hello there.", "thoughtSignature": SIG[::-1]},
            {"text": " More text."},  # unsigned text is never merged into a signed part
            {"text": "", "thoughtSignature": SIG[:40]},
        ]
    )
    body = json.dumps({"contents": contents}, ensure_ascii=False, separators=(",", ":"))
    assert f'"thoughtSignature":"{SIG}"' in body  # byte for byte: no escaping, no re-encoding
    validate_gemini_request({"contents": contents})


@pytest.mark.parametrize(
    ("route", "model"),
    [("segmind", "gemini-2.5-flash"), ("gemini", "gemini-2.5-pro"), ("aimlapi", "x")],
)
def test_signatures_from_another_route_or_model_are_not_sent(route: str, model: str) -> None:
    message = signed("Answer", [{"at": 0, "text": "Answer", "thoughtSignature": SIG}])
    contents = build_contents((message,), route=route, model=model)
    assert contents == [{"role": "model", "parts": [{"text": "Answer"}]}]


@pytest.mark.parametrize(
    "records",
    [
        [{"at": 0, "text": "Other text", "thoughtSignature": SIG}],  # not the saved text
        [{"at": 99, "text": "", "thoughtSignature": SIG}],  # past the end
        [{"at": "0", "text": "Ans", "thoughtSignature": SIG}],
        ["not a record"],
        [
            {"at": 3, "text": "wer", "thoughtSignature": SIG},
            {"at": 0, "text": "Ans", "thoughtSignature": SIG},  # out of order
        ],
    ],
)
def test_records_that_do_not_fit_the_text_fall_back_to_plain_text(records: list[Any]) -> None:
    contents = build_contents(
        (signed("Answer", records),), route="gemini", model="gemini-2.5-flash"
    )
    assert contents == [{"role": "model", "parts": [{"text": "Answer"}]}]


def test_a_stopped_answer_keeps_the_signatures_that_fit_its_text() -> None:
    message = signed("Partial", [{"at": 0, "text": "Partial", "thoughtSignature": SIG}])
    contents = build_contents((message,), route="gemini", model="gemini-2.5-flash")
    assert contents[0]["parts"] == [{"text": "Partial", "thoughtSignature": SIG}]


def test_an_openai_route_history_converts_faithfully_for_gemini_and_segmind() -> None:
    """A conversation that switches from AI/ML API to a Gemini-native route mid-way."""
    history = (
        ChatMessage(role="user", parts=(TextPart("What is this?"), ImagePart("image/png", PNG))),
        ChatMessage(
            role="assistant",
            parts=(TextPart("A test image."),),
            extras={"google": {"thought_signature": SIG, "traffic_type": "ON_DEMAND"}},
        ),
        ChatMessage(role="user", parts=(ImagePart("image/jpeg", JPEG), TextPart("And this?"))),
    )
    request = ChatRequest(
        model="gemini-2.5-flash", messages=history, system="Answer in French.", options={}
    )
    google = GeminiProvider(alias="gemini", api_key="k", base_url="http://x").build_body(request)
    segmind = SegmindProvider(alias="segmind", api_key="k", base_url="http://x").build_body(request)
    expected_contents = [
        {
            "role": "user",
            "parts": [
                {"text": "What is this?"},
                {"inlineData": {"mimeType": "image/png", "data": b64(PNG)}},
            ],
        },
        # AI/ML API's extra_content is that route's: it is not carried over.
        {"role": "model", "parts": [{"text": "A test image."}]},
        {
            "role": "user",
            "parts": [
                {"inlineData": {"mimeType": "image/jpeg", "data": b64(JPEG)}},
                {"text": "And this?"},
            ],
        },
    ]
    assert google == {
        "contents": expected_contents,
        "systemInstruction": {"parts": [{"text": "Answer in French."}]},
    }
    assert segmind == {
        "messages": {
            "system_instruction": {"parts": {"text": "Answer in French."}},
            "contents": expected_contents,
        }
    }
    validate_gemini_request(google)
    validate_segmind_request(segmind)


def test_a_gemini_route_history_converts_faithfully_for_the_openai_format() -> None:
    history = (
        ChatMessage(role="user", parts=(TextPart("Hi"), ImagePart("image/png", PNG))),
        signed("Hello.", [{"at": 0, "text": "Hello.", "thoughtSignature": SIG}]),
        ChatMessage.of_text("user", "Again"),
    )
    request = ChatRequest(model="google/gemini-2.5-flash", messages=history, system="Be brief.")
    body = OpenAICompatProvider(alias="aimlapi", api_key="k", base_url="http://x").build_body(
        request
    )
    assert body["messages"][:3] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(PNG)}},
            ],
        },
        # A Gemini-native signature is not sent as AI/ML API's extra_content.
        {"role": "assistant", "content": "Hello."},
    ]
    validate_chat_request(body)


# --- options -> generationConfig --------------------------------------------------------------


def generation_config(options: dict) -> dict:
    return option_fields(options).get("generationConfig", {})


def safety_settings(options: dict) -> list:
    return option_fields(options).get("safetySettings", [])


def test_every_option_has_its_exact_wire_name() -> None:
    config = generation_config(
        {
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 40.0,
            "max_tokens": 1024,
            "stop": ["END", "###"],
            "candidate_count": 2,
            "seed": 7.0,
            "presence_penalty": 0.5,
            "frequency_penalty": -0.5,
            "response_format": "json",
            "thinking_budget": 2048,
            "safety_settings": {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"},
            "max_completion_tokens": 5,  # not a Gemini option: never guessed
        }
    )
    assert config == {
        "temperature": 0.7,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 1024,
        "stopSequences": ["END", "###"],
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
    }
    assert type(config["topK"]) is int
    assert type(config["seed"]) is int
    validate_gemini_request(
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": config}
    )


def test_thinking_options() -> None:
    assert generation_config({"thinking_level": "LOW"}) == {
        "thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": True}
    }
    assert generation_config({"thinking_budget": 0}) == {
        "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": False}
    }
    assert generation_config({"thinking_budget": -1})["thinkingConfig"]["thinkingBudget"] == -1
    with pytest.raises(BadRequestError, match="either a thinking budget or a thinking level"):
        generation_config({"thinking_budget": 100, "thinking_level": "HIGH"})
    assert generation_config({}) == {}
    assert generation_config({"stop": "END"}) == {"stopSequences": ["END"]}


def test_safety_settings_in_category_order() -> None:
    assert safety_settings(
        {
            "safety_settings": {
                "HARM_CATEGORY_HATE_SPEECH": "OFF",
                "HARM_CATEGORY_HARASSMENT": "BLOCK_ONLY_HIGH",
            }
        }
    ) == [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"},
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"},
    ]
    assert safety_settings({}) == []


# --- the catalog: routes, ranges, validation --------------------------------------------------


@pytest.fixture
def all_routes(settings: Any) -> None:
    settings.PROVIDERS = {
        alias: {"BACKEND": "x", "OPTIONS": {}} for alias in ("aimlapi", "gemini", "segmind")
    }


def test_the_model_choice_groups_models_by_route(all_routes: None) -> None:
    groups = dict(catalog.grouped_models())
    assert list(groups) == ["AI/ML API", "Google", "Segmind"]
    assert [m.id for m in groups["Google"]] == [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-lite",
        "gemini-3-flash-preview",
        "gemini-3.1-pro-preview",
        "gemini-3-pro-preview",
    ]
    assert [m.id for m in groups["Segmind"]] == [
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-3-pro",
        "gemini-1.5-pro",
    ]
    assert "Segmind may ignore these settings" in catalog.ROUTE_NOTES["segmind"]


def test_stop_sequences_five_for_gemini_four_for_openai(all_routes: None) -> None:
    five = "a\nb\nc\nd\ne"
    for key in ("gemini:gemini-2.5-flash", "segmind:gemini-2.5-flash"):
        spec = catalog.get_model_by_key(key)
        assert catalog.validate_options(spec, {"stop": five}) == ({"stop": list("abcde")}, {})
        errors = catalog.validate_options(spec, {"stop": five + "\nf"})[1]
        assert errors["stop"] == (
            f"Stop sequences: at most 5 sequences for Gemini 2.5 Flash on {spec.route_label} "
            "(got 6); put one per line."
        )
    openai = catalog.get_model_by_key("aimlapi:google/gemini-2.5-flash")
    assert "at most 4 sequences" in catalog.validate_options(openai, {"stop": five})[1]["stop"]


@pytest.mark.parametrize(
    ("key", "name", "value", "message"),
    [
        (
            "gemini:gemini-2.5-flash",
            "temperature",
            "2.1",
            "Temperature must be 0–2 for Gemini 2.5 Flash",
        ),
        ("gemini:gemini-2.5-flash", "top_k", "65", "Top K must be 1–64 for Gemini 2.5 Flash"),
        ("gemini:gemini-2.5-flash", "candidate_count", "5", "Candidates must be 1–4"),
        ("gemini:gemini-2.5-flash", "seed", "-1", "Seed must be 0–2147483647"),
        ("gemini:gemini-2.5-flash", "max_tokens", "65537", "Max tokens must be 1–65536"),
        (
            "segmind:gemini-1.5-pro",
            "max_tokens",
            "8193",
            "Max tokens must be 1–8192 for Gemini 1.5 Pro",
        ),
        (
            "gemini:gemini-2.5-flash",
            "thinking_budget",
            "24577",
            "must be 1–24576, 0 (off) or -1 (dynamic)",
        ),
        (
            "gemini:gemini-2.5-pro",
            "thinking_budget",
            "0",
            "must be 128–32768 or -1 (dynamic) for Gemini 2.5 Pro",
        ),
        (
            "gemini:gemini-2.5-flash-lite",
            "thinking_budget",
            "100",
            "must be 512–24576, 0 (off) or -1",
        ),
        (
            "gemini:gemini-3.1-pro-preview",
            "thinking_level",
            "medium",
            "Thinking level must be low or high",
        ),
        (
            "gemini:gemini-3-pro-preview",
            "thinking_budget",
            "100",
            "does not accept Thinking budget",
        ),
        ("gemini:gemini-2.5-flash", "thinking_level", "low", "does not accept Thinking level"),
        (
            "segmind:gemini-2.5-flash",
            "top_k",
            "3",
            "Gemini 2.5 Flash on Segmind does not accept Top K",
        ),
        (
            "segmind:gemini-2.5-flash",
            "safety_settings",
            "harassment=OFF",
            "does not accept Safety settings",
        ),
        ("segmind:gemini-1.5-pro", "presence_penalty", "1", "does not accept Presence penalty"),
        (
            "gemini:gemini-2.5-flash",
            "response_format",
            "maybe",
            "Response format must be JSON or JSON schema",
        ),
        ("gemini:gemini-2.5-flash", "json_schema", "[1]", "JSON schema must be a JSON object"),
        ("segmind:gemini-1.5-pro", "json_schema", "{}", "does not accept JSON schema"),
        (
            "gemini:gemini-2.5-flash",
            "safety_settings",
            "violence=OFF",
            "unknown harm category 'violence'",
        ),
        (
            "gemini:gemini-2.5-flash",
            "safety_settings",
            "harassment=LOW",
            "must be BLOCK_LOW_AND_ABOVE, BLOCK_MEDIUM_AND_ABOVE, BLOCK_ONLY_HIGH, BLOCK_NONE or OFF",
        ),
        (
            "gemini:gemini-2.5-flash",
            "safety_settings",
            "harassment",
            "write each as category=threshold",
        ),
        ("aimlapi:google/gemini-2.5-flash", "top_k", "3", "does not accept Top K"),
    ],
)
def test_every_limit_is_named(
    all_routes: None, key: str, name: str, value: str, message: str
) -> None:
    spec = catalog.get_model_by_key(key)
    options, errors = catalog.validate_options(spec, {name: value})
    assert options == {}
    assert message in errors[name]


def test_accepted_values_are_typed(all_routes: None) -> None:
    flash3 = catalog.get_model_by_key("gemini:gemini-3-flash-preview")
    options, errors = catalog.validate_options(
        flash3,
        {
            "thinking_level": " Minimal ",
            "response_format": "JSON",
            "top_k": "64",
            "safety_settings": "Harassment = block_none, HATE_SPEECH: OFF\nHARM_CATEGORY_DANGEROUS_CONTENT=BLOCK_ONLY_HIGH",
        },
    )
    assert errors == {}
    assert options == {
        "top_k": 64,
        "response_format": "json",
        "thinking_level": "MINIMAL",
        "safety_settings": {
            "HARM_CATEGORY_HARASSMENT": "BLOCK_NONE",
            "HARM_CATEGORY_HATE_SPEECH": "OFF",
            "HARM_CATEGORY_DANGEROUS_CONTENT": "BLOCK_ONLY_HIGH",
        },
    }
    # Stored settings come back typed and validate the same.
    assert catalog.validate_options(flash3, options) == (options, {})
    # Off is the same as not set, and so is an empty mapping.
    assert catalog.validate_options(flash3, {"response_format": "", "safety_settings": {}}) == (
        {},
        {},
    )
    flash = catalog.get_model_by_key("gemini:gemini-2.5-flash")
    for budget in ("0", "-1", "1", "24576"):
        assert catalog.validate_options(flash, {"thinking_budget": budget})[1] == {}
    assert catalog.options_to_send(flash, {}) == {}


def test_both_thinking_options_are_refused_together(all_routes: None) -> None:
    spec = catalog.get_model_by_key("gemini:gemini-2.5-flash")
    both = {**spec.ranges, "thinking_level": params.Range(choices=("LOW",))}
    hybrid = catalog.ModelSpec(route="gemini", id="x", label="X", ranges=both)
    errors = catalog.validate_options(hybrid, {"thinking_budget": "10", "thinking_level": "low"})[1]
    assert errors == {
        "thinking_level": "Set either a thinking budget or a thinking level, not both."
    }


@pytest.mark.parametrize(
    ("env", "routes"),
    [
        ({}, ["demo"]),
        ({"GEMINI_API_KEY": "g"}, ["gemini"]),
        ({"SEGMIND_API_KEY": "s"}, ["segmind"]),
        (
            {"AIMLAPI_API_KEY": "a", "GEMINI_API_KEY": "g", "SEGMIND_API_KEY": "s"},
            ["aimlapi", "gemini", "segmind"],
        ),
    ],
)
def test_a_route_exists_only_when_its_key_is_set(env: dict[str, str], routes: list[str]) -> None:
    code = (
        "import django, os, json; os.environ.setdefault('DJANGO_SETTINGS_MODULE','chatapp.settings');"
        " django.setup(); from django.conf import settings;"
        " print(json.dumps({k: [v['BACKEND'], v['OPTIONS'].get('base_url')] for k, v in settings.PROVIDERS.items()}))"
    )
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    providers = json.loads(out.stdout)
    assert list(providers) == routes
    if "gemini" in providers:
        assert providers["gemini"] == [
            "chatapp.providers.gemini.google.GeminiProvider",
            "https://generativelanguage.googleapis.com/v1beta",
        ]
    if "segmind" in providers:
        assert providers["segmind"] == [
            "chatapp.providers.gemini.segmind.SegmindProvider",
            "https://api.segmind.com/v1",
        ]


# --- responses --------------------------------------------------------------------------------


def reader(route: str = "gemini", model: str = "gemini-2.5-flash") -> ResponseReader:
    return ResponseReader(route=route, model=model, errors=ErrorMapper(lambda text: text))


def chunk(*parts: dict[str, Any], finish: str | None = None, index: int = 0, **extra: Any):
    candidate: dict[str, Any] = {"index": index}
    if parts:
        candidate["content"] = {"role": "model", "parts": list(parts)}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], **extra}


def test_usage_is_cumulative_and_the_last_report_wins() -> None:
    r = reader()
    events = []
    for candidates, total in ((1, 11), (2, 12), (3, 13)):
        usage = {
            "promptTokenCount": 10,
            "candidatesTokenCount": candidates,
            "totalTokenCount": total,
        }
        events += r.feed(chunk({"text": "x"}, usageMetadata=usage))
    events += r.feed(
        chunk(
            finish="STOP",
            usageMetadata={
                "promptTokenCount": 10,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 40,
                "totalTokenCount": 53,
            },
        )
    )
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage[-1] == Usage(
        prompt_tokens=10, completion_tokens=3, reasoning_tokens=40, total_tokens=53
    )
    assert len(usage) == 4
    assert r.end(whole_body=False) == [Finish(reason="stop", raw="STOP")]


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "safety"),
        ("RECITATION", "recitation"),
        ("PROHIBITED_CONTENT", "safety"),
        ("SPII", "safety"),
        ("BLOCKLIST", "safety"),
        ("LANGUAGE", "other"),
        ("OTHER", "other"),
        ("MALFORMED_FUNCTION_CALL", "other"),
        ("SOMETHING_NEW", "other"),
    ],
)
def test_finish_reasons(raw: str, neutral: str) -> None:
    r = reader()
    r.feed(chunk(finish=raw))
    assert r.end(whole_body=False) == [Finish(reason=neutral, raw=raw)]


def test_thought_parts_are_reasoning_calls_are_recorded_and_other_candidates_are_ignored() -> None:
    r = reader()
    events = r.feed(
        {
            "candidates": [
                {"index": 1, "content": {"parts": [{"text": "other answer"}]}},
                {
                    "index": 0,
                    "content": {
                        "parts": [
                            {"text": "Let me think", "thought": True},
                            {"text": "Answer", "thoughtSignature": SIG},
                            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SIG},
                        ]
                    },
                },
            ]
        }
    )
    assert events == [
        ReasoningDelta("Let me think"),
        TextDelta("Answer"),
        ProviderExtras(
            {
                "gemini": {
                    "route": "gemini",
                    "model": "gemini-2.5-flash",
                    # A call is recorded whole where it stands, to go back unchanged.
                    "parts": [
                        {"at": 0, "text": "Answer", "thoughtSignature": SIG},
                        {
                            "at": 6,
                            "functionCall": {"name": "f", "args": {}},
                            "thoughtSignature": SIG,
                        },
                    ],
                },
                "function_calls": [{"id": "", "name": "f", "arguments": "{}"}],
            }
        ),
    ]


def test_segminds_older_openai_shape() -> None:
    r = reader("segmind")
    events = r.feed_body(
        json.dumps(
            {
                "id": "seg-1",
                "model": "gemini-1.5-pro",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Old"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        ).encode()
    )
    assert [type(e).__name__ for e in events] == ["ResponseInfo", "TextDelta", "Usage"]
    assert r.end(whole_body=True) == [Finish(reason="stop", raw="stop")]


def test_a_complete_body_without_a_finish_reason_ends_normally_but_a_stream_does_not() -> None:
    r = reader()
    r.feed(chunk({"text": "x"}))
    assert r.end(whole_body=True) == [Finish(reason="stop", raw="")]
    r = reader()
    r.feed(chunk({"text": "x"}))
    with pytest.raises(UpstreamConnectionError, match="ended before the answer was complete"):
        r.end(whole_body=False)
    with pytest.raises(UpstreamError, match="without an answer"):
        reader().end(whole_body=False)


def test_a_blocked_prompt_names_the_reason_and_the_categories() -> None:
    r = reader()
    feedback = {
        "blockReason": "SAFETY",
        "safetyRatings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True},
            {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
        ],
    }
    events = r.feed({"promptFeedback": feedback})
    assert events == [ProviderExtras({"prompt_feedback": feedback})]
    with pytest.raises(PromptBlockedError) as caught:
        r.end(whole_body=False)
    assert caught.value.message == (
        "Your prompt was blocked: the safety filters flagged it (harassment) [SAFETY]. "
        "Rephrase it, or relax the safety settings, and send it again."
    )
    assert caught.value.block_reason == "SAFETY"
    assert caught.value.code == "prompt_blocked"
    assert not caught.value.retryable


# --- SSE --------------------------------------------------------------------------------------


def test_sse_parser_over_split_reads_and_line_endings() -> None:
    parser = SSEParser()
    stream = (
        b'data: {"a":1}\r\n\r\nevent: x\nid: 3\n: comment\ndata: {"b":\ndata: 2}\n\ndata: {"c":3}\r'
    )
    events = []
    for i in range(len(stream)):  # one byte at a time
        events += parser.feed(stream[i : i + 1])
    events += parser.close()
    assert events == [b'{"a":1}', b'{"b":\n2}', b'{"c":3}']
    assert parser.stray == []


def test_sse_parser_returns_bare_pretty_printed_json_in_its_place() -> None:
    parser = SSEParser()
    error = json.dumps(
        {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}, indent=2
    ).encode()
    lines = error.split(b"\n")
    assert parser.feed(b'data: {"a":1}\n\n' + b"\n".join(lines[:3]) + b"\n") == [b'{"a":1}']
    # The rest of the error and more events in one read: the error comes before them.
    found = parser.feed(b"\n".join(lines[3:]) + b'\ndata: {"b":2}\n\n')
    assert [type(item).__name__ for item in found] == ["StrayJSON", "bytes"]
    assert found[0].value == json.loads(error)
    assert found[1] == b'{"b":2}'
    assert parser.stray == []


# --- errors -----------------------------------------------------------------------------------


def mapper() -> ErrorMapper:
    return ErrorMapper(lambda text: text.replace("sk-secret", "[redacted]"))


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [
        ("37s", 37.0),
        ("0.5s", 0.5),
        ("1.250000000s", 1.25),
        ({"seconds": 2, "nanos": 500000000}, 2.5),
        ("soon", None),
    ],
)
def test_retry_delay_forms(delay: Any, seconds: float | None) -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}],
        }
    }
    error = mapper().from_body(429, body, json.dumps(body))
    assert type(error) is RateLimitError
    assert error.retry_after == seconds


def test_rate_limit_reset_header_forms() -> None:
    now = datetime.now(UTC)
    for value in (
        (now + timedelta(seconds=30)).isoformat(),
        (now + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        str(int(now.timestamp()) + 30),
        str(int(now.timestamp() * 1000) + 30_000),
        format_datetime(now + timedelta(seconds=30), usegmt=True),
    ):
        headers = httpx.Headers({"x-rate-limit-reset-at-utc": value})
        error = mapper().from_body(429, {"error": "Too many requests"}, "", headers)
        assert 25 < error.retry_after <= 31, value
    past = httpx.Headers({"x-rate-limit-reset-at-utc": "2000-01-01T00:00:00Z"})
    assert mapper().from_body(429, {"error": "x"}, "", past).retry_after == 0.0
    garbage = httpx.Headers({"x-rate-limit-reset-at-utc": "whenever"})
    assert mapper().from_body(429, {"error": "x"}, "", garbage).retry_after is None


@pytest.mark.parametrize(
    ("status", "rpc", "kind"),
    [
        (None, "RESOURCE_EXHAUSTED", RateLimitError),
        (None, "UNAVAILABLE", UpstreamError),
        (None, "DEADLINE_EXCEEDED", UpstreamTimeout),
        (None, "INVALID_ARGUMENT", BadRequestError),
        (None, "UNAUTHENTICATED", AuthenticationError),
        (None, "PERMISSION_DENIED", AuthenticationError),
    ],
)
def test_mid_stream_errors_are_classified_by_their_status_text(status, rpc, kind) -> None:
    error = mapper().from_body(status, {"error": {"message": "m", "status": rpc}}, "")
    assert type(error) is kind


def test_error_messages_are_redacted_and_bounded() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "bad key sk-secret " + "x" * 500,
            "status": "INVALID_ARGUMENT",
        }
    }
    error = mapper().from_body(400, body, json.dumps(body) * 100)
    assert "sk-secret" not in error.message + error.detail
    assert len(error.message) < 400
    assert len(error.detail) <= 4001


def test_unreadable_json_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        reader().feed_data(b"{not json")


# --- the validator has teeth ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"contents": []}, "non-empty list"),
        (
            {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
            "role must be user or model",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"text": "x"}]}]},
            "first content must be a user",
        ),
        (
            {
                "contents": [
                    {"role": "user", "parts": [{"text": "a"}]},
                    {"role": "user", "parts": [{"text": "b"}]},
                ]
            },
            "two user turns in a row",
        ),
        ({"contents": [{"role": "user", "parts": [{"text": "a", "bogus": 1}]}]}, "Extra inputs"),
        (
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [
                            {
                                "inlineData": {
                                    "mimeType": "image/png",
                                    "data": "data:image/png;base64,AAAA",
                                }
                            }
                        ],
                    }
                ]
            },
            "without a data: prefix",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"text": "a"}]}], "generation_config": {}},
            "unknown top-level",
        ),
        (
            {
                "contents": [{"role": "user", "parts": [{"text": "a"}]}],
                "generationConfig": {"max_output_tokens": 5},
            },
            "camelCase",
        ),
        (
            {
                "contents": [{"role": "user", "parts": [{"text": "a"}]}],
                "generationConfig": {"stopSequences": list("abcdef")},
            },
            "at most 5",
        ),
        (
            {
                "contents": [{"role": "user", "parts": [{"text": "a"}]}],
                "generationConfig": {
                    "thinkingConfig": {"thinkingBudget": 1, "thinkingLevel": "LOW"}
                },
            },
            "both thinkingBudget and thinkingLevel",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"text": "a", "thoughtSignature": SIG}]}]},
            "model turns only",
        ),
        (
            {
                "contents": [{"role": "user", "parts": [{"text": "a"}]}],
                "safetySettings": [{"category": "HARM_CATEGORY_X", "threshold": "OFF"}],
            },
            "safetySettings[0]",
        ),
    ],
)
def test_the_request_validator_rejects_what_gemini_would(body: dict, problem: str) -> None:
    with pytest.raises(AssertionError) as caught:
        validate_gemini_request(body)
    assert problem in str(caught.value)


def test_sse_parser_skips_junk_before_a_bare_json_error() -> None:
    parser = SSEParser()
    assert parser.feed(b"<html>proxy noise</html>\n") == []
    assert parser.sample == [b"<html>proxy noise</html>"]  # kept for the error's detail
    found = parser.feed(b'{"error": {"code": 500,\n  "message": "x"}}\n')
    assert [item.value for item in found] == [{"error": {"code": 500, "message": "x"}}]
