"""One reader per format, each turning a parsed file into a neutral `Source`; this module
finds which one a file is and, for a zip, which entries to read."""

from __future__ import annotations

import bisect
import logging
import posixpath
import re
from collections.abc import Callable
from typing import IO, Any

from .. import archive
from ..neutral import Budget, ImageLookup, ImportRefused, Source
from . import chatapp, chatgpt, openwebui

log = logging.getLogger(__name__)

NOT_AN_EXPORT = (
    "This file is JSON but not an export this server reads: choose ChatGPT's "
    "conversations.json (or its zip), an Open WebUI chat export, or this app's export."
)

# This app's zip: one document per conversation beside its images.
_OWN = re.compile(r"(?:^|/)conversations/[^/]+\.json$")
# ChatGPT's zip: conversations.json, or its parts conversations-000.json, ...
_CHATGPT = re.compile(r"(?:^|/)conversations(?:-\d+)?\.json$")


def read_upload(fp: IO[bytes], size: int) -> Source:
    """Everything the file holds, within the import limits (ImportRefused otherwise). A
    reader tripping over a shape no one foresaw refuses the file too, never a 500."""
    try:
        return _read_upload(fp, size)
    except ImportRefused:
        raise
    except Exception:
        log.exception("import: a file could not be read")
        raise ImportRefused(
            "This file could not be read as an export: part of it has a shape this server "
            "does not expect."
        ) from None


def _read_upload(fp: IO[bytes], size: int) -> Source:
    archive.check_size(size)
    budget = Budget(archive.limit("import_conversations"), archive.limit("import_messages"))
    if archive.is_zip(fp):
        return _read_zip(archive.Archive(fp), budget)
    value = archive.parse_json(archive.read_all(fp), "This file")
    return read_value(value, images=None, budget=budget)


def read_value(value: Any, *, images: ImageLookup | None, budget: Budget) -> Source:
    reader = _reader_for(value)
    if reader is None:
        raise ImportRefused(NOT_AN_EXPORT)
    return reader(value, images=images, budget=budget)


Reader = Callable[..., Source]


def _reader_for(value: Any) -> Reader | None:
    if chatapp.looks_like(value):
        return chatapp.read
    items = value if isinstance(value, list) else [value]
    first = next((item for item in items if isinstance(item, dict)), None)
    if first is None:
        if isinstance(value, list) and not value:
            raise ImportRefused("This file holds no conversations (its list is empty).")
        return None
    if chatgpt.looks_like(first):
        return chatgpt.read
    if openwebui.looks_like(first):
        return openwebui.read
    return None


def _read_zip(zipped: archive.Archive, budget: Budget) -> Source:
    names = [n for n in zipped.names() if not _ignored(n)]
    own = [n for n in names if _OWN.search(n)]
    if own:
        merged = Source(chatapp.NAME)
        for name in sorted(own):
            value = zipped.json(name)
            if not chatapp.looks_like(value):
                merged.notes.add("not_conversation", name)
                continue
            root = posixpath.dirname(posixpath.dirname(name))
            _merge(merged, chatapp.read(value, images=_own_images(zipped, root), budget=budget))
        return merged
    found = [n for n in names if _CHATGPT.search(n)]
    if found:
        merged = Source(chatgpt.NAME)
        images = _asset_images(zipped, names)
        for name in sorted(found):
            _merge(merged, read_value(zipped.json(name), images=images, budget=budget))
        return merged
    documents = [n for n in names if n.lower().endswith(".json")]
    if not documents:
        raise ImportRefused(
            "This zip holds no conversations: expected ChatGPT's conversations.json, an Open "
            "WebUI chat export or this app's export (conversations/*.json) in it."
        )
    merged_any: Source | None = None
    for name in sorted(documents):
        source = read_value(zipped.json(name), images=None, budget=budget)
        if merged_any is None:
            merged_any = source
        else:
            _merge(merged_any, source)
    assert merged_any is not None
    return merged_any


def _ignored(name: str) -> bool:
    base = posixpath.basename(name)
    return name.startswith("__MACOSX/") or base.startswith("._")


def _merge(into: Source, source: Source) -> None:
    into.conversations.extend(source.conversations)
    for kind, number in source.notes.counts.items():
        into.notes.counts[kind] = into.notes.counts.get(kind, 0) + number
        into.notes.examples.setdefault(kind, []).extend(source.notes.examples.get(kind, []))
    if source.format not in into.format.split(" and "):
        into.format = f"{into.format} and {source.format}"


def _own_images(zipped: archive.Archive, root: str) -> ImageLookup:
    """This app's images, by the path its documents give (`images/<id>.<ext>`)."""

    def find(path: str) -> Callable[[], bytes] | None:
        name = posixpath.normpath(posixpath.join(root, path)) if root else posixpath.normpath(path)
        if name not in zipped.entries or not name.startswith(
            posixpath.join(root, "images/") if root else "images/"
        ):
            return None
        return lambda: zipped.read(name)

    return find


def _asset_images(zipped: archive.Archive, names: list[str]) -> ImageLookup:
    """ChatGPT's images: an entry named after the asset pointer's id ("file-abc…" or
    "file_00…"), anywhere in the zip, possibly followed by "-" and the original name."""
    by_base = sorted((posixpath.basename(n), n) for n in names)
    bases = [base for base, _ in by_base]

    def find(asset: str) -> Callable[[], bytes] | None:
        if not asset or "/" in asset:
            return None
        at = bisect.bisect_left(bases, asset)
        while at < len(bases) and bases[at].startswith(asset):
            rest = bases[at][len(asset) :]
            if rest == "" or rest[0] in "-.":
                name = by_base[at][1]
                return lambda: zipped.read(name)
            at += 1
        return None

    return find
