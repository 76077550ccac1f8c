"""How every adapter writes its request body (`providers.wire.encode_body`, `request_content`):
the JSON the standard library would write, and a request with images built off the event loop,
which relays every stream's chunks."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatapp.providers.base import Provider
from chatapp.providers.gemini.google import GeminiProvider
from chatapp.providers.gemini.segmind import SegmindProvider
from chatapp.providers.openai_compat import OpenAICompatProvider
from chatapp.providers.types import ChatMessage, ChatRequest, ImagePart, TextPart
from chatapp.providers.wire import encode_body
from tests.fakes import upstream as up


def standard(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# Any text a body carries but lone surrogates, which no UTF-8 body can hold (neither encoder
# writes them).
TEXT = st.text(st.characters(exclude_categories=("Cs",)))
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | TEXT
BODIES = st.dictionaries(
    TEXT,
    st.recursive(
        SCALARS, lambda inner: st.lists(inner) | st.dictionaries(TEXT, inner), max_leaves=20
    ),
)


@given(BODIES)
def test_a_body_is_written_byte_for_byte_as_the_standard_library_writes_it(body):
    assert encode_body(body) == standard(body)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_is_written_as_the_same_value(number):
    # Only the spelling of an exponent may differ (1e-05 / 1e-5): the same JSON number.
    assert json.loads(encode_body({"temperature": number})) == {"temperature": number}


def test_keys_that_are_numbers_are_written_as_strings_as_the_standard_library_does():
    body = {"logit_bias": {1234: -100, 42: 5}}
    assert encode_body(body) == standard(body) == b'{"logit_bias":{"1234":-100,"42":5}}'


def test_an_integer_beyond_64_bits_is_written_as_given():
    body = {"response_format": {"schema": {"maximum": 2**80}}}
    assert encode_body(body) == standard(body)


def test_slashes_and_non_ascii_go_out_unescaped_so_a_signature_returns_byte_for_byte():
    body = {"thought_signature": "c2ln/+==", "text": "naïve — 日本 \u2028"}
    expected = '{"thought_signature":"c2ln/+==","text":"naïve — 日本 \u2028"}'
    assert encode_body(body) == expected.encode()


ADAPTERS = {
    "aimlapi": (OpenAICompatProvider, "openai_base_url", "google/gemini-2.5-flash"),
    "gemini": (GeminiProvider, "gemini_base_url", "gemini-2.5-flash"),
    "segmind": (SegmindProvider, "segmind_base_url", "gemini-2.5-flash"),
}


def threads_building(provider: Provider) -> list[int]:
    """The threads the provider builds its bodies on, as it builds them."""
    seen: list[int] = []
    build = provider.build_body  # type: ignore[attr-defined]

    def recording(request: ChatRequest) -> dict[str, Any]:
        seen.append(threading.get_ident())
        return build(request)

    provider.build_body = recording  # type: ignore[attr-defined]
    return seen


@pytest.mark.parametrize("route", ADAPTERS)
async def test_a_request_with_an_image_is_built_off_the_event_loop_and_text_on_it(
    route: str, fake_upstream: up.FakeUpstream
) -> None:
    """A 3 MB image's base64 and the JSON around it took 26 ms to write with the standard
    library: on the loop, that long without a chunk relayed for anyone."""
    cls, base, model = ADAPTERS[route]
    extra: dict[str, Any] = (
        {"status_interval": 0.02, "reveal_seconds": 0} if route == "segmind" else {}
    )
    async with httpx.AsyncClient(timeout=5.0) as client:
        provider = cls(
            alias=route, client=client, api_key="k", base_url=getattr(fake_upstream, base), **extra
        )
        seen = threads_building(provider)
        image = ImagePart("image/png", b"\x89PNG\r\n\x1a\n" + bytes(4096), 32, 32)
        with_image = ChatRequest(
            model=model,
            messages=(ChatMessage(role="user", parts=(TextPart("What is this?"), image)),),
        )
        text_only = ChatRequest(model=model, messages=(ChatMessage.of_text("user", "Hello"),))
        for request in (with_image, text_only):
            fake_upstream.enqueue(up.Reply([up.Text("A picture.")]))
            [event async for event in provider.stream(request)]
    loop_thread = threading.get_ident()
    assert seen[0] != loop_thread
    assert seen[1] == loop_thread
    assert len(fake_upstream.wait_for_requests(2)) == 2
