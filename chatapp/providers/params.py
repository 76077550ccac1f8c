"""Every generation parameter, declared once.

A `Parameter` says what a parameter is: its neutral name (the key in `ChatRequest.options`, in
a conversation's stored settings and in the settings form), its label, its kind, the panel group
it shows in, whether the panel offers it, and where it goes in each wire format's request body.
Everything else is derived from `PARAMETERS`: the settings form's fields and controls
(`web/settings_panel.py`), the parsing and range checks and the labels in their messages
(`validate`), and the adapters' wire mapping (`wire_fields`). A model in the catalog says only
which parameters it accepts, each with its `Range`.

Adding a parameter is one entry here and its range on each model that accepts it
(`catalog.py`); docs/ARCHITECTURE.md shows such a change.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .functions import MAX_FUNCTIONS, NAME, Declaration, check_declarations, tool_choice_names
from .logprobs import MAX_TOKENS as LOGPROBS_MAX_TOKENS
from .structured import SCHEMA_MAX_CHARS, check_schema

Kind = Literal[
    "float", "int", "stop", "choice", "bool", "safety", "schema", "bias", "functions", "tool_choice"
]
WireFormat = Literal["openai", "gemini"]

# The panel's groups, in order, with their headings.
GROUPS: Mapping[str, str] = {
    "sampling": "Sampling",
    "length": "Length",
    "output": "Output",
    "thinking": "Thinking",
    "tools": "Tools",
    "safety": "Safety",
}

# How a checkbox or a typed value says "on" and "off" (off is the same as not set).
ON_WORDS = frozenset({"1", "true", "yes", "on", "json", "application/json"})
OFF_WORDS = frozenset({"0", "false", "no", "off", "text", "text/plain"})

STOP_SEQUENCE_MAX_CHARS = 200
# A logit bias is typed as JSON: far more than its entries (at most `Range.max_items`) need.
BIAS_MAX_CHARS = 10_000
# Token ids are int32 in every tokenizer these models use.
TOKEN_ID_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Range:
    """What one model accepts for one parameter.

    `minimum`/`maximum` bound numbers (a logit bias's values); `special` lists numbers accepted
    outside them with their meaning (Gemini 2.5's thinking budget: `((0, "off"), (-1,
    "dynamic"))`); `max_items` bounds stop sequences and a logit bias's entries; `choices` lists a choice's values (or a safety setting's thresholds), matched
    case-insensitively and stored as spelled here; `keys` lists the categories a safety setting
    may name, in the order they are sent; `default` is sent when the person leaves the
    field empty (legacy models need an explicit max_tokens: the upstream default of 512 cuts
    answers short).
    """

    minimum: float | None = None
    maximum: float | None = None
    max_items: int | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    special: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Wire:
    """Where a value goes in one wire format's request: a dotted path into the body
    (`generationConfig.topP`) and, when the kind's own encoding is not enough, how the neutral
    value is written there. Two parameters writing objects to one path are merged; with
    `extend`, the value is a list that is concatenated with what other parameters wrote to the
    same path (Gemini's `tools` array: one entry per tool, in registry order)."""

    path: str
    encode: Callable[[Any], Any] | None = None
    extend: bool = False


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    label: str
    kind: Kind
    group: str
    wire: Mapping[WireFormat, Wire]
    # Words said under the field after its range (or instead of one, for kinds without).
    note: str = ""
    # False: the panel shows it only while it holds a value (e.g. carried over from a model
    # that accepted it), with the error that says why.
    offered: bool = True
    # Parameters that cannot be set together with this one.
    excludes: tuple[str, ...] = ()
    # (parameter, value): this one is sent only with that one set to that value, and that
    # value needs this one (a JSON schema goes with the response format "json_schema").
    goes_with: tuple[str, str] | None = None
    # A bool parameter this one is sent only with, on (top log probabilities need log
    # probabilities, on both wire formats); unlike `goes_with`, that one is fine alone.
    needs: str | None = None
    # A choice's words in the panel, and what its empty option says ("Model default").
    choice_labels: Mapping[str, str] = field(default_factory=dict)
    empty_label: str = ""
    # A bool drawn as a switch (role="switch"): a tool turned on or off. Other bools stay
    # checkboxes, which people and tests find by that role.
    switch: bool = False

    def describe(self, accepted: Range) -> str:
        """The accepted values in words, for hints and error messages."""
        if self.kind == "stop":
            return f"up to {accepted.max_items} sequences, one per line"
        if self.kind == "choice":
            if self.choice_labels:
                return _either([self.choice_labels.get(c, c) for c in accepted.choices])
            return _either([choice.lower() for choice in accepted.choices])
        if self.kind == "bool":
            return "on or off"
        if self.kind == "safety":
            return "category=threshold, one per line; thresholds " + _either(list(accepted.choices))
        if self.kind == "schema":
            return f"a JSON Schema object, at most {SCHEMA_MAX_CHARS:,} characters"
        if self.kind == "functions":
            return (
                f"at most {MAX_FUNCTIONS} functions, each a name of 1 to 64 letters, "
                "digits, _ or -, once"
            )
        if self.kind == "tool_choice":
            return "none, auto, required or the name of a declared function"
        if self.kind == "bias":
            return (
                f"a JSON object of token ids to biases {_num(accepted.minimum or 0)}–"
                f"{_num(accepted.maximum or 0)}, at most {accepted.max_items} entries"
                ' (e.g. {"1234": -100})'
            )
        if accepted.minimum is not None and accepted.maximum is not None:
            text = f"{_num(accepted.minimum)}–{_num(accepted.maximum)}"
        elif accepted.minimum is not None:
            text = f"at least {_num(accepted.minimum)}"
        else:
            text = "any number"
        if accepted.special:
            extra = [f"{_num(value)} ({meaning})" for value, meaning in accepted.special]
            text += (" or " if len(extra) == 1 else ", ") + _either(extra)
        return text

    def hint(self, accepted: Range) -> str:
        """What the panel says under the field."""
        if self.kind in ("bool", "choice", "safety", "schema", "tool_choice"):
            return self.note
        parts = [self.describe(accepted)]
        if accepted.default is not None:
            parts.append(f"{accepted.default} when empty")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)

    def parse(self, value: Any, accepted: Range, *, where: str) -> Any:
        """The typed value of what a person entered (or of a stored value); None means "off"
        (a bool), which is the same as not set. Raises ValueError with a message naming the
        limit. `where` ends the message: "for Gemini 2.5 Flash"."""
        if self.kind == "stop":
            items = _stop_items(value)
            if accepted.max_items is not None and len(items) > accepted.max_items:
                raise ValueError(
                    f"{self.label}: at most {accepted.max_items} sequences {where} "
                    f"(got {len(items)}); put one per line."
                )
            if any(len(item) > STOP_SEQUENCE_MAX_CHARS for item in items):
                raise ValueError(
                    f"{self.label}: each sequence can be at most {STOP_SEQUENCE_MAX_CHARS} "
                    "characters."
                )
            return items
        if self.kind == "choice":
            text = str(value).strip()
            for choice in accepted.choices:
                if text.lower() == choice.lower():
                    return choice
            raise ValueError(
                f"{self.label} must be {self.describe(accepted)} {where} (got {text!r})."
            )
        if self.kind == "bool":
            return self._bool(value)
        if self.kind == "safety":
            return self._safety(value, accepted, where)
        if self.kind == "schema":
            return check_schema(value, label=self.label)
        if self.kind == "bias":
            return self._bias(value, accepted, where)
        if self.kind == "functions":
            return check_declarations(value, label=self.label) or None
        if self.kind == "tool_choice":
            text = str(value).strip()
            if text.lower() in ("none", "auto", "required"):
                return text.lower()
            if NAME.fullmatch(text):
                return text
            raise ValueError(f"{self.label} must be {self.describe(accepted)} (got {text!r}).")
        number = self._number(value)
        if any(number == special for special, _ in accepted.special):
            return int(number) if self.kind == "int" else number
        low, high = accepted.minimum, accepted.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(
                f"{self.label} must be {self.describe(accepted)} {where} (got {value})."
            )
        return number

    def encode(self, value: Any, wire: Wire) -> Any:
        """The neutral value as the wire carries it."""
        if wire.encode is not None:
            return wire.encode(value)
        if self.kind == "stop":
            return [value] if isinstance(value, str) else [str(item) for item in value]
        if self.kind == "int" and isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def _bool(self, value: Any) -> bool | None:
        if isinstance(value, bool):
            return True if value else None
        text = str(value).strip().lower()
        if text in ON_WORDS:
            return True
        if text in OFF_WORDS:
            return None
        raise ValueError(f"{self.label} must be on or off (got {str(value).strip()!r}).")

    def _number(self, value: Any) -> int | float:
        if isinstance(value, bool):
            raise ValueError(f"{self.label} must be a number.")
        text = str(value).strip()
        if self.kind == "int":
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{self.label} must be a whole number (got {text!r}).") from None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{self.label} must be a number (got {text!r}).") from None
        if not math.isfinite(number):
            raise ValueError(f"{self.label} must be a finite number.")
        return number

    def _bias(self, value: Any, accepted: Range, where: str) -> dict[str, int] | None:
        """{token id: bias} from a mapping (stored settings) or from the JSON the person
        typed. Keys are whole token ids as strings (the wire's JSON object keys), in order."""
        if isinstance(value, Mapping):
            entries = value
        else:
            text = str(value).strip()
            if len(text) > BIAS_MAX_CHARS:
                raise ValueError(f"{self.label}: at most {BIAS_MAX_CHARS:,} characters.")
            try:
                entries = json.loads(text)
            except ValueError as exc:
                raise ValueError(
                    f'{self.label} must be a JSON object such as {{"1234": -100}} '
                    f"({exc.args[0] if exc.args else 'not JSON'})."
                ) from None
            if not isinstance(entries, dict):
                raise ValueError(
                    f"{self.label} must be a JSON object of token ids to biases, such as "
                    '{"1234": -100}.'
                )
        limit = accepted.max_items
        if limit is not None and len(entries) > limit:
            raise ValueError(
                f"{self.label}: at most {limit} token ids {where} (got {len(entries)})."
            )
        low, high = accepted.minimum, accepted.maximum
        chosen: dict[str, int] = {}
        for key, bias in entries.items():
            token = str(key).strip()
            digits = token.isascii() and token.isdigit() and len(token) <= 10
            if not digits or int(token) > TOKEN_ID_MAX:
                raise ValueError(
                    f"{self.label}: keys are token ids, whole numbers from 0 to "
                    f"{TOKEN_ID_MAX:,} (got {str(key)!r})."
                )
            whole = isinstance(bias, int | float) and not isinstance(bias, bool)
            if not whole or not math.isfinite(bias) or not float(bias).is_integer():
                # The wire takes integers (OpenAI's logit_bias: a map of integers).
                raise ValueError(
                    f"{self.label}: the bias of token {token} must be a whole number "
                    f"(got {bias!r})."
                )
            if (low is not None and bias < low) or (high is not None and bias > high):
                raise ValueError(
                    f"{self.label}: the bias of token {token} must be {_num(low or 0)}–"
                    f"{_num(high or 0)} {where} (got {_num(bias)})."
                )
            chosen[str(int(token))] = int(bias)
        return chosen or None  # "{}" is no bias: not set

    def _safety(self, value: Any, accepted: Range, where: str) -> dict[str, str]:
        """{HARM_CATEGORY_...: threshold} in the order of `accepted.keys`, from a mapping (stored
        settings, the panel's selects) or from text: `harassment=BLOCK_NONE` pairs, one per
        line or comma-separated."""
        if isinstance(value, Mapping):
            pairs = [(str(k), str(v)) for k, v in value.items()]
        else:
            pairs = []
            for item in re.split(r"[\n,;]+", str(value)):
                if not item.strip():
                    continue
                pair = _PAIR.fullmatch(item.strip())
                if pair is None:
                    raise ValueError(
                        f"{self.label}: write each as category=threshold (got {item.strip()!r})."
                    )
                pairs.append((pair[1], pair[2]))
        chosen: dict[str, str] = {}
        for category, threshold in pairs:
            key = category.strip().upper().replace(" ", "_")
            if not key.startswith("HARM_CATEGORY_"):
                key = f"HARM_CATEGORY_{key}"
            if key not in accepted.keys:
                names = ", ".join(c.removeprefix("HARM_CATEGORY_").lower() for c in accepted.keys)
                raise ValueError(
                    f"{self.label}: unknown harm category {category.strip()!r} {where}; use {names}."
                )
            level = threshold.strip().upper().replace(" ", "_")
            if level not in accepted.choices:
                short = key.removeprefix("HARM_CATEGORY_").lower()
                raise ValueError(
                    f"{self.label}: the threshold for {short} must be "
                    f"{_either(list(accepted.choices))} (got {threshold.strip()!r})."
                )
            chosen[key] = level
        return {key: chosen[key] for key in accepted.keys if key in chosen}


def _config(name: str) -> Wire:
    return Wire(f"generationConfig.{name}")


def _tool(name: str) -> Wire:
    """One of Gemini's built-in tools: an entry `{name: {}}` of the request's `tools` array
    (docs/PROTOCOLS.md §3b), beside any other tool switched on."""
    return Wire("tools", lambda _: [{name: {}}], extend=True)


def _openai_tools(declared: list[Declaration]) -> list[dict[str, Any]]:
    """Declared functions as OpenAI's `tools` (docs/PROTOCOLS.md §1b)."""
    tools = []
    for item in declared:
        function: dict[str, Any] = {"name": item["name"]}
        if item["description"]:
            function["description"] = item["description"]
        function["parameters"] = item["parameters"]
        tools.append({"type": "function", "function": function})
    return tools


def _gemini_tools(declared: list[Declaration]) -> list[dict[str, Any]]:
    """Declared functions as one entry of Gemini's `tools` array, beside the built-in tools
    (docs/PROTOCOLS.md §3b); the parameters as JSON Schema (`parametersJsonSchema`)."""
    entries = []
    for item in declared:
        entry: dict[str, Any] = {"name": item["name"]}
        if item["description"]:
            entry["description"] = item["description"]
        entry["parametersJsonSchema"] = item["parameters"]
        entries.append(entry)
    return [{"functionDeclarations": entries}]


def _openai_tool_choice(choice: str) -> Any:
    if choice in ("none", "auto", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _gemini_tool_choice(choice: str) -> dict[str, Any]:
    modes = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
    if choice in modes:
        return {"mode": modes[choice]}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "temperature",
        "Temperature",
        "float",
        "sampling",
        {"openai": Wire("temperature"), "gemini": _config("temperature")},
    ),
    Parameter(
        "top_p", "Top P", "float", "sampling", {"openai": Wire("top_p"), "gemini": _config("topP")}
    ),
    Parameter("top_k", "Top K", "int", "sampling", {"gemini": _config("topK")}),
    Parameter(
        "frequency_penalty",
        "Frequency penalty",
        "float",
        "sampling",
        {"openai": Wire("frequency_penalty"), "gemini": _config("frequencyPenalty")},
    ),
    Parameter(
        "presence_penalty",
        "Presence penalty",
        "float",
        "sampling",
        {"openai": Wire("presence_penalty"), "gemini": _config("presencePenalty")},
    ),
    Parameter(
        "seed", "Seed", "int", "sampling", {"openai": Wire("seed"), "gemini": _config("seed")}
    ),
    # AI/ML API's logit_bias (docs/PROTOCOLS.md §1): token ids of the model's tokenizer.
    Parameter(
        "logit_bias",
        "Logit bias",
        "bias",
        "sampling",
        {"openai": Wire("logit_bias")},
        note="-100 bans a token, 100 makes it all but certain",
    ),
    Parameter(
        "max_tokens",
        "Max tokens",
        "int",
        "length",
        {"openai": Wire("max_tokens"), "gemini": _config("maxOutputTokens")},
    ),
    Parameter(
        "max_completion_tokens",
        "Max completion tokens",
        "int",
        "length",
        {"openai": Wire("max_completion_tokens")},
    ),
    Parameter(
        "stop",
        "Stop sequences",
        "stop",
        "length",
        {"openai": Wire("stop"), "gemini": _config("stopSequences")},
    ),
    # Structured output (docs/PROTOCOLS.md §1, §3): JSON mode, or JSON matching a schema the
    # person writes. OpenAI's `response_format` object is built from both parameters (merged
    # at one path); Gemini takes a MIME type and `responseJsonSchema`.
    Parameter(
        "response_format",
        "Response format",
        "choice",
        "output",
        {
            "openai": Wire(
                "response_format",
                lambda f: {"type": "json_object" if f == "json" else "json_schema"},
            ),
            "gemini": Wire("generationConfig.responseMimeType", lambda _: "application/json"),
        },
        choice_labels={"json": "JSON", "json_schema": "JSON schema"},
        empty_label="Text",
        note="JSON: the answer is one JSON document; JSON schema: one matching the schema below.",
    ),
    Parameter(
        "json_schema",
        "JSON schema",
        "schema",
        "output",
        {
            "openai": Wire(
                "response_format",
                lambda schema: {"json_schema": {"name": "answer", "schema": schema}},
            ),
            "gemini": Wire("generationConfig.responseJsonSchema"),
        },
        note="Checked as JSON Schema before anything is sent.",
        goes_with=("response_format", "json_schema"),
    ),
    # Several answers to one request (docs/PROTOCOLS.md §1 `n`, §3 `candidateCount`): the
    # first streams, each other one is saved beside it as another version of the answer
    # (docs/ARCHITECTURE.md, "Several candidates"), so nothing billed goes unseen.
    Parameter(
        "candidate_count",
        "Candidates",
        "int",
        "output",
        {"openai": Wire("n"), "gemini": _config("candidateCount")},
        note="each one a version of the answer (1 / 2 ...), all billed",
    ),
    # Token log probabilities (docs/PROTOCOLS.md §1, §3), kept with the answer and shown
    # under it ("Token probabilities").
    Parameter(
        "logprobs",
        "Token probabilities",
        "bool",
        "output",
        {"openai": Wire("logprobs"), "gemini": _config("responseLogprobs")},
        note=f"Shown under the answer (its first {LOGPROBS_MAX_TOKENS:,} tokens).",
    ),
    Parameter(
        "top_logprobs",
        "Top alternatives",
        "int",
        "output",
        {"openai": Wire("top_logprobs"), "gemini": _config("logprobs")},
        note="per token, with Token probabilities on",
        needs="logprobs",
    ),
    # AI/ML API's OpenAI-format counterpart of a thinking budget (docs/PROTOCOLS.md §1).
    Parameter(
        "reasoning_effort",
        "Reasoning effort",
        "choice",
        "thinking",
        {"openai": Wire("reasoning_effort")},
        note="Empty: the model's default.",
    ),
    Parameter(
        "thinking_budget",
        "Thinking budget",
        "int",
        "thinking",
        # Thought summaries are shown as reasoning; there are none to ask for when it is off.
        {
            "gemini": Wire(
                "generationConfig.thinkingConfig",
                lambda budget: {"thinkingBudget": int(budget), "includeThoughts": budget != 0},
            )
        },
    ),
    Parameter(
        "thinking_level",
        "Thinking level",
        "choice",
        "thinking",
        {
            "gemini": Wire(
                "generationConfig.thinkingConfig",
                lambda level: {"thinkingLevel": str(level).upper(), "includeThoughts": True},
            )
        },
        note="Empty: the model's default.",
        # Gemini answers 400 when both are sent.
        excludes=("thinking_budget",),
    ),
    # Gemini's built-in tools on the Google route (docs/PROTOCOLS.md §3b): what they leave on
    # the answer (sources, URLs read, code run) is read by providers/gemini/tools.py.
    Parameter(
        "google_search",
        "Google Search",
        "bool",
        "tools",
        {"gemini": _tool("googleSearch")},
        note="The model may search the web; its sources are listed under the answer.",
        switch=True,
    ),
    Parameter(
        "url_context",
        "URL context",
        "bool",
        "tools",
        {"gemini": _tool("urlContext")},
        note="The model may read the web pages whose URLs are in the message.",
        switch=True,
    ),
    Parameter(
        "code_execution",
        "Code execution",
        "bool",
        "tools",
        {"gemini": _tool("codeExecution")},
        note="The model may write and run Python; the code and its output are shown.",
        switch=True,
    ),
    # Function calling as a playground (docs/ARCHITECTURE.md, "Function calling"): the model
    # calls, the person types each result. The declarations join the built-in tools in
    # Gemini's one `tools` array.
    Parameter(
        "functions",
        "Functions",
        "functions",
        "tools",
        {
            "openai": Wire("tools", _openai_tools),
            "gemini": Wire("tools", _gemini_tools, extend=True),
        },
        note="The model may call them; you type each result.",
    ),
    Parameter(
        "tool_choice",
        "Tool choice",
        "tool_choice",
        "tools",
        {
            "openai": Wire("tool_choice", _openai_tool_choice),
            "gemini": Wire("toolConfig.functionCallingConfig", _gemini_tool_choice),
        },
        note="Required: the model must call one; a name: that function.",
        needs="functions",
    ),
    # Off, `false` is sent with the functions (openai_compat): the upstream's default is on.
    Parameter(
        "parallel_tool_calls",
        "Parallel calls",
        "bool",
        "tools",
        {"openai": Wire("parallel_tool_calls")},
        note="The model may call several functions at once.",
        needs="functions",
    ),
    Parameter(
        "safety_settings",
        "Safety settings",
        "safety",
        "safety",
        {
            "gemini": Wire(
                "safetySettings",
                lambda chosen: [
                    {"category": str(category), "threshold": str(threshold)}
                    for category, threshold in chosen.items()
                ],
            )
        },
        note="Empty: Google's default for that category.",
    ),
)

BY_NAME: Mapping[str, Parameter] = {parameter.name: parameter for parameter in PARAMETERS}


class ParameterConflict(ValueError):
    """Two parameters that exclude each other were both set."""


def conflict_message(first: Parameter, second: Parameter) -> str:
    return f"Set either a {first.label.lower()} or a {second.label.lower()}, not both."


def validate(
    accepted: Mapping[str, Range], raw: Mapping[str, Any], *, model: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse and range-check the person's parameters for a model that accepts `accepted`.

    `raw` maps names to what the form sent (strings; empty means "not set") or to typed values
    (stored settings). Returns (options, errors): options holds only the parameters that were
    set, typed, in registry order; errors maps a name to a message naming the limit and the
    model. A parameter the model does not accept is an error if set, never silently dropped.
    """
    options: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for parameter in PARAMETERS:
        value = raw.get(parameter.name)
        if is_empty(value):
            continue
        accepts = accepted.get(parameter.name)
        if accepts is None:
            errors[parameter.name] = f"{model} does not accept {parameter.label}; leave it empty."
            continue
        try:
            parsed = parameter.parse(value, accepts, where=f"for {model}")
        except ValueError as exc:
            errors[parameter.name] = str(exc)
        else:
            if parsed is not None:
                options[parameter.name] = parsed
    for parameter in PARAMETERS:
        for other in parameter.excludes:
            if parameter.name in options and other in options:
                errors[parameter.name] = conflict_message(BY_NAME[other], parameter)
        needs = parameter.needs
        if needs is not None and parameter.name in options and needs not in options:
            partner = BY_NAME[needs]
            errors.setdefault(
                parameter.name,
                f"{parameter.label} is sent only with functions declared: add one, or clear "
                f"{parameter.label}."
                if partner.kind == "functions"
                else f"{parameter.label} is sent only with {partner.label} on: turn it on, "
                f"or clear {parameter.label}.",
            )
        if parameter.goes_with is not None and parameter.name in accepted:
            other, value = parameter.goes_with
            partner = BY_NAME[other]
            word = partner.choice_labels.get(value, value)
            if parameter.name in options and options.get(other) != value:
                errors.setdefault(
                    parameter.name,
                    f"{parameter.label} is sent only with the {partner.label.lower()} "
                    f"“{word}”: choose it, or clear the {parameter.label.lower()}.",
                )
            elif options.get(other) == value and is_empty(raw.get(parameter.name)):
                errors.setdefault(
                    parameter.name,
                    f"Write the {parameter.label.lower()} the answer must match (the "
                    f"{partner.label.lower()} is “{word}”).",
                )
    choice = options.get("tool_choice")
    if isinstance(choice, str) and "functions" in options and "tool_choice" not in errors:
        names = tool_choice_names(options["functions"])
        if choice not in names:
            errors["tool_choice"] = (
                f"Tool choice: {choice} is not a declared function; choose none, auto, "
                "required or one of the functions."
            )
    return options, errors


def with_defaults(accepted: Mapping[str, Range], options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a model is sent: those it accepts, each default filled in."""
    return {
        parameter.name: options.get(parameter.name, accepted[parameter.name].default)
        for parameter in PARAMETERS
        if parameter.name in accepted
        and (parameter.name in options or accepted[parameter.name].default is not None)
    }


def wire_fields(options: Mapping[str, Any], wire_format: WireFormat) -> dict[str, Any]:
    """The options' part of a request body in one wire format, nested by each parameter's
    path. Options without a place in this format are not sent (never guessed). Raises
    ParameterConflict for two options that exclude each other (validation refuses them
    earlier; this keeps a request the upstream would refuse from being sent at all)."""
    body: dict[str, Any] = {}
    for name, value in options.items():
        parameter = BY_NAME.get(name)
        wire = parameter.wire.get(wire_format) if parameter is not None else None
        if parameter is None or wire is None or value is None:
            continue
        for other in parameter.excludes:
            if options.get(other) is not None:
                raise ParameterConflict(conflict_message(BY_NAME[other], parameter))
        *parents, leaf = wire.path.split(".")
        target = body
        for key in parents:
            target = target.setdefault(key, {})
        encoded = parameter.encode(value, wire)
        if wire.extend and isinstance(encoded, list):
            target.setdefault(leaf, []).extend(encoded)
        elif isinstance(encoded, dict) and isinstance(target.get(leaf), dict):
            target[leaf].update(encoded)
        else:
            target[leaf] = encoded
    return body


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return not any(str(item) for item in value)
    if isinstance(value, Mapping):
        return not value
    return False


_PAIR = re.compile(r"([^=:]+?)\s*[=:]\s*(\S.*)")


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _stop_items(value: Any) -> list[str]:
    items: Iterable[Any] = value.splitlines() if isinstance(value, str) else value
    # Stop strings are sent exactly as typed: leading/trailing spaces can matter.
    return [str(item) for item in items if str(item) != ""]
