"""Several candidates, token probabilities and a logit bias, from the registry to the wire and
back: each parameter declared once (params) and offered only where a model takes it
(catalog), validated with messages naming the limit, sent where each wire format puts it, and
the answers read back grouped by index, never concatenated, with their log probabilities
checked; over real sockets against the fake upstream, every body valid for its route."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from chatapp.providers import catalog, logprobs, params
from chatapp.providers.gemini.google import GeminiProvider
from chatapp.providers.gemini.segmind import SegmindProvider
from chatapp.providers.openai_compat import OpenAICompatProvider
from chatapp.providers.types import (
    CandidateDelta,
    CandidateFinish,
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    Logprobs,
    TokenLogprob,
)
from tests import provider_kit
from tests.fakes import upstream as up
from tests.fakes.gemini_schema import validate_gemini_response
from tests.fakes.openapi import validate_stream_chunk
from tests.provider_kit import of_type, text_of

KEY = "sk-candidates-0123456789abcdef"


def spec(key: str) -> catalog.ModelSpec:
    found = catalog.find_model(*key.split(":", 1))
    assert found is not None
    return found


def ask(model: str, **options: Any) -> ChatRequest:
    return ChatRequest(
        model=model, messages=(ChatMessage.of_text("user", "Hello"),), options=options
    )


def other_text(events: list[Event], index: int) -> str:
    return "".join(e.text for e in of_type(events, CandidateDelta) if e.index == index)


# --- The registry and the catalog ------------------------------------------------------------


def test_candidates_are_one_int_parameter_with_a_place_in_both_wire_formats():
    candidates = params.BY_NAME["candidate_count"]
    assert (candidates.label, candidates.kind, candidates.offered) == ("Candidates", "int", True)
    assert params.wire_fields({"candidate_count": 3}, "openai") == {"n": 3}
    assert params.wire_fields({"candidate_count": 3}, "gemini") == {
        "generationConfig": {"candidateCount": 3}
    }


@pytest.mark.parametrize(
    ("key", "offered"),
    [
        ("aimlapi:google/gemini-2.5-flash", True),
        ("aimlapi:google/gemini-3-1-pro-preview", True),
        ("aimlapi:gemini-1.5-pro", False),  # legacy ids take no `n`
        ("aimlapi:google/gemini-pro", False),
        ("gemini:gemini-2.5-pro", True),
        ("gemini:gemini-3-pro-preview", True),
        ("segmind:gemini-2.5-flash", True),
        ("segmind:gemini-1.5-pro", True),
    ],
)
def test_candidates_are_offered_only_where_the_model_takes_them(key: str, offered: bool):
    assert ("candidate_count" in spec(key).ranges) is offered


def test_more_candidates_than_the_cap_are_refused_naming_the_cap_and_the_model():
    options, errors = catalog.validate_options(
        spec("aimlapi:google/gemini-2.5-flash"), {"candidate_count": "5"}
    )
    assert options == {}
    assert errors == {
        "candidate_count": "Candidates must be 1–4 for Gemini 2.5 Flash on AI/ML API (got 5)."
    }
    options, errors = catalog.validate_options(
        spec("gemini:gemini-2.5-flash"), {"candidate_count": "0"}
    )
    assert errors["candidate_count"].startswith("Candidates must be 1–4 for Gemini 2.5 Flash")


def test_a_legacy_id_refuses_candidates_as_it_refuses_any_parameter_it_lacks():
    _, errors = catalog.validate_options(spec("aimlapi:gemini-1.5-pro"), {"candidate_count": "2"})
    assert errors == {
        "candidate_count": "Gemini 1.5 Pro on AI/ML API does not accept Candidates; leave it empty."
    }


@pytest.mark.parametrize(
    ("key", "offered"),
    [
        ("aimlapi:google/gemini-2.5-flash", True),
        ("aimlapi:gemini-1.5-pro", False),
        ("gemini:gemini-2.5-flash", True),
        ("gemini:gemini-2.5-flash-lite", True),
        ("gemini:gemini-2.5-pro", False),
        ("segmind:gemini-2.5-flash", False),
    ],
)
def test_token_probabilities_are_offered_where_the_model_returns_them(key: str, offered: bool):
    ranges = spec(key).ranges
    assert ("logprobs" in ranges, "top_logprobs" in ranges) == (offered, offered)


def test_token_probabilities_reach_each_wire_format_with_their_alternatives():
    options = {"logprobs": True, "top_logprobs": 3}
    assert params.wire_fields(options, "openai") == {"logprobs": True, "top_logprobs": 3}
    assert params.wire_fields(options, "gemini") == {
        "generationConfig": {"responseLogprobs": True, "logprobs": 3}
    }


def test_top_alternatives_need_token_probabilities_on():
    model = spec("aimlapi:google/gemini-2.5-flash")
    _, errors = catalog.validate_options(model, {"top_logprobs": "3"})
    assert errors == {
        "top_logprobs": "Top alternatives is sent only with Token probabilities on: turn it on, "
        "or clear Top alternatives."
    }
    options, errors = catalog.validate_options(model, {"logprobs": "on", "top_logprobs": "3"})
    assert (options, errors) == ({"logprobs": True, "top_logprobs": 3}, {})
    _, errors = catalog.validate_options(model, {"logprobs": "on", "top_logprobs": "21"})
    assert errors["top_logprobs"].startswith("Top alternatives must be 0–20")


LEGACY = "aimlapi:gemini-1.5-flash"


def bias(value: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return catalog.validate_options(spec(LEGACY), {"logit_bias": value})


def test_a_logit_bias_is_offered_where_documented_only():
    assert "logit_bias" in spec(LEGACY).ranges
    assert "logit_bias" not in spec("aimlapi:google/gemini-2.5-flash").ranges
    assert "logit_bias" not in spec("gemini:gemini-2.5-flash").ranges


def test_a_logit_bias_is_json_of_token_ids_to_whole_biases_sent_as_typed():
    options, errors = bias('{"1234": -100, " 42 ": 5, "7": 100.0}')
    assert errors == {}
    assert options == {"logit_bias": {"1234": -100, "42": 5, "7": 100}}
    assert params.wire_fields(options, "openai") == {
        "logit_bias": {"1234": -100, "42": 5, "7": 100}
    }
    assert bias({"9": -3}) == ({"logit_bias": {"9": -3}}, {})  # stored settings
    assert bias("{}") == ({}, {})  # no entries: not set


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ('{"hello": 1}', "Logit bias: keys are token ids, whole numbers from 0 to 2,147,483,647"),
        ('{"-1": 1}', "Logit bias: keys are token ids"),
        ('{"99999999999": 1}', "Logit bias: keys are token ids"),
        ('{"1": 101}', "Logit bias: the bias of token 1 must be -100–100 for Gemini 1.5 Flash"),
        ('{"1": -100.5}', "Logit bias: the bias of token 1 must be a whole number"),
        ('{"1": "5"}', "Logit bias: the bias of token 1 must be a whole number"),
        ('{"1": true}', "Logit bias: the bias of token 1 must be a whole number"),
        ('{"1": NaN}', "Logit bias: the bias of token 1 must be a whole number"),
        ("[1, 2]", "Logit bias must be a JSON object of token ids to biases"),
        ("{1: 2}", "Logit bias must be a JSON object such as"),
        (json.dumps({str(i): 1 for i in range(101)}), "Logit bias: at most 100 token ids"),
        ("{" + " " * 10_001 + "}", "Logit bias: at most 10,000 characters."),
    ],
)
def test_a_logit_bias_that_is_wrong_is_refused_saying_what_and_the_limit(typed: str, message: str):
    options, errors = bias(typed)
    assert options == {}
    assert errors["logit_bias"].startswith(message), errors


# --- Reading several answers and their probabilities -----------------------------------------


def test_openai_logprobs_are_checked_entry_by_entry():
    value = {
        "content": [
            {"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hey", "logprob": -2.5}]},
            {"token": "!", "logprob": float("nan"), "top_logprobs": []},  # not finite
            {"token": 5, "logprob": -1},  # not a string
            {"token": " there", "logprob": 0.5, "top_logprobs": []},  # above 0
            {"token": " you", "logprob": -9999.0, "top_logprobs": "no"},
            "junk",
        ]
    }
    assert logprobs.from_openai(value) == (
        TokenLogprob("Hi", -0.1, (("Hey", -2.5),)),
        TokenLogprob(" you", -1000.0, ()),
    )
    assert logprobs.from_openai(None) == () == logprobs.from_openai({"content": "x"})


def test_gemini_logprobs_pair_each_chosen_token_with_the_top_candidates_of_its_step():
    value = {
        "chosenCandidates": [
            {"token": "A", "logProbability": -0.2},
            {"token": "B", "logProbability": -0.3},
        ],
        "topCandidates": [
            {"candidates": [{"token": "A", "logProbability": -0.2}, {"token": "a"}]},
        ],
    }
    assert logprobs.from_gemini(value) == (
        TokenLogprob("A", -0.2, (("A", -0.2),)),
        TokenLogprob("B", -0.3, ()),
    )


def test_kept_probabilities_are_bounded_and_say_how_many_were_not_kept():
    kept = logprobs.Kept()
    many = [TokenLogprob("x" * 100, -0.5, tuple(("y", -1.0) for _ in range(30)))]
    kept.add(logprobs.from_openai({"content": [{"token": "x" * 100, "logprob": -0.5}]}))
    assert len(kept.tokens[0][0]) == logprobs.TOKEN_MAX_CHARS
    kept.add(many * (logprobs.MAX_TOKENS + 5))
    stored = kept.stored()
    assert stored is not None
    assert len(stored["tokens"]) == logprobs.MAX_TOKENS
    assert stored["dropped"] == 6
    report = logprobs.report({"logprobs": stored})
    assert report is not None
    assert len(report.tokens) == logprobs.MAX_TOKENS
    assert report.dropped == 6


def test_the_report_shows_whitespace_and_percentages_and_ignores_a_stored_mess():
    stored = {
        "tokens": [[" ", math.log(0.5), [["\n", math.log(0.25)]]], ["!", 3.0, []], "junk"],
        "dropped": -4,
    }
    report = logprobs.report({"logprobs": stored})
    assert report is not None
    assert [(t.token, t.percent) for t in report.tokens] == [("␣", "50.0%")]
    assert [(a.token, a.percent) for a in report.tokens[0].alternatives] == [("↵", "25.0%")]
    assert (report.dropped, report.average) == (0, "50.0%")
    assert logprobs.report({}) is None
    assert logprobs.report({"logprobs": {"tokens": []}}) is None


# --- Over the wire, against the fake upstream ------------------------------------------------


def openai(client: httpx.AsyncClient, fake: up.FakeUpstream) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        alias="aimlapi", client=client, api_key=KEY, base_url=fake.openai_base_url
    )


def google(client: httpx.AsyncClient, fake: up.FakeUpstream) -> GeminiProvider:
    return GeminiProvider(alias="gemini", client=client, api_key=KEY, base_url=fake.gemini_base_url)


def segmind(client: httpx.AsyncClient, fake: up.FakeUpstream) -> SegmindProvider:
    return SegmindProvider(
        alias="segmind",
        client=client,
        api_key=KEY,
        base_url=fake.segmind_base_url,
        status_interval=0.02,
        reveal_seconds=0,
    )


ROUTES = {
    "aimlapi": (openai, "google/gemini-2.5-flash"),
    "gemini": (google, "gemini-2.5-flash"),
    "segmind": (segmind, "gemini-2.5-flash"),
}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_several_candidates_come_apart_by_index_each_with_its_own_finish(
    http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream, route: str
):
    make, model = ROUTES[route]
    fake_upstream.enqueue(
        up.Reply.candidates("The first answer.", "A second one, longer.", finishes={1: "length"})
    )
    collect, _ = provider_kit.collectors(lambda: ask(model, candidate_count=2))
    events = await collect(make(http_client, fake_upstream))
    assert text_of(events) == "The first answer."
    assert other_text(events, 1) == "A second one, longer."
    assert events[-1] == Finish(reason="stop", raw="STOP" if route != "aimlapi" else "stop")
    raw = "MAX_TOKENS" if route != "aimlapi" else "length"
    assert of_type(events, CandidateFinish) == [CandidateFinish(1, "length", raw)]
    body = fake_upstream.last_request.json
    if route == "aimlapi":
        assert body["n"] == 2
    else:
        config = (
            body["messages"]["generationConfig"] if route == "segmind" else body["generationConfig"]
        )
        assert config["candidateCount"] == 2


async def test_a_choice_beyond_those_asked_for_is_ignored(
    http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream
):
    fake_upstream.enqueue(up.Reply.candidates("one", "two", "three"))
    collect, _ = provider_kit.collectors(lambda: ask("google/gemini-2.5-flash", candidate_count=2))
    events = await collect(openai(http_client, fake_upstream))
    assert (text_of(events), other_text(events, 1), other_text(events, 2)) == ("one", "two", "")
    assert [e.index for e in of_type(events, CandidateFinish)] == [1]


PROBS: list[up.TokenProb] = [("Hel", -0.05, [("Hel", -0.05), ("Hi", -3.2)])]


@pytest.mark.parametrize("route", ["aimlapi", "gemini"])
async def test_token_probabilities_come_with_the_answer_and_each_candidate(
    http_client: httpx.AsyncClient, fake_upstream: up.FakeUpstream, route: str
):
    make, model = ROUTES[route]
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Text("Hel", logprobs=PROBS),
                up.Text("Yo", index=1, logprobs=[("Yo", -0.7, [])]),
                up.Text("lo", logprobs=[("lo", -0.01, [("lo", -0.01)])]),
            ]
        )
    )
    collect, _ = provider_kit.collectors(
        lambda: ask(model, candidate_count=2, logprobs=True, top_logprobs=2)
    )
    events = await collect(make(http_client, fake_upstream))
    got = of_type(events, Logprobs)
    assert [(e.index, [t.token for t in e.tokens]) for e in got] == [
        (0, ["Hel"]),
        (1, ["Yo"]),
        (0, ["lo"]),
    ]
    assert got[0].tokens[0] == TokenLogprob("Hel", -0.05, (("Hel", -0.05), ("Hi", -3.2)))


def test_the_fakes_candidates_and_logprobs_match_each_protocols_published_types(
    fake_upstream: up.FakeUpstream,
):
    def script() -> up.Reply:
        return up.Reply(
            [up.Text("A", logprobs=PROBS), up.Text("B", index=1, logprobs=PROBS)],
            finishes={1: "length"},
        )

    fake_upstream.enqueue(script(), script(), script())
    body = {
        "model": "google/gemini-2.5-flash",
        "messages": [{"role": "user", "content": "hi"}],
        "n": 2,
        "logprobs": True,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    stream = httpx.post(
        f"{fake_upstream.openai_base_url}/chat/completions", json=body, headers=headers
    )
    chunks = [
        json.loads(line[6:]) for line in stream.text.split("\n") if line.startswith("data: {")
    ]
    for chunk in chunks:
        validate_stream_chunk(chunk)
    finishes = {
        c["index"]: c["finish_reason"] for ch in chunks for c in ch["choices"] if c["finish_reason"]
    }
    assert finishes == {0: "stop", 1: "length"}

    url = f"{fake_upstream.gemini_base_url}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    native = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    streamed = httpx.post(url, json=native, headers={"x-goog-api-key": KEY})
    responses = [
        json.loads(line[6:]) for line in streamed.text.split("\n") if line.startswith("data: ")
    ]
    whole = httpx.post(
        url.replace("streamGenerateContent?alt=sse", "generateContent"),
        json=native,
        headers={"x-goog-api-key": KEY},
    ).json()
    for response in [*responses, whole]:
        validate_gemini_response(response)
    assert [c["index"] for c in whole["candidates"]] == [0, 1]
    assert [c["finishReason"] for c in whole["candidates"]] == ["STOP", "MAX_TOKENS"]
    assert whole["candidates"][1]["logprobsResult"]["chosenCandidates"] == [
        {"token": "Hel", "logProbability": -0.05}
    ]
