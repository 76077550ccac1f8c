"""Validate Gemini-native requests and responses with the `google-genai` SDK's own types.

`google.genai.types` are pydantic models that accept the wire's camelCase, reject unknown
keys and decode `bytes` fields (`inlineData.data`, `thoughtSignature`) as base64, so a body
that validates here is one Google's own SDK could have sent. On top of the types, this checks
what they do not: the envelope's keys, roles alternating user/model from a user turn, wire
names in camelCase only (the types also take snake_case), raw base64 without a `data:`
prefix, at most 5 stop sequences, a thinking budget or a level but not both, one setting
per harm category, and each tool declared once.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pydantic
from google.genai import types

GOOGLE_KEYS = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "safetySettings",
    "tools",
    "toolConfig",
    "cachedContent",
}
# `tools` and `toolConfig`: declared functions only (chatapp/providers/gemini/segmind.py).
SEGMIND_KEYS = {"system_instruction", "contents", "generationConfig", "tools", "toolConfig"}
# Gemini's built-in tools, as the app sends them: `{"googleSearch": {}}`.
_BUILT_IN = {"googleSearch", "urlContext", "codeExecution"}
STOP_MAX = 5


def validate_gemini_request(body: Any, *, segmind: bool = False) -> None:
    """Raise AssertionError naming what is wrong with a Google (or, with `segmind=True`, a
    Segmind) request body."""
    problems = list(_problems(body, segmind=segmind))
    if problems:
        shown = json.dumps(body, ensure_ascii=False, default=str)
        if len(shown) > 800:
            shown = shown[:800] + "…"
        route = "Segmind" if segmind else "Google"
        raise AssertionError(
            f"{route} request body is not a valid Gemini request:\n  "
            + "\n  ".join(problems[:8])
            + f"\nbody: {shown}"
        )


def validate_segmind_request(body: Any) -> None:
    validate_gemini_request(body, segmind=True)


def validate_gemini_response(body: Any) -> types.GenerateContentResponse:
    """A response or stream chunk, as the SDK reads it (unknown keys rejected)."""
    try:
        return types.GenerateContentResponse.model_validate(body)
    except pydantic.ValidationError as exc:
        raise AssertionError(f"not a GenerateContentResponse: {exc}") from None


def _problems(body: Any, *, segmind: bool):
    if segmind:
        if not isinstance(body, dict) or set(body) != {"messages"}:
            yield 'the body must be {"messages": {...}}'
            return
        body = body["messages"]
        if not isinstance(body, dict):
            yield "`messages` must be an object (the current Segmind format)"
            return
        allowed, system_key = SEGMIND_KEYS, "system_instruction"
    else:
        if not isinstance(body, dict):
            yield "the body must be an object"
            return
        allowed, system_key = GOOGLE_KEYS, "systemInstruction"
    if unknown := set(body) - allowed:
        yield f"unknown top-level keys {sorted(unknown)} (allowed: {sorted(allowed)})"
    yield from _snake_case(body, path="", top=system_key)

    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        yield "`contents` must be a non-empty list"
        contents = []
    previous = None
    for index, content in enumerate(contents):
        where = f"contents[{index}]"
        yield from _validate(types.Content, content, where)
        if not isinstance(content, dict):
            continue
        role = content.get("role")
        if role not in ("user", "model"):
            yield f"{where}.role must be user or model (got {role!r})"
        if index == 0 and role != "user":
            yield "the first content must be a user turn"
        if role == previous:
            yield f"{where}: two {role} turns in a row (Gemini wants them to alternate)"
        previous = role
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            yield f"{where}.parts must be a non-empty list"
            continue
        for p, part in enumerate(parts):
            yield from _part(part, f"{where}.parts[{p}]", role=role)

    if system_key in body:
        system = body[system_key]
        if segmind and isinstance(system, dict) and isinstance(system.get("parts"), dict):
            system = {**system, "parts": [system["parts"]]}  # Segmind's documented form
        yield from _validate(types.Content, system, system_key)
        if isinstance(system, dict) and system.get("role") not in (None, "user", "system"):
            yield f"{system_key}.role must be absent"

    if "generationConfig" in body:
        config = body["generationConfig"]
        yield from _validate(types.GenerationConfig, config, "generationConfig")
        if isinstance(config, dict):
            stop = config.get("stopSequences")
            if isinstance(stop, list) and len(stop) > STOP_MAX:
                yield f"generationConfig.stopSequences has {len(stop)} items (at most {STOP_MAX})"
            thinking = config.get("thinkingConfig")
            if isinstance(thinking, dict) and {"thinkingBudget", "thinkingLevel"} <= set(thinking):
                yield "thinkingConfig has both thinkingBudget and thinkingLevel"
            level = thinking.get("thinkingLevel") if isinstance(thinking, dict) else None
            if level is not None and level not in types.ThinkingLevel.__members__:
                # The SDK's enums let unknown values through with a warning.
                yield f"thinkingConfig.thinkingLevel {level!r} is not a ThinkingLevel"
            if not config:
                yield "generationConfig is empty (leave it out)"

    if "tools" in body:
        tools = body["tools"]
        if not isinstance(tools, list) or not tools:
            yield "tools must be a non-empty list (leave it out)"
            tools = []
        seen: set[str] = set()
        for index, tool in enumerate(tools):
            yield from _validate(types.Tool, tool, f"tools[{index}]")
            for key in tool if isinstance(tool, dict) else ():
                if key in seen:
                    yield f"tools: {key} is declared twice"
                seen.add(key)
            if isinstance(tool, dict) and any(v != {} for k, v in tool.items() if k in _BUILT_IN):
                yield f"tools[{index}]: a built-in tool takes an empty object here"

    if "toolConfig" in body:
        yield from _validate(types.ToolConfig, body["toolConfig"], "toolConfig")
        config = (
            body["toolConfig"].get("functionCallingConfig")
            if isinstance(body["toolConfig"], dict)
            else None
        )
        mode = config.get("mode") if isinstance(config, dict) else None
        if mode is not None and mode not in types.FunctionCallingConfigMode.__members__:
            yield f"toolConfig.functionCallingConfig.mode {mode!r} is not a mode"
        declared = {
            d.get("name")
            for tool in body.get("tools") or ()
            if isinstance(tool, dict)
            for d in tool.get("functionDeclarations") or ()
            if isinstance(d, dict)
        }
        for name in (config or {}).get("allowedFunctionNames") or ():
            if name not in declared:
                yield f"toolConfig: {name!r} is allowed but not declared"

    if "safetySettings" in body:
        settings = body["safetySettings"]
        if not isinstance(settings, list):
            yield "safetySettings must be a list"
            settings = []
        seen = set()
        for index, setting in enumerate(settings):
            yield from _validate(types.SafetySetting, setting, f"safetySettings[{index}]")
            category = setting.get("category") if isinstance(setting, dict) else None
            threshold = setting.get("threshold") if isinstance(setting, dict) else None
            if category not in types.HarmCategory.__members__:
                yield f"safetySettings[{index}].category {category!r} is not a HarmCategory"
            if threshold not in types.HarmBlockThreshold.__members__:
                yield f"safetySettings[{index}].threshold {threshold!r} is not a threshold"
            if category in seen:
                yield f"safetySettings: {category} is set twice"
            seen.add(category)


def _part(part: Any, where: str, *, role: str | None):
    if not isinstance(part, dict) or not part:
        yield f"{where} must be a non-empty object"
        return
    if "text" in part and not isinstance(part["text"], str):
        yield f"{where}.text must be a string"
    if "text" in part and part["text"] == "" and "thoughtSignature" not in part:
        yield f"{where} is an empty text part"
    if "thoughtSignature" in part and role != "model":
        yield f"{where}: thought signatures belong on model turns only"
    inline = part.get("inlineData")
    if inline is not None:
        data = inline.get("data") if isinstance(inline, dict) else None
        mime = inline.get("mimeType") if isinstance(inline, dict) else None
        if not isinstance(data, str) or data.startswith("data:"):
            yield f"{where}.inlineData.data must be raw base64, without a data: prefix"
        if not isinstance(mime, str) or not mime.startswith("image/"):
            yield f"{where}.inlineData.mimeType must be an image type (got {mime!r})"


def _validate(model: type[pydantic.BaseModel], value: Any, where: str):
    try:
        with warnings.catch_warnings():
            # Unknown enum values: reported by the explicit checks above instead.
            warnings.simplefilter("ignore", UserWarning)
            model.model_validate(value)
    except pydantic.ValidationError as exc:
        for error in exc.errors()[:3]:
            location = ".".join(str(item) for item in error["loc"])
            yield f"{where}.{location}: {error['msg']}"


def _snake_case(value: Any, *, path: str, top: str):
    """Wire names are camelCase (the SDK's types would also take snake_case). Values under
    `args`/`response` (tool payloads) and a declaration's `parametersJsonSchema` (a person's
    JSON Schema, property names as they wrote them) are free-form and skipped."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            if "_" in key and not (path == "" and key == top):
                yield f"{here}: wire names are camelCase"
            if key not in ("args", "response", "parametersJsonSchema"):
                yield from _snake_case(item, path=here, top=top)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _snake_case(item, path=f"{path}[{index}]", top=top)


def validate_recorded(record: Any) -> None:
    """Validate a request the fake upstream recorded, by the protocol its path speaks."""
    from tests.fakes.openapi import validate_chat_request

    if record.path == "/v1/chat/completions":
        validate_chat_request(record.json)
    elif record.path.startswith("/v1beta/models/"):
        validate_gemini_request(record.json)
    elif record.path.startswith("/segmind/"):
        validate_segmind_request(record.json)
