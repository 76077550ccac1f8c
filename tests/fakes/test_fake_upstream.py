"""The fake upstream's own behaviour: wire shapes, scripting, recording and synchronisation."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import upstream as up
from tests.fakes.fixtures import held_gate_problem
from tests.fakes.openapi import (
    accept_null_where_nullable,
    validate_chat_request,
    validate_chat_response,
    validate_stream_chunk,
)
from tests.fakes.schemas import extract

KEY = "fake-upstream-test-key"
SPEC = Path(__file__).resolve().parents[2] / "shared/specs/openai-openapi.json"
SCHEMAS = Path(__file__).resolve().parent / "fakes" / "schemas"


def body(text: str = "hello there", *, stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "model": "google/gemini-2.5-flash",
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
        **extra,
    }


@pytest.fixture
def client(fake_upstream: up.FakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake_upstream.openai_base_url,
        timeout=5,
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        yield client


def parse_sse(lines: Iterator[str]) -> list[Any]:
    """The `data:` payloads of a stream: parsed JSON, or the raw string when not JSON."""
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            payload = line[6:]
            try:
                events.append(json.loads(payload))
            except ValueError:
                events.append(payload)
    return events


def stream_events(client: httpx.Client, payload: dict[str, Any] | None = None) -> list[Any]:
    with client.stream("POST", "/chat/completions", json=payload or body()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.iter_lines())


def content_of(events: list[Any], index: int = 0) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events
        if isinstance(event, dict)
        for choice in event.get("choices", [])
        if choice["index"] == index
    )


# --- wire shapes ------------------------------------------------------------------------------


def test_default_stream_has_the_documented_shape_and_validates(client: httpx.Client) -> None:
    events = stream_events(client)

    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for chunk in chunks:
        validate_stream_chunk(chunk)
    assert chunks[0]["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert content_of(chunks) == "Echo: hello there"
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"][0]["delta"] == {}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert set(usage["usage"]) == {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "completion_tokens_details",
    }
    assert "reasoning_tokens" in usage["usage"]["completion_tokens_details"]
    assert set(usage["meta"]["usage"]) == {"credits_used", "usd_spent"}
    assert len({chunk["id"] for chunk in chunks}) == 1


def test_non_stream_answer_validates_and_status_is_scriptable(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(
        up.Reply(up.words("Legacy answer"), status=201, model="google/gemini-3.1-pro-preview")
    )
    response = client.post("/chat/completions", json=body(stream=False))

    assert response.status_code == 201
    data = response.json()
    validate_chat_response(data)
    assert data["model"] == "google/gemini-3.1-pro-preview"
    assert data["choices"][0]["message"]["content"] == "Legacy answer"
    assert data["meta"]["usage"]["credits_used"] > 0


def test_stream_mode_overrides_what_the_request_asked(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(
        up.Reply([up.Text("json")], stream_mode="json"),
        up.Reply([up.Text("sse")], stream_mode="sse"),
    )
    as_json = client.post("/chat/completions", json=body(stream=True))
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()["choices"][0]["message"]["content"] == "json"

    with client.stream("POST", "/chat/completions", json=body(stream=False)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert content_of(parse_sse(response.iter_lines())) == "sse"


def test_every_scripted_step_renders_and_the_json_chunks_validate(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Reasoning("Thinking"),
                up.Text("A", index=0),
                up.Text("B", index=1),
                up.ExtraContent({"google": {"thought_signature": "c2lnbmF0dXJl"}}),
                up.Comment("keep-alive"),
                up.Data(
                    {
                        "id": "x",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [],
                    }
                ),
                up.Raw(b"data: {not json\n\n"),
            ],
            ts=True,
        )
    )
    with client.stream("POST", "/chat/completions", json=body()) as response:
        raw = response.read().decode()

    assert ": keep-alive\n\n" in raw
    assert "data: {not json\n\n" in raw
    events = parse_sse(iter(raw.splitlines()))
    chunks = [e for e in events if isinstance(e, dict)]
    for chunk in chunks:
        validate_stream_chunk(chunk)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert {"reasoning_content": "Thinking"} in deltas
    assert {"extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}}} in deltas
    assert content_of(chunks, 0) == "A"
    assert content_of(chunks, 1) == "B"
    finish = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert [choice["index"] for choice in finish["choices"]] == [0, 1]
    stamps = [c["x_ts"] for c in chunks if "x_ts" in c]
    # Every rendered chunk is stamped (the scripted Data chunk is sent as written).
    assert len(stamps) == len(chunks) - 1
    assert stamps == sorted(stamps)
    assert "{not json" in events


def test_non_stream_answer_carries_every_choice_reasoning_and_extras(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(
        up.Reply(
            [
                up.Reasoning("Hmm"),
                up.Text("A"),
                up.Text("B", index=1),
                up.ExtraContent({"google": {"thought_signature": "s1"}}),
                up.ExtraContent({"google": {"traffic_type": "ON_DEMAND"}}),
            ]
        )
    )
    data = client.post("/chat/completions", json=body(stream=False)).json()

    validate_chat_response(data)
    first, second = data["choices"]
    assert first["message"]["content"] == "A"
    assert first["message"]["reasoning_content"] == "Hmm"
    assert first["message"]["extra_content"] == {
        "google": {"thought_signature": "s1", "traffic_type": "ON_DEMAND"}
    }
    assert second["message"]["content"] == "B"


def test_usage_is_sent_as_scripted(fake_upstream: up.FakeUpstream, client: httpx.Client) -> None:
    fake_upstream.enqueue(
        up.Reply([up.Text("x")], usage=up.Usage(prompt_tokens=3, total_tokens=99)),
        up.Reply([up.Text("x")], usage=None),
    )
    usage_chunk = stream_events(client)[-2]
    assert usage_chunk["usage"] == {"prompt_tokens": 3, "total_tokens": 99}
    assert "meta" not in usage_chunk

    events = stream_events(client)
    assert not any(isinstance(e, dict) and "usage" in e for e in events)


def test_finish_and_done_can_be_left_out(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("cut")], finish=None, usage=None, done=False))
    events = stream_events(client)
    assert "[DONE]" not in events
    assert all(c["choices"][0]["finish_reason"] is None for c in events)


# --- auth, ids, recording ---------------------------------------------------------------------


def test_missing_or_wrong_key_gets_aimlapi_401_and_keeps_the_queue(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("queued")], stream_mode="json"))

    anonymous = httpx.post(f"{fake_upstream.openai_base_url}/chat/completions", json=body())
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"message", "path", "requestId", "statusCode", "timestamp"}

    fake_upstream.api_key = "the-right-key"
    assert client.post("/chat/completions", json=body()).status_code == 401
    fake_upstream.api_key = KEY
    answer = client.post("/chat/completions", json=body())
    assert answer.json()["choices"][0]["message"]["content"] == "queued"


def test_inference_id_and_client_request_id(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("x")], inference_id="inf-fixed"))
    first = client.post(
        "/chat/completions", json=body(stream=False), headers={"X-Client-Request-Id": "turn-1"}
    )
    second = client.post("/chat/completions", json=body(stream=False))

    assert first.headers["x-inference-id"] == "inf-fixed"
    assert first.headers["x-client-request-id"] == "turn-1"
    assert "x-client-request-id" not in second.headers
    assert second.headers["x-inference-id"] == fake_upstream.requests[1].inference_id


def test_requests_are_recorded(fake_upstream: up.FakeUpstream, client: httpx.Client) -> None:
    client.post("/chat/completions?trace=1&x=", json=body("recorded", stream=False))
    client.get("/models")

    chat, models = fake_upstream.wait_for_requests(2)
    assert fake_upstream.wait_for_requests(1, path="/v1/models") == [models]
    assert chat.method == "POST"
    assert chat.path == "/v1/chat/completions"
    assert chat.query == {"trace": "1", "x": ""}
    assert chat.headers["AUTHORIZATION"] == f"Bearer {KEY}"
    assert chat.bearer == KEY
    assert chat.json == body("recorded", stream=False)
    assert json.loads(chat.body) == chat.json
    assert chat.received_at <= chat.closed_at
    assert not chat.client_disconnected
    assert fake_upstream.chat_requests == [chat]
    assert fake_upstream.last_request is models
    validate_chat_request(chat.json)


def test_waiting_for_requests_that_never_come_fails_with_what_arrived(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    client.get("/models")
    with pytest.raises(TimeoutError, match=r"2 request\(s\).*GET /v1/models"):
        fake_upstream.wait_for_requests(2, timeout=0.05)


# --- gates, drops, stalls ---------------------------------------------------------------------


def test_gate_holds_the_stream_mid_answer_until_released(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("Hel"), up.Gate("mid"), up.Text("lo")]))
    with client.stream("POST", "/chat/completions", json=body()) as response:
        lines = response.iter_lines()
        seen: list[Any] = []
        while content_of(seen) != "Hel":
            seen += parse_sse(iter([next(lines)]))
        fake_upstream.wait_for_gate("mid")
        assert fake_upstream.held_gates() == {"mid": 1}
        fake_upstream.release("mid")
        seen += parse_sse(lines)

    assert content_of(seen) == "Hello"
    assert fake_upstream.held_gates() == {}


def test_a_released_gate_lets_later_streams_through(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.release("open")
    fake_upstream.enqueue(up.Reply([up.Gate("open"), up.Text("through")]))
    assert content_of(stream_events(client)) == "through"


def test_gate_before_headers_holds_the_response_head(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("late")], before_headers=[up.Gate("head")]))
    # Release from another thread once the request is parked: the client blocks meanwhile.
    releaser = _in_thread(
        lambda: (fake_upstream.wait_for_gate("head"), fake_upstream.release("head"))
    )
    assert content_of(stream_events(client)) == "late"
    releaser.join(5)


def test_drop_mid_stream_is_an_incomplete_chunked_body(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("Half"), up.Drop()]))
    seen: list[str] = []

    def read_all() -> None:
        with client.stream("POST", "/chat/completions", json=body()) as response:
            seen.extend(response.iter_lines())

    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        read_all()

    assert content_of(parse_sse(iter(seen))) == "Half"
    record = fake_upstream.wait_closed(0)
    assert record.dropped
    assert not record.client_disconnected


def test_drop_before_headers_sends_no_response(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply(before_headers=[up.Drop()]))
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        client.post("/chat/completions", json=body())


def test_stall_keeps_the_connection_until_the_client_gives_up(
    fake_upstream: up.FakeUpstream,
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("Start"), up.Stall()]))

    def read_all() -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=0.2)) as impatient,
            impatient.stream(
                "POST",
                f"{fake_upstream.openai_base_url}/chat/completions",
                json=body(),
                headers={"Authorization": f"Bearer {KEY}"},
            ) as response,
        ):
            for _ in response.iter_lines():
                pass

    with pytest.raises(httpx.ReadTimeout):
        read_all()
    record = fake_upstream.wait_closed(0)
    assert record.client_disconnected
    assert not record.dropped


async def test_reset_aborts_streams_in_flight(fake_upstream: up.FakeUpstream) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("x"), up.Gate("never")]))
    async with httpx.AsyncClient(timeout=5) as client:
        request = client.build_request(
            "POST",
            f"{fake_upstream.openai_base_url}/chat/completions",
            json=body(),
            headers={"Authorization": f"Bearer {KEY}"},
        )
        response = await client.send(request, stream=True)
        await fake_upstream.wait_for_gate_async("never")
        fake_upstream.reset()
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()
    assert fake_upstream.requests == []
    assert fake_upstream.held_gates() == {}


def test_held_gates_clear_when_the_client_leaves(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("x"), up.Gate("left-behind")]))
    with client.stream("POST", "/chat/completions", json=body()) as response:
        # Keep the iterator: dropping it would let httpcore close the connection right away.
        lines = response.iter_lines()
        next(lines)
        fake_upstream.wait_for_gate("left-behind")
        assert fake_upstream.wait_gates_clear(timeout=0.05) == {"left-behind": 1}
    # Leaving the block closed the connection mid-body: the fake sees EOF and lets go.
    assert fake_upstream.wait_gates_clear(timeout=5) == {}
    assert fake_upstream.wait_closed(0).client_disconnected


async def test_hundreds_of_concurrent_streams(fake_upstream: up.FakeUpstream) -> None:
    count = 200
    fake_upstream.enqueue(
        *(up.Reply([up.Text(f"{i}:"), up.Gate("go"), up.Text("done")]) for i in range(count))
    )
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def one() -> str:
            async with client.stream(
                "POST",
                f"{fake_upstream.openai_base_url}/chat/completions",
                json=body(),
                headers={"Authorization": f"Bearer {KEY}"},
            ) as response:
                lines = [line async for line in response.aiter_lines()]
            return content_of(parse_sse(iter(lines)))

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await fake_upstream.wait_for_gate_async("go", count=count, timeout=20)
        fake_upstream.release("go")
        answers = await asyncio.gather(*tasks)

    assert sorted(answers) == sorted(f"{i}:done" for i in range(count))
    assert all(r.closed_at is not None for r in fake_upstream.requests)


# --- error replies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "status", "content_type", "check"),
    [
        (up.ErrorReply.bad_request(), 400, "application/json", lambda b: b["statusCode"] == 400),
        (up.ErrorReply.unauthorized(), 401, "application/json", lambda b: "message" in b),
        (
            up.ErrorReply.out_of_credits(),
            403,
            "application/json",
            lambda b: b["statusCode"] == "403",
        ),
        (
            up.ErrorReply.model_not_found("gemini-pro"),
            404,
            "application/json",
            lambda b: "gemini-pro" in b["message"],
        ),
        (up.ErrorReply.rate_limited(), 429, "application/json", lambda b: b["statusCode"] == "429"),
        (
            up.ErrorReply.internal_error(),
            500,
            "application/json",
            lambda b: b["path"] == "/v1/chat/completions",
        ),
        (
            up.ErrorReply.wrapped(400, "Unable to access model gemini-1.5-pro"),
            500,
            "application/json",
            lambda b: b["message"] == "400 Unable to access model gemini-1.5-pro",
        ),
        (
            up.ErrorReply.bad_gateway(),
            502,
            "text/html",
            lambda b: "<title>502 Bad Gateway</title>" in b,
        ),
        (
            up.ErrorReply.service_unavailable(),
            503,
            "application/problem+json",
            lambda b: (
                set(b) == {"title", "status", "message", "error"}
                and set(b["error"]) == {"name", "message"}
            ),
        ),
        (
            up.ErrorReply.gateway_timeout(),
            504,
            "application/json",
            lambda b: b["statusCode"] == 504,
        ),
        (up.ErrorReply.text(500, "plain words"), 500, "text/plain", lambda b: b == "plain words"),
    ],
)
def test_error_replies(
    fake_upstream: up.FakeUpstream,
    client: httpx.Client,
    reply: up.ErrorReply,
    status: int,
    content_type: str,
    check: Any,
) -> None:
    fake_upstream.enqueue(reply)
    response = client.post("/chat/completions", json=body())

    assert response.status_code == status
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["x-inference-id"]
    parsed = response.json() if "json" in content_type else response.text
    assert check(parsed)


def test_rate_limit_can_carry_retry_after(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.ErrorReply.rate_limited(retry_after=7))
    assert client.post("/chat/completions", json=body()).headers["retry-after"] == "7"


def test_echo_key_placeholder_is_replaced_by_the_key_sent(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(
        up.ErrorReply.aimlapi(401, f"Key {up.ECHO_KEY} is invalid", headers={"X-Echo": up.ECHO_KEY})
    )
    response = client.post("/chat/completions", json=body())
    assert response.json()["message"] == f"Key {KEY} is invalid"
    assert response.headers["x-echo"] == KEY


# --- other routes -----------------------------------------------------------------------------


def test_models_list_needs_no_auth_and_supports_etag(fake_upstream: up.FakeUpstream) -> None:
    url = f"{fake_upstream.openai_base_url}/models"
    listing = httpx.get(url)
    assert listing.status_code == 200
    models = listing.json()["data"]
    assert {"id", "type", "aliases", "info"} <= set(models[0])
    assert {"name", "contextLength", "outputMax"} <= set(models[0]["info"])

    again = httpx.get(url, headers={"If-None-Match": listing.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


# Bodies no adapter would send: what the fake does with them is the point.
@pytest.mark.fake_upstream_any_request
def test_unknown_paths_404_and_gemini_routes_check_their_key(
    fake_upstream: up.FakeUpstream,
) -> None:
    base = fake_upstream.base_url
    missing = httpx.post(f"{base}/v1/embeddings", json={})
    assert missing.status_code == 404
    assert missing.json()["path"] == "/v1/embeddings"
    # Google's and Segmind's renderers (tests/providers/test_google.py, test_segmind.py).
    gemini = f"{base}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert httpx.post(gemini, json={}).json()["error"]["status"] == "PERMISSION_DENIED"
    segmind = httpx.post(f"{base}/segmind/gemini-1.5-pro", json={})
    assert segmind.status_code == 401
    assert isinstance(segmind.json()["error"], str)


def test_keep_alive_serves_several_requests_on_one_connection(
    fake_upstream: up.FakeUpstream,
) -> None:
    payload = json.dumps(body(stream=False)).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    with socket.create_connection(("127.0.0.1", fake_upstream.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        for _ in range(2):
            sock.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, value = line.decode().split(":", 1)
                headers[name.lower()] = value.strip()
            answer = json.loads(reader.read(int(headers["content-length"])))
            assert answer["choices"][0]["message"]["content"] == "Echo: hello there"
    assert len(fake_upstream.requests) == 2


# --- helpers, CLI, schemas --------------------------------------------------------------------


def test_chunks_and_words_join_back() -> None:
    text = "Hello,  wide\nworld! "
    assert "".join(step.text for step in up.chunks(text, size=3)) == text
    assert "".join(step.text for step in up.words(text)) == text
    assert len(up.words("one two three")) == 3


def test_before_headers_takes_control_steps_only() -> None:
    with pytest.raises(TypeError):
        up.Reply(before_headers=[up.Text("no")])


def test_cli_serves_the_default_reply() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.upstream",
            "--port",
            "0",
            "--token-delay",
            "0",
            "--first-token-delay",
            "0",
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        base_url = first_line.rsplit(" ", 1)[-1].strip()
        answer = httpx.post(
            f"{base_url}/v1/chat/completions",
            json=body("from the CLI", stream=False),
            headers={"Authorization": "Bearer x"},
            timeout=5,
        )
        assert answer.json()["choices"][0]["message"]["content"] == "Echo: from the CLI"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_nullable_schemas_accept_null() -> None:
    schema = {"type": "string", "enum": ["stop"], "nullable": True}
    assert accept_null_where_nullable(schema) == {
        "anyOf": [{"type": "string", "enum": ["stop"]}, {"type": "null"}]
    }
    with pytest.raises(AssertionError, match=r"\$\.choices\[0\]\.finish_reason"):
        validate_stream_chunk(
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "finished"}],
            }
        )


@pytest.mark.skipif(not SPEC.exists(), reason="OpenAI's full spec is not beside the repository")
def test_committed_schema_excerpt_matches_the_spec() -> None:
    assert extract.extract_file(SPEC) == (SCHEMAS / "openai-chat.json").read_text(encoding="utf-8")
    license_text = SPEC.with_name("openai-openapi.LICENSE").read_text(encoding="utf-8")
    assert (SCHEMAS / "LICENSE").read_text(encoding="utf-8") == license_text


def _in_thread(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_stream_left_at_a_gate_is_reported_unless_expected(
    fake_upstream: up.FakeUpstream, client: httpx.Client
) -> None:
    fake_upstream.enqueue(up.Reply([up.Text("x"), up.Gate("forgotten")]))
    with client.stream("POST", "/chat/completions", json=body()) as response:
        lines = response.iter_lines()
        next(lines)
        fake_upstream.wait_for_gate("forgotten")
        problem = held_gate_problem(fake_upstream, test_failed=False, allowed=False, grace=0.05)
        assert problem is not None
        assert "'forgotten': 1" in problem
        assert held_gate_problem(fake_upstream, test_failed=True, allowed=False, grace=0) is None
        assert held_gate_problem(fake_upstream, test_failed=False, allowed=True, grace=0) is None
        fake_upstream.release("forgotten")
    assert held_gate_problem(fake_upstream, test_failed=False, allowed=False) is None


def test_bench_replies_are_paced_and_stamped(fake_upstream):
    import httpx

    from tests.fakes.upstream import STAMP, At, Text, bench_reply

    reply = bench_reply("please BENCH tokens=10 rate=100 chunk=4 ttft=0.05 thanks")
    texts = [s for s in reply.steps if isinstance(s, Text)]
    paces = [s.seconds for s in reply.steps if isinstance(s, At)]
    assert [t.text.count("tok") for t in texts] == [4, 4, 2]
    assert paces == [0.05, 0.09, 0.13]
    assert all(t.stamp for t in texts)
    assert bench_reply("no directive here") is None

    fake_upstream.enqueue(reply)
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    before = time.time_ns()
    response = httpx.post(
        f"{fake_upstream.openai_base_url}/chat/completions",
        json=body,
        headers={"Authorization": "Bearer k"},
    )
    stamps = [int(s) for s in STAMP.findall(response.text)]
    assert len(stamps) == 3
    assert before < stamps[0] < stamps[1] < stamps[2] < time.time_ns()
    log = httpx.get(f"{fake_upstream.base_url}/_fake/requests").json()
    # Paced from the head: no chunk before its time after the request came (it may be later
    # on a loaded machine: three chunks late by 130 ms went out together in one CI run).
    received_ns = log[-1]["received_at"] * 1e9
    early = [
        (stamp - received_ns) / 1e9 < pace - 0.001
        for stamp, pace in zip(stamps, paces, strict=True)
    ]
    assert early == [False, False, False]
    assert log[-1]["path"] == "/v1/chat/completions"
    assert log[-1]["closed_at"] is not None


def test_bench_replies_come_in_paragraphs():
    from tests.fakes.upstream import Text, bench_reply

    texts = [
        s.text
        for s in bench_reply("BENCH tokens=120 rate=100 chunk=1").steps
        if isinstance(s, Text)
    ]
    assert sum(t.endswith("\n\n") for t in texts) == 2  # after tokens 50 and 100
    assert texts[49].endswith(" tok\n\n")


# --- Gemini's built-in tools ------------------------------------------------------------------


def gemini_post(fake: up.FakeUpstream, method: str = "streamGenerateContent?alt=sse") -> Any:
    url = f"{fake.gemini_base_url}/models/gemini-2.5-flash:{method}"
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    return httpx.post(url, json=request, headers={"x-goog-api-key": KEY}, timeout=5)


def test_gemini_code_parts_and_tool_metadata_stream_and_answer_whole(fake_upstream):
    metadata = up.grounding_metadata(
        "Zürich.", [("Zürich.", [0])], sources=[("z.ch", "https://z.example/")], queries=["z"]
    )
    urls = {
        "urlMetadata": [
            {
                "retrievedUrl": "https://a.example/",
                "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS",
            }
        ]
    }
    reply = up.Reply(
        [up.Code("print(1)"), up.CodeResult("1\n"), up.Text("Zürich.")],
        grounding=metadata,
        url_context=urls,
    )
    fake_upstream.enqueue(reply, reply)
    lines = gemini_post(fake_upstream).text.splitlines()
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    parts = [part for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"]]
    assert parts == [
        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}},
        {"text": "Zürich."},
    ]
    # Bytes of UTF-8, as Google counts them: "ü" is two.
    assert metadata["groundingSupports"][0]["segment"] == {
        "startIndex": 0,
        "endIndex": 8,
        "text": "Zürich.",
    }
    last = chunks[-1]["candidates"][0]
    assert (last["groundingMetadata"], last["urlContextMetadata"]) == (metadata, urls)
    whole = gemini_post(fake_upstream, "generateContent").json()["candidates"][0]
    assert whole["content"]["parts"] == parts
    assert whole["groundingMetadata"] == metadata
    assert fake_upstream.response_problems == []


def test_a_gemini_response_google_genai_would_refuse_is_reported(fake_upstream):
    fake_upstream.enqueue(up.Reply([up.Text("x")], grounding={"notAField": 1}))
    assert gemini_post(fake_upstream).status_code == 200
    (problem,) = fake_upstream.response_problems
    assert "not a GenerateContentResponse" in problem
    fake_upstream.response_problems.clear()  # seen: the fixture need not fail the test


@pytest.mark.parametrize(
    ("path", "body", "bad"),
    [
        (
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            False,
        ),
        (
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "robot", "content": "hi"}]},
            True,
        ),
        (
            "/v1beta/models/g:streamGenerateContent",
            {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            False,
        ),
        ("/v1beta/models/g:streamGenerateContent", {"contents": [], "bogus": 1}, True),
        (
            "/segmind/g",
            {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "bogus": 1},
            True,
        ),
    ],
)
def test_every_model_request_a_test_makes_is_checked_against_its_protocols_schema(path, body, bad):
    """The fake_upstream fixture fails a test whose adapter sent a body the OpenAI spec or
    google-genai's types refuse (tests/fakes/fixtures.py `request_problems`)."""
    from types import SimpleNamespace

    from tests.fakes.fixtures import request_problems

    problems = request_problems([SimpleNamespace(method="POST", path=path, json=body)])
    assert bool(problems) is bad
    if bad:
        assert f"a request to {path} is not valid" in problems[0]
