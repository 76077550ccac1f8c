"""List prices (providers/prices.py): Google's per million tokens for the catalog's models, the
same on every route that resells them, and the cost of an answer's tokens with its thinking."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chatapp.providers import catalog, prices


def test_every_priced_model_is_in_the_catalog():
    listed = {(spec.route, spec.id) for specs in catalog.CATALOG.values() for spec in specs}
    assert set(prices.PRICES) - listed == set()


@pytest.mark.parametrize(
    ("route", "model_id", "per_million_in", "per_million_out"),
    [
        ("gemini", "gemini-2.5-flash", "0.30", "2.50"),
        ("gemini", "gemini-2.5-pro", "1.25", "10.00"),
        ("gemini", "gemini-2.5-flash-lite", "0.10", "0.40"),
        ("gemini", "gemini-3-flash-preview", "0.50", "3.00"),
        ("gemini", "gemini-3-pro-preview", "2.00", "12.00"),
        ("gemini", "gemini-3.1-pro-preview", "2.00", "12.00"),
        ("aimlapi", "gemini-1.5-pro", "1.25", "5.00"),
        ("aimlapi", "gemini-1.5-flash", "0.075", "0.30"),
        ("aimlapi", "gemini-pro", "0.50", "1.50"),
        ("demo", "demo", "0", "0"),
    ],
)
def test_googles_list_prices(route, model_id, per_million_in, per_million_out):
    assert prices.price_of(route, model_id) == prices.Price(
        Decimal(per_million_in), Decimal(per_million_out)
    )


@pytest.mark.parametrize(
    ("reseller", "google"),
    [
        (("aimlapi", "google/gemini-2.5-flash"), ("gemini", "gemini-2.5-flash")),
        (("aimlapi", "google/gemini-2.5-pro"), ("gemini", "gemini-2.5-pro")),
        (("aimlapi", "google/gemini-3-flash-preview"), ("gemini", "gemini-3-flash-preview")),
        (("aimlapi", "google/gemini-3-1-pro-preview"), ("gemini", "gemini-3.1-pro-preview")),
        (("segmind", "gemini-2.5-flash-lite"), ("gemini", "gemini-2.5-flash-lite")),
        (("segmind", "gemini-3-pro"), ("gemini", "gemini-3-pro-preview")),
    ],
)
def test_a_resold_model_has_googles_price(reseller, google):
    assert prices.PRICES[reseller] == prices.PRICES[google]


def test_a_model_whose_model_moves_has_no_price():
    assert prices.price_of("aimlapi", "google/gemini-flash-latest") is None
    assert prices.price_of("gemini", "no-such-model") is None
    assert prices.list_cost(route="x", model_id="y", prompt_tokens=1, completion_tokens=1) is None


def test_the_cost_is_input_and_output_at_their_prices_to_the_stored_precision():
    cost = prices.list_cost(
        route="gemini", model_id="gemini-2.5-flash", prompt_tokens=1234, completion_tokens=567
    )
    # 1,234 × $0.30 + 567 × $2.50 per million = $0.0003702 + $0.0014175.
    assert cost == Decimal("0.0017877")
    assert (
        prices.list_cost(
            route="gemini", model_id="gemini-2.5-flash", prompt_tokens=None, completion_tokens=None
        )
        is None
    )


@pytest.mark.parametrize(
    ("completion", "reasoning", "prompt", "total", "thoughts_apart", "billed"),
    [
        (100, None, 10, 110, True, 100),  # no thinking
        (100, 40, 10, 150, False, 140),  # Gemini's usage: the total shows thoughts apart
        (100, 40, 10, 110, True, 100),  # OpenAI's usage: thoughts inside the completion
        (100, 40, None, None, True, 140),  # no total: Google's own wire counts them apart
        (100, 40, None, None, False, 100),  # no total: OpenAI's wire counts them inside
    ],
)
def test_thinking_is_billed_as_output_once(
    completion, reasoning, prompt, total, thoughts_apart, billed
):
    assert (
        prices.billed_output_tokens(
            completion=completion,
            reasoning=reasoning,
            prompt=prompt,
            total=total,
            thoughts_apart=thoughts_apart,
        )
        == billed
    )
