"""Gemini's built-in tools on the Google route (docs/PROTOCOLS.md §3b): the switches in the
request, what the reader keeps of grounding, URL context and code execution, and code parts
going back to Gemini in their place. The adapter talks to the fake upstream over loopback;
every body it sends and every response the fake makes validate with google-genai's types."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest

from chatapp import rendering
from chatapp.providers import catalog, params
from chatapp.providers.gemini import tools
from chatapp.providers.gemini.google import GeminiProvider
from chatapp.providers.gemini.wire import ErrorMapper, ResponseReader, build_contents
from chatapp.providers.types import (
    ChatMessage,
    ChatRequest,
    Finish,
    ProviderExtras,
    TextDelta,
    TextPart,
)
from tests import provider_kit
from tests.fakes import upstream as up
from tests.fakes.gemini_schema import validate_gemini_request
from tests.provider_kit import of_type, text_of

pytestmark = pytest.mark.usefixtures("transport")

KEY = "AIzaSy-gemini-tools-0123456789abcdef"
MODEL = "gemini-2.5-flash"
SIG = base64.b64encode(hashlib.sha512(b"code part").digest()).decode()
TOOLS = {"google_search": True, "url_context": True, "code_execution": True}


@pytest.fixture
def provider(http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream) -> GeminiProvider:
    return GeminiProvider(
        alias="gemini", client=http_client, api_key=KEY, base_url=fake_upstream.gemini_base_url
    )


def ask(text: str = "What is new in Zürich?", **kwargs: Any) -> ChatRequest:
    kwargs.setdefault("model", MODEL)
    return ChatRequest(messages=(ChatMessage.of_text("user", text),), **kwargs)


collect, _ = provider_kit.collectors(ask)


def merged(events: list[Any]) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    for event in of_type(events, ProviderExtras):
        extras.update(event.data)
    return extras


def read(*responses: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The answer text and the extras a reader makes of these stream chunks."""
    reader = ResponseReader(route="gemini", model=MODEL, errors=ErrorMapper(lambda s: s))
    events = [event for response in responses for event in reader.feed(response)]
    events += reader.end(whole_body=False)
    return "".join(e.text for e in of_type(events, TextDelta)), reader.snapshot()


def chunk(*parts: dict[str, Any], **candidate: Any) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": list(parts)}, **candidate}]}


# --- the switches -----------------------------------------------------------------------------


def test_each_switch_adds_its_tool_to_the_one_tools_array() -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    body |= params.wire_fields({**TOOLS, "temperature": 0.5}, "gemini")
    assert body["tools"] == [{"googleSearch": {}}, {"urlContext": {}}, {"codeExecution": {}}]
    assert body["generationConfig"] == {"temperature": 0.5}
    validate_gemini_request(body)
    assert params.wire_fields({"url_context": True}, "gemini") == {"tools": [{"urlContext": {}}]}
    # Off is not set: nothing is sent.
    assert params.wire_fields({"google_search": None}, "gemini") == {}


def test_parameters_declared_to_extend_one_path_are_concatenated_in_registry_order() -> None:
    extending = [p for p in params.PARAMETERS if p.wire.get("gemini", None) is not None]
    on_tools = [p.name for p in extending if p.wire["gemini"].path == "tools"]
    assert on_tools == ["google_search", "url_context", "code_execution", "functions"]
    assert all(params.BY_NAME[name].wire["gemini"].extend for name in on_tools)
    # The order of the options does not matter; the registry's does.
    backwards = dict(reversed(list(TOOLS.items())))
    assert params.wire_fields(backwards, "gemini")["tools"][0] == {"codeExecution": {}}


def test_the_tools_are_offered_on_the_google_route_only() -> None:
    for route, specs in catalog.CATALOG.items():
        for spec in specs:
            offered = {name for name in catalog.TOOLS if name in spec.ranges}
            assert offered == (set(catalog.TOOLS) if route == "gemini" else set()), spec.key
    segmind = catalog.find_model("segmind", "gemini-2.5-flash")
    assert segmind is not None
    _, errors = catalog.validate_options(segmind, {"google_search": "on"})
    assert errors == {
        "google_search": "Gemini 2.5 Flash on Segmind does not accept Google Search; leave it empty."
    }


async def test_the_switches_reach_google_and_a_grounded_answer_comes_back(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    text = "Zürich hat 443 000 Einwohner. Das Kunsthaus ist groß."
    fake_upstream.enqueue(
        up.Reply(
            [up.Text("Zürich hat 443 000 "), up.Text("Einwohner. Das Kunsthaus ist groß.")],
            grounding=up.grounding_metadata(
                text,
                [("Zürich hat 443 000 Einwohner.", [0]), ("Das Kunsthaus ist groß.", [0, 1])],
                sources=[
                    ("stadt-zuerich.ch", "https://vertexaisearch.example/r/1"),
                    ("Kunsthaus", "https://vertexaisearch.example/r/2", "kunsthaus.ch"),
                ],
                queries=["Zürich Einwohner"],
                rendered="<style>.chip{}</style><a class=chip href=https://g.example/s>q</a>",
            ),
        )
    )
    events = await collect(provider, ask(options=TOOLS))
    assert fake_upstream.last_request.json["tools"] == [
        {"googleSearch": {}},
        {"urlContext": {}},
        {"codeExecution": {}},
    ]
    assert text_of(events) == text
    grounding = merged(events)["grounding"]
    assert grounding["queries"] == ["Zürich Einwohner"]
    assert grounding["sources"] == [
        {
            "title": "stadt-zuerich.ch",
            "uri": "https://vertexaisearch.example/r/1",
            "domain": "stadt-zuerich.ch",
        },
        {
            "title": "Kunsthaus",
            "uri": "https://vertexaisearch.example/r/2",
            "domain": "kunsthaus.ch",
        },
    ]
    # Characters, not bytes: "ü" and "ß" are two bytes each.
    first_end = text.index(" Das")
    assert grounding["citations"] == [
        {"at": first_end, "sources": [1]},
        {"at": len(text), "sources": [1, 2]},
    ]
    assert grounding["entry_point"].startswith("<style>")
    assert of_type(events, Finish) == [Finish(reason="stop", raw="STOP")]


# --- grounding offsets ------------------------------------------------------------------------


def test_segment_offsets_count_utf8_bytes_and_land_between_characters() -> None:
    text = "東京は大きい。🚀 Rockets fly. Ça va."
    pieces = ["東京は", "大きい。🚀 Rock", "ets fly. Ça va."]
    metadata = up.grounding_metadata(
        text,
        [("東京は大きい。", [0]), ("🚀 Rockets fly.", [1]), ("Ça va.", [0, 1])],
        sources=[("a.example", "https://a.example/"), ("b.example", "https://b.example/")],
    )
    answer, extras = read(
        *[chunk({"text": p}) for p in pieces[:-1]],
        chunk({"text": pieces[-1]}, finishReason="STOP", groundingMetadata=metadata),
    )
    assert answer == text
    ends = [c["at"] for c in extras["grounding"]["citations"]]
    assert [answer[:at][-3:] for at in ends] == ["きい。", "ly.", "va."]


def test_a_part_index_counts_within_that_part_and_code_fences_are_skipped() -> None:
    """A thought summary is part 0, the text before the code part 1, the code 2, its result 3,
    the text after 4: offsets within part 4 start at its own first byte."""
    before, after = "Let me compute.", "The total is 42 — exactly."
    metadata = up.grounding_metadata(
        after, [("42 — exactly.", [0])], sources=[("calc", "https://calc.example/")], part_index=4
    )
    answer, extras = read(
        chunk({"text": "thinking", "thought": True}),
        chunk({"text": before}),
        chunk({"executableCode": {"language": "PYTHON", "code": "print(6 * 7)"}}),
        chunk({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "42\n"}}),
        chunk({"text": after}, finishReason="STOP", groundingMetadata=metadata),
    )
    (citation,) = extras["grounding"]["citations"]
    assert answer[: citation["at"]].endswith("42 — exactly.")
    assert citation["at"] == len(answer)


def test_offsets_that_miss_their_segment_text_are_placed_by_the_text() -> None:
    text = "Alpha beta. Gamma delta."
    segment = {"startIndex": 0, "endIndex": 5, "text": "Gamma delta."}  # offsets say "Alpha"
    metadata = {
        "groundingChunks": [{"web": {"uri": "https://x.example/", "title": "x.example"}}],
        "groundingSupports": [{"segment": segment, "groundingChunkIndices": [0]}],
    }
    _answer, extras = read(chunk({"text": text}, finishReason="STOP", groundingMetadata=metadata))
    assert extras["grounding"]["citations"] == [{"at": len(text), "sources": [1]}]


METADATA_IN_THE_WILD = {
    "none at all": None,
    "empty": {},
    "queries only": {"webSearchQueries": ["weather"]},
    "supports without chunks": {
        "groundingSupports": [{"segment": {"endIndex": 3}, "groundingChunkIndices": [0]}]
    },
    "indices out of range": {
        "groundingChunks": [{"web": {"uri": "https://x.example/", "title": "x"}}],
        "groundingSupports": [
            {"segment": {"endIndex": 10_000}, "groundingChunkIndices": [0]},
            {"segment": {"endIndex": 2, "partIndex": 9}, "groundingChunkIndices": [0]},
            {"segment": {"endIndex": 2}, "groundingChunkIndices": [7, -1, "0"]},
        ],
    },
    "wrong types everywhere": {
        "webSearchQueries": "weather",
        "groundingChunks": {"web": "x"},
        "groundingSupports": [None, 3, {"segment": "0-3"}],
        "searchEntryPoint": {"renderedContent": 42},
    },
    "a non-web chunk": {"groundingChunks": [{"retrievedContext": {"uri": "gs://b/x"}}]},
}


@pytest.mark.parametrize("metadata", METADATA_IN_THE_WILD.values(), ids=METADATA_IN_THE_WILD)
def test_metadata_partly_or_wholly_absent_never_stops_the_answer(metadata: Any) -> None:
    extra = {} if metadata is None else {"groundingMetadata": metadata}
    answer, extras = read(chunk({"text": "The answer."}, finishReason="STOP", **extra))
    assert answer == "The answer."
    assert "citations" not in (extras.get("grounding") or {})
    assert tools.citations(extras) == []


def test_every_url_is_checked_and_every_list_bounded() -> None:
    hostile = [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "https://exa mple.com/",
        "ftp://files.example/",
        "https://ok.example/" + "a" * tools.URL_MAX_CHARS,
    ]
    chunks = [{"web": {"uri": uri, "title": f"t{i}"}} for i, uri in enumerate(hostile)]
    chunks += [{"web": {"uri": f"https://s{i}.example/", "title": "T" * 999}} for i in range(60)]
    metadata = {
        "webSearchQueries": ["q" * 999] * 30,
        "groundingChunks": chunks,
        "searchEntryPoint": {"renderedContent": "x" * (tools.ENTRY_POINT_MAX_CHARS + 1)},
    }
    _, extras = read(chunk({"text": "ok"}, finishReason="STOP", groundingMetadata=metadata))
    kept = extras["grounding"]
    assert [s["uri"] for s in kept["sources"][: len(hostile)]] == [""] * len(hostile)
    assert [s["title"] for s in kept["sources"][:2]] == ["t0", "t1"]  # shown, unlinked
    assert len(kept["sources"]) == tools.SOURCES_MAX
    assert {len(s["title"]) for s in kept["sources"][len(hostile) :]} == {tools.TITLE_MAX_CHARS}
    assert len(kept["queries"]) == tools.QUERIES_MAX
    assert {len(q) for q in kept["queries"]} == {tools.QUERY_MAX_CHARS}
    assert "entry_point" not in kept  # too large to show as Google made it


def test_url_context_is_kept_with_each_urls_status_in_words() -> None:
    metadata = {
        "urlMetadata": [
            {
                "retrievedUrl": "https://a.example/",
                "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS",
            },
            {
                "retrievedUrl": "https://b.example/",
                "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_PAYWALL",
            },
            {
                "retrievedUrl": "javascript:alert(1)",
                "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_ERROR",
            },
            {"retrievedUrl": "https://c.example/", "urlRetrievalStatus": "SOMETHING_NEW"},
        ]
    }
    _, extras = read(chunk({"text": "ok"}, finishReason="STOP", urlContextMetadata=metadata))
    report = tools.report(extras)
    assert report is not None
    assert [(u.url, u.linked, u.status, u.ok) for u in report.urls] == [
        ("https://a.example/", True, "read", True),
        ("https://b.example/", True, "behind a paywall, not read", False),
        ("javascript:alert(1)", False, "could not be read", False),
        ("https://c.example/", True, "status unknown", False),
    ]


# --- code execution ---------------------------------------------------------------------------


def test_code_and_its_result_become_fences_in_order_with_the_text() -> None:
    answer, _ = read(
        chunk({"text": "I will run it:"}),
        chunk({"executableCode": {"language": "PYTHON", "code": "print('``` no escape')"}}),
        chunk({"codeExecutionResult": {"outcome": "OUTCOME_FAILED", "output": "Traceback"}}),
        chunk({"text": "It failed."}, finishReason="STOP"),
    )
    assert answer == (
        "I will run it:\n"
        f"````python {rendering.EXECUTED_CODE_TAG}\nprint('``` no escape')\n````\n"
        f"```text {rendering.EXECUTION_OUTPUT_TAG} failed\nTraceback\n```\n"
        "It failed."
    )
    html = rendering.render_markdown(answer)
    assert "Code run by the model · python" in html
    assert "Output · failed" in html
    assert html.index("I will run it") < html.index("print") < html.index("Traceback")


async def test_code_parts_go_back_to_gemini_as_they_came_signature_and_all(
    provider: GeminiProvider, fake_upstream: up.FakeUpstream
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Text("Computing."),
                up.Code("print(2 ** 10)", signature=SIG),
                up.CodeResult("1024\n"),
                up.Text("It is 1024."),
            ]
        ),
        up.Reply([up.Text("Yes.")]),
    )
    events = await collect(provider, ask("2 ** 10?", options={"code_execution": True}))
    answer, extras = text_of(events), merged(events)
    assert "print(2 ** 10)" in answer
    assert answer.endswith("It is 1024.")

    history = (
        ChatMessage.of_text("user", "2 ** 10?"),
        ChatMessage("assistant", (TextPart(answer),), extras),
        ChatMessage.of_text("user", "Sure?"),
    )
    await collect(provider, ChatRequest(model=MODEL, messages=history))
    sent = fake_upstream.last_request
    assert sent.json["contents"][1]["parts"] == [
        {"text": "Computing."},
        {
            "executableCode": {"language": "PYTHON", "code": "print(2 ** 10)"},
            "thoughtSignature": SIG,
        },
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1024\n"}},
        {"text": "It is 1024."},
    ]
    assert f'"thoughtSignature":"{SIG}"'.encode() in sent.body
    # To another model the same answer is text, fences and all.
    other = build_contents(history, route="gemini", model="gemini-2.5-pro")
    assert other[1]["parts"] == [{"text": answer}]
