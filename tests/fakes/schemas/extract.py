"""Extract the chat-completion schemas from OpenAI's OpenAPI spec into a small committed file.

The full spec (3.4 MB) lives outside the repository, in `../shared/specs/`, so a fresh clone
cannot read it. This script copies the transitive closure of the three schemas the tests
validate against into `openai-chat.json`, keeping each schema under its original
`#/components/schemas/<Name>` path so every `$ref` resolves inside the extracted document.
The schemas are copied verbatim (OpenAPI's `nullable` included): `tests/fakes/openapi.py`
adapts them when it loads them, so this file stays a faithful, diffable excerpt.

    python tests/fakes/schemas/extract.py [--source PATH] [--output PATH]

`tests/test_fake_upstream.py` re-runs the extraction whenever the source is present and fails
if the committed output differs, so the excerpt cannot drift from the spec it came from.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[3] / "shared" / "specs" / "openai-openapi.json"
SOURCE_LICENSE = SOURCE.with_name("openai-openapi.LICENSE")
OUTPUT = HERE / "openai-chat.json"
OUTPUT_LICENSE = HERE / "LICENSE"

ROOTS = (
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
)
PREFIX = "#/components/schemas/"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def extract(spec: dict[str, Any], roots: tuple[str, ...] = ROOTS) -> dict[str, Any]:
    """The closure of `roots` under `$ref`, as a minimal OpenAPI document."""
    schemas = spec["components"]["schemas"]
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for ref in _refs(schemas[name]):
            if not ref.startswith(PREFIX):
                # A ref elsewhere (another component kind, another file) would dangle in the
                # excerpt; fail loudly rather than commit a document that cannot resolve.
                raise ValueError(f"{name} refers to {ref}, outside {PREFIX}")
            pending.append(ref.removeprefix(PREFIX))
    info = spec.get("info", {})
    return {
        "openapi": spec.get("openapi", "3.1.0"),
        "info": {
            "title": "OpenAI API: chat completion schemas (excerpt)",
            "version": info.get("version", ""),
            "license": info.get("license", {}),
            "x-extracted-from": "openai-openapi.json",
            "x-extracted-by": "tests/fakes/schemas/extract.py",
            "x-roots": list(roots),
        },
        # Sorted so that the output depends only on the spec's content, not on dict order.
        "components": {"schemas": {name: schemas[name] for name in sorted(seen)}},
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def extract_file(source: Path = SOURCE) -> str:
    with source.open(encoding="utf-8") as fh:
        return render(extract(json.load(fh)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    args.output.write_text(extract_file(args.source), encoding="utf-8")
    license_source = args.source.with_name("openai-openapi.LICENSE")
    if license_source.exists():
        shutil.copyfile(license_source, args.output.with_name("LICENSE"))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
