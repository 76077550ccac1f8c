"""List prices per model, for the answers whose upstream reports tokens but no dollars (Google,
Segmind) and for the composer's estimate of a prompt's cost.

USD per million tokens, input and output (output includes thinking tokens, as Google bills
them), keyed by route and model id as `catalog.CATALOG` names them. These are Google's
published list prices for the Gemini API as of 2026-12 (ai.google.dev/gemini-api/docs/pricing),
the tier for prompts up to 200k tokens (128k for 1.5) where a model has two. AI/ML API and
Segmind resell the same models: their own figures differ (AI/ML API reports what it charged,
and that figure wins, `turns.persistence.message_finish`), so for them the list price is an
estimate of what the answer cost, not a bill.

Used by `turns.persistence` (the dollars of an answer whose upstream gave none), hence by a
budget in dollars (`turns.limits.check_budget`), and by the composer's estimate (the model
picker's `data-input-price`, `web.templatetags.chat.input_price`). A model not listed here
(Gemini 3.5 Flash and the "latest" aliases, whose model moves) has no price: its answers keep
no dollars and the composer shows no estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MILLION = Decimal(1_000_000)
# The stored precision of `Message.usd_spent` (DecimalField, 8 decimal places).
STORED_PLACES = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: Decimal
    output: Decimal

    def cost(self, *, input_tokens: int, output_tokens: int) -> Decimal:
        amount = (self.input * input_tokens + self.output * output_tokens) / MILLION
        return amount.quantize(STORED_PLACES)


def _usd(input_price: str, output_price: str) -> Price:
    return Price(Decimal(input_price), Decimal(output_price))


FLASH_25 = _usd("0.30", "2.50")
PRO_25 = _usd("1.25", "10.00")
LITE_25 = _usd("0.10", "0.40")
FLASH_3 = _usd("0.50", "3.00")
PRO_3 = _usd("2.00", "12.00")
PRO_15 = _usd("1.25", "5.00")
FLASH_15 = _usd("0.075", "0.30")
PRO_10 = _usd("0.50", "1.50")

PRICES: dict[tuple[str, str], Price] = {
    ("aimlapi", "google/gemini-2.5-flash"): FLASH_25,
    ("aimlapi", "google/gemini-2.5-pro"): PRO_25,
    ("aimlapi", "google/gemini-3-flash-preview"): FLASH_3,
    ("aimlapi", "google/gemini-3-1-pro-preview"): PRO_3,
    ("aimlapi", "gemini-1.5-pro"): PRO_15,
    ("aimlapi", "gemini-1.5-flash"): FLASH_15,
    ("aimlapi", "gemini-pro"): PRO_10,
    ("aimlapi", "google/gemini-pro"): PRO_10,
    ("gemini", "gemini-2.5-flash"): FLASH_25,
    ("gemini", "gemini-2.5-pro"): PRO_25,
    ("gemini", "gemini-2.5-flash-lite"): LITE_25,
    ("gemini", "gemini-3-flash-preview"): FLASH_3,
    ("gemini", "gemini-3.1-pro-preview"): PRO_3,
    ("gemini", "gemini-3-pro-preview"): PRO_3,
    ("segmind", "gemini-2.5-flash"): FLASH_25,
    ("segmind", "gemini-2.5-flash-lite"): LITE_25,
    ("segmind", "gemini-3-pro"): PRO_3,
    ("segmind", "gemini-1.5-pro"): PRO_15,
    # The offline demo costs nothing.
    ("demo", "demo"): _usd("0", "0"),
}


def price_of(route: str, model_id: str) -> Price | None:
    return PRICES.get((route, model_id))


def billed_output_tokens(
    *,
    completion: int,
    reasoning: int | None,
    prompt: int | None,
    total: int | None,
    thoughts_apart: bool,
) -> int:
    """The output tokens an answer is billed for: its text and its thinking. Gemini's own
    usage (`usageMetadata`) counts thoughts apart from the candidates; OpenAI's counts them
    inside `completion_tokens`. The total tells which when it is there (it is the sum of the
    three when thoughts are apart); otherwise the route's wire does (`thoughts_apart`)."""
    if not reasoning:
        return completion
    if total is not None and prompt is not None:
        thoughts_apart = total >= prompt + completion + reasoning
    return completion + reasoning if thoughts_apart else completion


# The routes that speak Gemini's own wire, where a reply's usage counts thoughts apart.
THOUGHTS_APART = frozenset({"gemini", "segmind"})


def list_cost(
    *,
    route: str,
    model_id: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    reasoning_tokens: int | None = None,
    total_tokens: int | None = None,
) -> Decimal | None:
    """What an answer costs at list price, or None: a model without a price, or no tokens."""
    price = price_of(route, model_id)
    if price is None or (prompt_tokens is None and completion_tokens is None):
        return None
    output = billed_output_tokens(
        completion=completion_tokens or 0,
        reasoning=reasoning_tokens,
        prompt=prompt_tokens,
        total=total_tokens,
        thoughts_apart=route in THOUGHTS_APART,
    )
    return price.cost(input_tokens=prompt_tokens or 0, output_tokens=output)
