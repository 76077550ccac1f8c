"""Function calling, as a playground (docs/PROTOCOLS.md §1b, §3b; docs/ARCHITECTURE.md,
"Function calling"): the vocabulary and bounds of the functions a person declares, the calls a
model makes and the results the person types for them.

Everything here checks what it is given, whether it comes from the panel, from an upstream or
from a stored row (an imported or older message may hold anything): the page, the request
builder and the adapters read calls and results only through `calls_of` / `results_of`.

A call is kept as `{"id", "name", "arguments"}`, `arguments` the JSON text of the arguments
(OpenAI sends it as text; Gemini's `args` object is written as compact JSON), so that it goes
back to the model exactly as it came.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from .structured import check_schema

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_FUNCTIONS = 128
DESCRIPTION_MAX_CHARS = 1_000
# The JSON text of the whole declared list (an import), far above 128 short declarations.
DECLARATIONS_MAX_CHARS = 200_000
# What is kept of one step of calls from an upstream.
MAX_CALLS = 32
ARGUMENTS_MAX_CHARS = 32_000
CALL_ID_MAX_CHARS = 200
EXTRA_MAX_CHARS = 16_000
# What a person types as one result.
RESULT_MAX_CHARS = 32_000

# Where an answer keeps its calls, and a results message its results (provider_extras).
CALLS_KEY = "function_calls"
RESULTS_KEY = "function_results"


class Declaration(TypedDict):
    name: str
    description: str
    parameters: dict[str, Any]


class Call(TypedDict):
    id: str
    name: str
    arguments: str
    # What an OpenAI-format Gemini puts beside one call (its thought signature), opaque,
    # echoed only to the route and model that wrote it (turns/requests.py).
    extra_content: NotRequired[dict[str, Any]]


class Result(TypedDict):
    id: str
    name: str
    content: str


LABEL = "Functions"


def check_declarations(value: Any, *, label: str = LABEL) -> list[Declaration]:
    """The declared functions from the panel's JSON text or a stored list. Raises ValueError
    naming the limit: not a JSON list, more than `MAX_FUNCTIONS`, a name not matching
    `NAME`, a name twice, a description too long, parameters that are not a JSON Schema."""
    if isinstance(value, str):
        if len(value) > DECLARATIONS_MAX_CHARS:
            raise ValueError(
                f"{label}: at most {DECLARATIONS_MAX_CHARS:,} characters of JSON "
                f"(got {len(value):,})."
            )
        try:
            items = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{label} are not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
    else:
        items = value
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list | tuple):
        raise ValueError(
            f'{label} must be a JSON list of {{"name", "description", "parameters"}} objects.'
        )
    if len(items) > MAX_FUNCTIONS:
        raise ValueError(f"{label}: at most {MAX_FUNCTIONS} functions (got {len(items)}).")
    declared: list[Declaration] = []
    seen: set[str] = set()
    for number, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise ValueError(f"{label}: function {number} must be a JSON object.")
        name = item.get("name")
        if not isinstance(name, str) or NAME.fullmatch(name) is None:
            raise ValueError(
                f"{label}: a function name is 1 to 64 letters, digits, _ or - "
                f"(got {str(name)[:80]!r})."
            )
        if name in seen:
            raise ValueError(f"{label}: the name {name} is declared twice; each name once.")
        seen.add(name)
        description = item.get("description") or ""
        if not isinstance(description, str):
            raise ValueError(f"{label}: the description of {name} must be text.")
        if len(description) > DESCRIPTION_MAX_CHARS:
            raise ValueError(
                f"{label}: the description of {name} can be at most "
                f"{DESCRIPTION_MAX_CHARS:,} characters (got {len(description):,})."
            )
        schema = item.get("parameters")
        if schema is None or schema == "":
            schema = {"type": "object", "properties": {}}
        parameters = check_schema(schema, label=f"The parameters of {name}")
        declared.append({"name": name, "description": description, "parameters": parameters})
    return declared


def declared_names(value: Any) -> list[str]:
    """The names of a stored or typed list, leniently (for the panel's Tool choice while the
    list has an error): those that look like names, in order, once each."""
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    names: list[str] = []
    for item in items[:MAX_FUNCTIONS]:
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and NAME.fullmatch(name) and name not in names:
            names.append(name)
    return names


def tool_choice_names(declared: list[Declaration]) -> tuple[str, ...]:
    """The values of the Tool choice: none, auto, required, then each function's name."""
    return ("none", "auto", "required", *(d["name"] for d in declared))


# --- Calls from an upstream -------------------------------------------------------------------


class CallAssembler:
    """OpenAI's streamed `delta.tool_calls` fragments, joined by index (docs/PROTOCOLS.md §1b):
    the id and name come in a fragment of each index, the arguments as pieces of text. Bounded:
    at most `MAX_CALLS` indexes, `ARGUMENTS_MAX_CHARS` of arguments each; fragments beyond that
    are dropped and counted in `dropped`."""

    __slots__ = ("_calls", "dropped")

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}
        self.dropped = 0

    def feed(self, fragments: Any) -> None:
        if type(fragments) is not list:
            return
        for position, fragment in enumerate(fragments):
            if type(fragment) is not dict:
                continue
            # A whole (non-streamed) message's calls carry no index: their position is one.
            index = fragment.get("index", position)
            if type(index) is not int or index < 0:
                continue
            call = self._calls.get(index)
            if call is None:
                if len(self._calls) >= MAX_CALLS:
                    self.dropped += 1
                    continue
                call = self._calls[index] = {"id": "", "name": "", "arguments": []}
                call["size"] = 0
            extra = fragment.get("extra_content")
            if type(extra) is dict and "extra" not in call:
                call["extra"] = extra
            if type(fragment.get("id")) is str and not call["id"]:
                call["id"] = fragment["id"][:CALL_ID_MAX_CHARS]
            function = fragment.get("function")
            if type(function) is not dict:
                continue
            name = function.get("name")
            if type(name) is str and name:
                call["name"] += name if len(call["name"]) < 64 else ""
            arguments = function.get("arguments")
            if type(arguments) is str and arguments:
                if call["size"] + len(arguments) > ARGUMENTS_MAX_CHARS:
                    call["too_long"] = True
                    continue
                call["arguments"].append(arguments)
                call["size"] += len(arguments)

    def calls(self) -> list[Call]:
        """The calls assembled, in index order, each checked (`checked_call`)."""
        kept: list[Call] = []
        for index in sorted(self._calls):
            raw = self._calls[index]
            if raw.get("too_long"):
                self.dropped += 1
                continue
            call = checked_call(raw["id"], raw["name"], "".join(raw["arguments"]))
            if call is not None and "extra" in raw:
                call = with_extra(call, raw["extra"])
            if call is None:
                self.dropped += 1
            else:
                kept.append(call)
        return kept


def gemini_call(part: Mapping[str, Any]) -> Call | None:
    """A `functionCall{name, args, id?}` part as a call, or None when it is not a sound one."""
    call = part.get("functionCall")
    if not isinstance(call, Mapping):
        return None
    args = call.get("args", {})
    if not isinstance(args, Mapping):
        return None
    text = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
    ident = call.get("id")
    return checked_call(ident if isinstance(ident, str) else "", call.get("name"), text)


def checked_call(ident: Any, name: Any, arguments: Any) -> Call | None:
    """A call within the bounds: a declared-looking name, an id of at most
    `CALL_ID_MAX_CHARS`, arguments that are a JSON object of at most `ARGUMENTS_MAX_CHARS`
    ("" is no arguments: `{}`)."""
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        return None
    if not isinstance(ident, str) or len(ident) > CALL_ID_MAX_CHARS:
        return None
    if not isinstance(arguments, str) or len(arguments) > ARGUMENTS_MAX_CHARS:
        return None
    if not arguments.strip():
        arguments = "{}"
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return {"id": ident, "name": name, "arguments": arguments}


def with_extra(call: Call, extra: Any) -> Call:
    """The call with its `extra_content`, when that is a JSON object of at most
    `EXTRA_MAX_CHARS`; without it otherwise."""
    if not isinstance(extra, Mapping):
        return call
    try:
        size = len(json.dumps(extra))
    except (TypeError, ValueError):
        return call
    if size > EXTRA_MAX_CHARS:
        return call
    return {**call, "extra_content": json.loads(json.dumps(extra))}


# --- Calls and results on stored rows ---------------------------------------------------------


def calls_of(extras: Any) -> list[Call]:
    """The calls an answer keeps (its `provider_extras`), checked again."""
    raw = extras.get(CALLS_KEY) if isinstance(extras, Mapping) else None
    if not isinstance(raw, list):
        return []
    calls: list[Call] = []
    for item in raw[:MAX_CALLS]:
        if isinstance(item, Mapping):
            call = checked_call(item.get("id", ""), item.get("name"), item.get("arguments"))
            if call is not None:
                if "extra_content" in item:
                    call = with_extra(call, item["extra_content"])
                calls.append(call)
    return calls


def results_of(extras: Any) -> list[Result]:
    """The results a results message keeps, checked again."""
    raw = extras.get(RESULTS_KEY) if isinstance(extras, Mapping) else None
    if not isinstance(raw, list):
        return []
    results: list[Result] = []
    for item in raw[:MAX_CALLS]:
        if not isinstance(item, Mapping):
            continue
        ident, name, content = item.get("id", ""), item.get("name"), item.get("content")
        if (
            isinstance(ident, str)
            and len(ident) <= CALL_ID_MAX_CHARS
            and isinstance(name, str)
            and NAME.fullmatch(name)
            and isinstance(content, str)
            and len(content) <= RESULT_MAX_CHARS
        ):
            results.append({"id": ident, "name": name, "content": content})
    return results


def pretty_arguments(call: Call) -> str:
    """The arguments as indented JSON, for the page."""
    try:
        return json.dumps(json.loads(call["arguments"]), indent=2, ensure_ascii=False)
    except ValueError:
        return call["arguments"]


def response_object(content: str) -> dict[str, Any]:
    """A typed result as Gemini's `functionResponse.response` (a JSON object): an object as
    it is, anything else under "result" (Google's own convention, docs/PROTOCOLS.md §3b)."""
    try:
        value = json.loads(content)
    except ValueError:
        return {"result": content}
    return value if isinstance(value, dict) else {"result": value}


def results_text(results: list[Result], calls: list[Call] | None = None) -> str:
    """A results message's text, what search finds it by: each function's name, the arguments
    it was called with (the answer's calls, which have no text of their own) and the result."""
    lines = []
    for number, result in enumerate(results):
        # The results are the calls', in order (turns.services.turn_results).
        call = calls[number] if calls and number < len(calls) else None
        called = call["arguments"] if call is not None and call["name"] == result["name"] else ""
        head = f"Result for {result['name']}" + (f" (called with {called})" if called else "")
        lines.append(f"{head}:\n{result['content']}")
    return "\n\n".join(lines)
