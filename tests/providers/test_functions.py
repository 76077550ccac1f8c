"""Function calling: declarations checked with each limit named; OpenAI-format calls read from
streamed fragments, bounded, and sent back as the model's turn with one tool message per
result; every body validated against OpenAI's spec. Real adapter, fake upstream, sockets."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import pytest

from chatapp.providers import catalog, functions, params
from chatapp.providers.gemini.google import GeminiProvider
from chatapp.providers.openai_compat import OpenAICompatProvider
from chatapp.providers.types import ChatMessage, ChatRequest, Finish, ProviderExtras, TextPart
from tests import provider_kit
from tests.fakes import upstream as up
from tests.provider_kit import of_type

pytestmark = pytest.mark.usefixtures("transport")

KEY = "sk-aiml-0123456789abcdef0123456789"
MODEL = "google/gemini-2.5-flash"
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TIME = {"name": "get_time", "description": "", "parameters": {"type": "object"}}


@pytest.fixture
def provider(
    http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        alias="aimlapi", client=http_client, api_key=KEY, base_url=fake_upstream.openai_base_url
    )


@pytest.fixture
def google(http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream) -> GeminiProvider:
    return GeminiProvider(
        alias="gemini", client=http_client, api_key=KEY, base_url=fake_upstream.gemini_base_url
    )


def options(**raw: Any) -> dict[str, Any]:
    spec = catalog.find_model("aimlapi", MODEL)
    assert spec is not None
    chosen, errors = catalog.validate_options(spec, raw)
    assert errors == {}
    return catalog.options_to_send(spec, chosen)


def ask(*messages: ChatMessage, **kwargs: Any) -> ChatRequest:
    kwargs.setdefault("options", options(functions=[WEATHER, TIME]))
    return ChatRequest(
        model=MODEL, messages=messages or (ChatMessage.of_text("user", "Hi"),), **kwargs
    )


collect, _ = provider_kit.collectors(ask)


# --- declarations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ([{"name": "a b"}], "a function name is 1 to 64 letters, digits, _ or -"),
        ([{"name": "x" * 65}], "a function name is 1 to 64 letters"),
        ([WEATHER, WEATHER], "the name get_weather is declared twice"),
        ([{"name": f"f{i}"} for i in range(129)], "at most 128 functions (got 129)"),
        ([{"name": "f", "parameters": {"type": 12}}], "The parameters of f is not a valid JSON"),
        ([{"name": "f", "description": "d" * 1001}], "at most 1,000 characters"),
        ("[{", "Functions are not valid JSON"),
        ('"get_weather"', "must be a JSON list"),
    ],
)
def test_each_refused_declaration_names_its_limit(declared: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        functions.check_declarations(declared)


def test_a_declaration_without_parameters_takes_no_arguments() -> None:
    assert functions.check_declarations([{"name": "now"}]) == [
        {"name": "now", "description": "", "parameters": {"type": "object", "properties": {}}}
    ]


def test_tool_choice_names_a_declared_function_or_is_refused() -> None:
    spec = catalog.find_model("aimlapi", MODEL)
    assert spec is not None
    _, errors = catalog.validate_options(spec, {"functions": [WEATHER], "tool_choice": "nope"})
    assert "nope is not a declared function" in errors["tool_choice"]
    _, errors = catalog.validate_options(spec, {"tool_choice": "auto"})
    assert "sent only with functions declared" in errors["tool_choice"]


@pytest.mark.parametrize(
    ("choice", "openai", "gemini"),
    [
        ("none", "none", {"mode": "NONE"}),
        ("auto", "auto", {"mode": "AUTO"}),
        ("required", "required", {"mode": "ANY"}),
        (
            "get_time",
            {"type": "function", "function": {"name": "get_time"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        ),
    ],
)
def test_tool_choice_on_both_wire_formats(choice: str, openai: Any, gemini: Any) -> None:
    chosen = {"functions": [WEATHER, TIME], "tool_choice": choice}
    assert params.wire_fields(chosen, "openai")["tool_choice"] == openai
    body = params.wire_fields(chosen, "gemini")
    assert body["toolConfig"] == {"functionCallingConfig": gemini}


def test_declarations_join_the_built_in_tools_in_geminis_one_array() -> None:
    body = params.wire_fields({"functions": [WEATHER], "google_search": True}, "gemini")
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "The weather in a city",
                    "parametersJsonSchema": WEATHER["parameters"],
                }
            ]
        },
        {"googleSearch": {}},
    ]


# --- the OpenAI format --------------------------------------------------------------------------


async def test_declared_functions_go_out_as_tools_with_parallel_calls_off_unless_chosen(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(up.Reply.text("ok"), up.Reply.text("ok"))
    await collect(provider)
    body = fake_upstream.last_request.json
    assert body["tools"] == [
        {"type": "function", "function": WEATHER},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    assert body["parallel_tool_calls"] is False
    assert "tool_choice" not in body
    chosen = options(functions=[WEATHER], tool_choice="required", parallel_tool_calls="on")
    await collect(provider, ask(options=chosen))
    body = fake_upstream.last_request.json
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", True)


async def test_parallel_calls_are_assembled_by_index_from_their_fragments(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Call("get_weather", '{"city": "Bern"}', id="call_a", call=0, signature="c2ln"),
                up.Call("get_time", '{"zone": "Europe/Zurich"}', id="call_b", call=1, piece=3),
            ],
            finish="tool_calls",
        )
    )
    events = await collect(provider)
    calls = [e.data[functions.CALLS_KEY] for e in of_type(events, ProviderExtras)]
    assert calls == [
        [
            {
                "id": "call_a",
                "name": "get_weather",
                "arguments": '{"city": "Bern"}',
                "extra_content": {"google": {"thought_signature": "c2ln"}},
            },
            {"id": "call_b", "name": "get_time", "arguments": '{"zone": "Europe/Zurich"}'},
        ]
    ]
    assert events[-1] == Finish(reason="tool_calls", raw="tool_calls")


async def test_a_whole_answer_from_a_server_that_does_not_stream_has_its_calls_read(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [up.Call("get_weather", '{"city": "Bern"}', id="a"), up.Call("get_time", id="b")],
            finish="tool_calls",
            stream_mode="json",
        )
    )
    events = await collect(provider)
    (extras,) = of_type(events, ProviderExtras)
    assert [(c["id"], c["name"]) for c in extras.data[functions.CALLS_KEY]] == [
        ("a", "get_weather"),
        ("b", "get_time"),
    ]


async def test_calls_beyond_the_bounds_are_not_kept(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    too_long = json.dumps({"x": "y" * functions.ARGUMENTS_MAX_CHARS})
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Call("bad name!", "{}", call=0),
                up.Call("get_time", "[1, 2]", call=1),  # arguments must be an object
                up.Call("get_weather", too_long, call=2, piece=4000),
                *[up.Call("get_time", "{}", call=3 + i) for i in range(functions.MAX_CALLS + 2)],
            ],
            finish="tool_calls",
        )
    )
    events = await collect(provider)
    (extras,) = of_type(events, ProviderExtras)
    kept = extras.data[functions.CALLS_KEY]
    assert [c["name"] for c in kept] == ["get_time"] * (functions.MAX_CALLS - 3)


async def test_the_results_go_back_after_the_models_turn_as_it_was(
    provider: OpenAICompatProvider, fake_upstream: up.FakeUpstream
) -> None:
    calls = [
        {
            "id": "call_a",
            "name": "get_weather",
            "arguments": '{"city":"Bern"}',
            "extra_content": {"google": {"thought_signature": "c2ln"}},
        },
        {"id": "call_b", "name": "get_time", "arguments": "{}"},
    ]
    results = [
        {"id": "call_a", "name": "get_weather", "content": '{"temp": 21}'},
        {"id": "call_b", "name": "get_time", "content": "14:05"},
    ]
    fake_upstream.enqueue(up.Reply.text("It is 21 degrees at 14:05."))
    await collect(
        provider,
        ask(
            ChatMessage.of_text("user", "Weather and time in Bern?"),
            ChatMessage("assistant", (TextPart(""),), extras={functions.CALLS_KEY: calls}),
            ChatMessage("tool", (TextPart("..."),), extras={functions.RESULTS_KEY: results}),
        ),
    )
    messages = fake_upstream.last_request.json["messages"]
    assert messages[1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Bern"}'},
                    "extra_content": {"google": {"thought_signature": "c2ln"}},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "14:05"},
    ]


def test_stored_calls_and_results_are_checked_again_when_read() -> None:
    extras = {
        functions.CALLS_KEY: [
            {"id": "a", "name": "ok", "arguments": "{}"},
            {"id": "b", "name": "<script>", "arguments": "{}"},
            {"id": "c", "name": "ok2", "arguments": "not json"},
            "junk",
        ],
        functions.RESULTS_KEY: [
            {"id": "a", "name": "ok", "content": "fine"},
            {"id": "b", "name": "ok", "content": 12},
        ],
    }
    assert [c["id"] for c in functions.calls_of(extras)] == ["a"]
    assert functions.results_of(extras) == [{"id": "a", "name": "ok", "content": "fine"}]
    assert functions.calls_of("junk") == []
    assert functions.results_of(None) == []


# --- Gemini's native format ---------------------------------------------------------------------

SIG = base64.b64encode(hashlib.sha256(b"first step").digest() * 3).decode()
GEMINI = "gemini-3-flash-preview"


def gemini_ask(*messages: ChatMessage) -> ChatRequest:
    spec = catalog.find_model("gemini", GEMINI)
    assert spec is not None
    chosen, errors = catalog.validate_options(
        spec, {"functions": [WEATHER, TIME], "tool_choice": "auto", "google_search": "on"}
    )
    assert errors == {}
    return ChatRequest(
        model=GEMINI,
        messages=messages or (ChatMessage.of_text("user", "Hi"),),
        options=catalog.options_to_send(spec, chosen),
    )


async def test_gemini_parallel_calls_are_read_with_their_parts_recorded_whole(
    google: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Call("get_weather", '{"city": "Bern"}', id="w1", signature=SIG),
                up.Call("get_time", "{}"),
            ]
        )
    )
    events = await collect(google, gemini_ask())
    body = fake_upstream.last_request.json
    # One `tools` array, in registry order: the built-in tools, then the declarations.
    assert body["tools"][0] == {"googleSearch": {}}
    assert body["tools"][1]["functionDeclarations"][0]["name"] == "get_weather"
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    extras = of_type(events, ProviderExtras)[-1].data
    assert extras[functions.CALLS_KEY] == [
        {"id": "w1", "name": "get_weather", "arguments": '{"city":"Bern"}'},
        {"id": "", "name": "get_time", "arguments": "{}"},
    ]
    assert extras["gemini"]["parts"] == [
        {
            "at": 0,
            "functionCall": {"name": "get_weather", "args": {"city": "Bern"}, "id": "w1"},
            "thoughtSignature": SIG,
        },
        {"at": 0, "functionCall": {"name": "get_time", "args": {}}},
    ]
    assert events[-1] == Finish(reason="tool_calls", raw="STOP")


async def test_gemini_results_follow_the_models_content_sent_back_unchanged(
    google: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply([up.Call("get_weather", '{"city": "Bern"}', id="w1", signature=SIG)])
    )
    events = await collect(google, gemini_ask())
    extras = json.loads(json.dumps(of_type(events, ProviderExtras)[-1].data))  # as stored
    results = [{"id": "w1", "name": "get_weather", "content": '{"temp": 21}'}]
    fake_upstream.enqueue(up.Reply.text("21 degrees."), up.Reply.text("ok"))
    await collect(
        google,
        gemini_ask(
            ChatMessage.of_text("user", "Weather in Bern?"),
            ChatMessage("assistant", (TextPart(""),), extras=extras),
            ChatMessage("tool", (TextPart("..."),), extras={functions.RESULTS_KEY: results}),
        ),
    )
    contents = fake_upstream.last_request.json["contents"]
    assert contents[1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Bern"}, "id": "w1"},
                    "thoughtSignature": SIG,
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}, "id": "w1"}}
            ],
        },
    ]
    # To another model the calls go unsigned, a result that is not an object under "result".
    other = {functions.CALLS_KEY: extras[functions.CALLS_KEY]}
    plain = [{"id": "w1", "name": "get_weather", "content": "sunny"}]
    await collect(
        google,
        gemini_ask(
            ChatMessage.of_text("user", "Weather in Bern?"),
            ChatMessage("assistant", (TextPart(""),), extras=other),
            ChatMessage("tool", (TextPart("..."),), extras={functions.RESULTS_KEY: plain}),
        ),
    )
    contents = fake_upstream.last_request.json["contents"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Bern"}, "id": "w1"}}
    ]
    assert contents[2]["parts"][0]["functionResponse"]["response"] == {"result": "sunny"}
