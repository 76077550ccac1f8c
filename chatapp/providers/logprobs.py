"""Token log probabilities: read from each wire format, checked, kept bounded, put in words.

An answer asked for with the "Token probabilities" parameter (params "logprobs") gets, from
AI/ML API, `choices[].logprobs.content[{token, logprob, top_logprobs[{token, logprob}]}]` on
its chunks, and from Google `candidates[].logprobsResult{chosenCandidates[{token,
logProbability}], topCandidates[{candidates[...]}]}` (docs/PROTOCOLS.md §1, §3). Both become
`TokenLogprob`s. An upstream is not trusted with the shape: a token that is not a string, a
log probability that is not a finite number at most 0, more alternatives than any upstream
returns - each such entry is dropped, not stored.

What is kept goes with the answer in `Message.provider_extras["logprobs"]`, compact
(`{"tokens": [[token, logprob, [[alternative, logprob], ...]], ...], "dropped": n}`) and
bounded: the first `MAX_TOKENS` tokens, each cut to `TOKEN_MAX_CHARS`, at most
`MAX_ALTERNATIVES` alternatives a token. Later requests read every answer's extras on their
path, so an answer of 60,000 tokens must not carry 60,000 entries into each of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .types import TokenLogprob

MAX_TOKENS = 1_000
MAX_ALTERNATIVES = 20
TOKEN_MAX_CHARS = 64
# Log probabilities are at most 0; a hair above is rounding on the upstream's side.
_ROUNDING = 1e-6
# exp() of anything below this is 0 at the precision shown.
_FLOOR = -1_000.0


def _logprob(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number > _ROUNDING:
        return None
    return max(min(number, 0.0), _FLOOR)


def _token(value: Any) -> str | None:
    return value[:TOKEN_MAX_CHARS] if isinstance(value, str) else None


def _alternatives(items: Any, token_key: str, logprob_key: str) -> tuple[tuple[str, float], ...]:
    found: list[tuple[str, float]] = []
    for item in items if isinstance(items, list) else ():
        if len(found) >= MAX_ALTERNATIVES:
            break
        if not isinstance(item, Mapping):
            continue
        token, logprob = _token(item.get(token_key)), _logprob(item.get(logprob_key))
        if token is not None and logprob is not None:
            found.append((token, logprob))
    return tuple(found)


def from_openai(value: Any) -> tuple[TokenLogprob, ...]:
    """A choice's `logprobs` object (OpenAI format): its `content` tokens."""
    content = value.get("content") if isinstance(value, Mapping) else None
    tokens: list[TokenLogprob] = []
    for item in content if isinstance(content, list) else ():
        if not isinstance(item, Mapping):
            continue
        token, logprob = _token(item.get("token")), _logprob(item.get("logprob"))
        if token is None or logprob is None:
            continue
        top = _alternatives(item.get("top_logprobs"), "token", "logprob")
        tokens.append(TokenLogprob(token, logprob, top))
    return tuple(tokens)


def from_gemini(value: Any) -> tuple[TokenLogprob, ...]:
    """A candidate's `logprobsResult` (Gemini): the chosen token of each decoding step with
    the top candidates of the same step (the two lists are documented as one entry a step)."""
    if not isinstance(value, Mapping):
        return ()
    chosen = value.get("chosenCandidates")
    top = value.get("topCandidates")
    steps = top if isinstance(top, list) else []
    tokens: list[TokenLogprob] = []
    for step, item in enumerate(chosen if isinstance(chosen, list) else ()):
        if not isinstance(item, Mapping):
            continue
        token, logprob = _token(item.get("token")), _logprob(item.get("logProbability"))
        if token is None or logprob is None:
            continue
        options = steps[step] if step < len(steps) else None
        candidates = options.get("candidates") if isinstance(options, Mapping) else None
        tokens.append(
            TokenLogprob(token, logprob, _alternatives(candidates, "token", "logProbability"))
        )
    return tuple(tokens)


class Kept:
    """An answer's token log probabilities as they arrive, bounded (see the module
    docstring): at most `MAX_TOKENS`, the rest counted as dropped."""

    __slots__ = ("dropped", "tokens")

    def __init__(self) -> None:
        self.tokens: list[list[Any]] = []
        self.dropped = 0

    def add(self, tokens: Iterable[TokenLogprob]) -> None:
        for token in tokens:
            if len(self.tokens) >= MAX_TOKENS:
                self.dropped += 1
                continue
            top = token.top[:MAX_ALTERNATIVES]
            self.tokens.append(
                [token.token[:TOKEN_MAX_CHARS], token.logprob, [[a, lp] for a, lp in top]]
            )

    def stored(self) -> dict[str, Any] | None:
        """The `provider_extras["logprobs"]` value; None when nothing came."""
        if not self.tokens and not self.dropped:
            return None
        return {"tokens": self.tokens, "dropped": self.dropped}


# --- in words, for the page ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shown:
    """One token as the "Token probabilities" section shows it."""

    token: str
    percent: str


@dataclass(frozen=True, slots=True)
class ShownToken:
    token: str
    percent: str
    alternatives: tuple[Shown, ...]


@dataclass(frozen=True, slots=True)
class Report:
    tokens: tuple[ShownToken, ...]
    dropped: int
    average: str  # the mean probability of the tokens shown


def _visible(token: str) -> str:
    """Whitespace a reader can see: a token is often a space or a line break alone."""
    return token.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def _percent(logprob: float) -> str:
    return _in_percent(math.exp(logprob))


def _in_percent(fraction: float) -> str:
    probability = fraction * 100
    if probability >= 99.95:
        return "100%"
    if probability >= 10:
        return f"{probability:.1f}%"
    if probability >= 0.01:
        return f"{probability:.2f}%"
    return "<0.01%"


def report(extras: Mapping[str, Any] | None) -> Report | None:
    """The stored log probabilities of an answer in words (None: none were kept). Read back
    as checked as they came in: stored extras are not trusted either."""
    stored = extras.get("logprobs") if isinstance(extras, Mapping) else None
    if not isinstance(stored, Mapping):
        return None
    shown: list[ShownToken] = []
    total = 0.0
    for entry in stored.get("tokens") or ():
        if len(shown) >= MAX_TOKENS:
            break
        if not isinstance(entry, list | tuple) or len(entry) != 3:
            continue
        token, logprob = _token(entry[0]), _logprob(entry[1])
        if token is None or logprob is None:
            continue
        alternatives = []
        for pair in entry[2] if isinstance(entry[2], list | tuple) else ():
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                continue
            alt, alt_logprob = _token(pair[0]), _logprob(pair[1])
            if alt is not None and alt_logprob is not None:
                alternatives.append(Shown(_visible(alt), _percent(alt_logprob)))
        total += math.exp(logprob)
        shown.append(
            ShownToken(_visible(token), _percent(logprob), tuple(alternatives[:MAX_ALTERNATIVES]))
        )
    dropped = stored.get("dropped")
    dropped = dropped if type(dropped) is int and dropped > 0 else 0
    if not shown:
        return None
    return Report(tuple(shown), dropped, _in_percent(total / len(shown)))
