"""Gemini's built-in tools on the Google route: Google Search grounding, URL context and code
execution (docs/PROTOCOLS.md §3b). The wire facts and the storage are in docs/PROTOCOLS.md and
docs/ARCHITECTURE.md ("Tools").

What comes back is untrusted and read here before anything keeps it:
- `grounding` reads a candidate's `groundingMetadata` into `{queries, sources, citations,
  entry_point}`, each part bounded (the limits below, named in docs/PROTOCOLS.md), every URL
  checked (`safe_url`: http or https, else dropped) and each cited segment turned from
  Gemini's UTF-8 byte offsets into a character offset of the stored answer (`TextMap`);
- `url_context` reads `urlContextMetadata` into `[{url, status}]`;
- `code_fence` writes an `executableCode` or `codeExecutionResult` part as the fence the
  answer's text stores it as (`rendering.EXECUTED_CODE_TAG`), the same way every time, so
  that a later turn can send the part back in its place (`wire._replay`).

`report` and `citations` read what was stored, checked again (an import or an older row may
hold anything), for the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chatapp import rendering

from ..types import json_copy

# Bounds on what is kept of the metadata (docs/PROTOCOLS.md §3b); past them the rest is
# dropped, never an error.
QUERIES_MAX = 20
QUERY_MAX_CHARS = 500
SOURCES_MAX = 50
TITLE_MAX_CHARS = 300
DOMAIN_MAX_CHARS = 253
URL_MAX_CHARS = 2048
CITATIONS_MAX = rendering.MAX_CITATIONS
ENTRY_POINT_MAX_CHARS = 100_000
URLS_MAX = 50

# urlRetrievalStatus -> words under the answer.
URL_STATUS_WORDS: Mapping[str, str] = {
    "URL_RETRIEVAL_STATUS_SUCCESS": "read",
    "URL_RETRIEVAL_STATUS_ERROR": "could not be read",
    "URL_RETRIEVAL_STATUS_PAYWALL": "behind a paywall, not read",
    "URL_RETRIEVAL_STATUS_UNSAFE": "refused as unsafe, not read",
    "URL_RETRIEVAL_STATUS_UNSPECIFIED": "status unknown",
}
# codeExecutionResult.outcome -> the word an output fence carries (rendering.EXECUTION_OUTCOMES).
OUTCOMES: Mapping[str, str] = {
    "OUTCOME_OK": "ok",
    "OUTCOME_FAILED": "failed",
    "OUTCOME_DEADLINE_EXCEEDED": "deadline-exceeded",
}
CODE_PARTS = ("executableCode", "codeExecutionResult")

_LANGUAGE_RE = re.compile(r"[a-z][a-z0-9+#-]{0,19}")
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_HOST_RE = re.compile(r"[A-Za-z0-9.-]{1,253}")


def safe_url(value: Any) -> str:
    """The URL if it is one a page may link to: http or https with a host, no spaces or control
    characters, at most URL_MAX_CHARS; else ""."""
    if not isinstance(value, str) or not value or len(value) > URL_MAX_CHARS:
        return ""
    if _CONTROL_RE.search(value):
        return ""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        return ""
    return value


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    return " ".join(value.replace("\x00", "").split())[:limit]


# --- code execution ---------------------------------------------------------------------------


def code_fence(part: Mapping[str, Any]) -> str | None:
    """The fence an `executableCode` or `codeExecutionResult` part is stored as, or None for
    any other part (or one without its object). A fence is one backtick longer than the
    longest run of backticks in its content, so no content can close it early."""
    code = part.get("executableCode")
    if isinstance(code, Mapping):
        language = str(code.get("language") or "").lower()
        # PYTHON, the one language Gemini runs; LANGUAGE_UNSPECIFIED (an underscore) is none.
        lang = language if _LANGUAGE_RE.fullmatch(language) else ""
        body = code.get("code")
        return _fence(
            body if isinstance(body, str) else "", f"{lang or 'text'} {rendering.EXECUTED_CODE_TAG}"
        )
    result = part.get("codeExecutionResult")
    if isinstance(result, Mapping):
        outcome = OUTCOMES.get(str(result.get("outcome") or ""), "unknown")
        output = result.get("output")
        return _fence(
            output if isinstance(output, str) else "",
            f"text {rendering.EXECUTION_OUTPUT_TAG} {outcome}",
        )
    return None


def _fence(content: str, info: str) -> str:
    runs = [len(run) for run in re.findall(r"`+", content)]
    ticks = "`" * max(3, max(runs, default=0) + 1)
    if content and not content.endswith("\n"):
        content += "\n"
    return f"{ticks}{info}\n{content}{ticks}\n"


# --- where Gemini's offsets fall in the stored answer -----------------------------------------


@dataclass(slots=True)
class _Part:
    kind: str  # "text", "thought" or "code"
    # (offset in the stored answer, text as received) of each chunk of a text part.
    pieces: list[tuple[int, str]] = field(default_factory=list)


class TextMap:
    """The answer's text parts as Gemini counts them, and where each piece of their text sits
    in the stored answer (which also holds the fences of code parts, not in Gemini's text).

    Consecutive chunks of one kind make one part, as Google's SDK joins a streamed answer.
    `groundingSupports[].segment` counts UTF-8 bytes: within the part `partIndex` names, or,
    without one, within all the answer's text parts together."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []
        # partIndex -> (pieces, their text, its UTF-8): made once per text, not per segment.
        self._joined: dict[int | None, tuple[list[tuple[int, str]], str, bytes]] = {}

    def text(self, at: int, text: str) -> None:
        if not self.parts or self.parts[-1].kind != "text":
            self.parts.append(_Part("text"))
        self.parts[-1].pieces.append((at, text))
        self._joined.clear()

    def other(self, kind: str) -> None:
        if not self.parts or self.parts[-1].kind != kind or kind == "code":
            self.parts.append(_Part(kind))
            self._joined.clear()

    def _text_of(self, index: int | None) -> tuple[list[tuple[int, str]], str, bytes]:
        if index not in self._joined:
            if index is None:
                pieces = [p for part in self.parts if part.kind == "text" for p in part.pieces]
            else:
                pieces = self.parts[index].pieces
            joined = "".join(text for _, text in pieces)
            self._joined[index] = (pieces, joined, joined.encode("utf-8"))
        return self._joined[index]

    def end_of(self, segment: Mapping[str, Any]) -> int | None:
        """The offset in the stored answer where a segment ends, or None if it cannot be
        placed. The segment's own `text`, when sent, is the check: offsets that do not land on
        it are set aside for where that text is found."""
        index = segment.get("partIndex")
        if index is not None and not (
            type(index) is int and 0 <= index < len(self.parts) and self.parts[index].kind == "text"
        ):
            return None
        pieces, joined, data = self._text_of(index)
        end = segment.get("endIndex")
        start = segment.get("startIndex", 0)
        said = segment.get("text")
        char_end: int | None = None
        if type(end) is int and 0 <= end <= len(data):
            char_end = len(data[:end].decode("utf-8", "ignore"))
            if isinstance(said, str) and said and type(start) is int and 0 <= start <= end:
                char_start = len(data[:start].decode("utf-8", "ignore"))
                if joined[char_start:char_end] != said:
                    char_end = None
        if char_end is None and isinstance(said, str) and said:
            found = joined.find(said)
            char_end = found + len(said) if found >= 0 else None
        if char_end is None or not pieces:
            return None
        seen = 0
        for at, text in pieces:
            if char_end <= seen + len(text):
                return at + (char_end - seen)
            seen += len(text)
        return None


# --- grounding and URL context ----------------------------------------------------------------


def grounding(raw: Any, text_map: TextMap) -> dict[str, Any] | None:
    """What is kept of a `groundingMetadata`: `{queries, sources, citations, entry_point}`,
    each bounded and checked; None when nothing of it is usable."""
    if not isinstance(raw, Mapping):
        return None
    queries = raw.get("webSearchQueries")
    kept_queries = [
        q for q in (_text(v, QUERY_MAX_CHARS) for v in _list(queries)[:QUERIES_MAX]) if q
    ]
    sources: list[dict[str, str]] = []
    renumber: dict[int, int] = {}
    for index, chunk in enumerate(_list(raw.get("groundingChunks"))):
        web = chunk.get("web") if isinstance(chunk, Mapping) else None
        if not isinstance(web, Mapping) or len(sources) >= SOURCES_MAX:
            continue
        uri = safe_url(web.get("uri"))
        title = _text(web.get("title"), TITLE_MAX_CHARS)
        domain = _domain(web.get("domain")) or _domain(title)
        if not (uri or title):
            continue
        renumber[index] = len(sources) + 1
        sources.append({"title": title or domain or uri, "uri": uri, "domain": domain})
    by_offset: dict[int, list[int]] = {}
    for support in _list(raw.get("groundingSupports")):
        if not isinstance(support, Mapping) or len(by_offset) >= CITATIONS_MAX:
            continue
        segment = support.get("segment")
        numbers = [
            renumber[i]
            for i in _list(support.get("groundingChunkIndices"))
            if type(i) is int and i in renumber
        ]
        if not isinstance(segment, Mapping) or not numbers:
            continue
        at = text_map.end_of(segment)
        if at is None:
            continue
        cited = by_offset.setdefault(at, [])
        cited.extend(n for n in numbers if n not in cited)
    citations = [{"at": at, "sources": sorted(n)} for at, n in sorted(by_offset.items())]
    entry = raw.get("searchEntryPoint")
    rendered = entry.get("renderedContent") if isinstance(entry, Mapping) else None
    kept: dict[str, Any] = {}
    if kept_queries:
        kept["queries"] = kept_queries
    if sources:
        kept["sources"] = sources
    if citations:
        kept["citations"] = citations
    if isinstance(rendered, str) and rendered.strip() and len(rendered) <= ENTRY_POINT_MAX_CHARS:
        kept["entry_point"] = rendered.replace("\x00", "")
    return kept or None


def url_context(raw: Any) -> list[dict[str, str]] | None:
    """What is kept of a `urlContextMetadata`: `[{url, status}]`, bounded; a URL that may not
    be linked is kept as text (`linked` false at display)."""
    if not isinstance(raw, Mapping):
        return None
    kept: list[dict[str, str]] = []
    for item in _list(raw.get("urlMetadata"))[:URLS_MAX]:
        if not isinstance(item, Mapping):
            continue
        url = _text(item.get("retrievedUrl"), URL_MAX_CHARS)
        status = str(item.get("urlRetrievalStatus") or "")
        if url:
            known = status if status in URL_STATUS_WORDS else "URL_RETRIEVAL_STATUS_UNSPECIFIED"
            kept.append({"url": url, "status": known})
    return kept or None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _domain(value: Any) -> str:
    text = _text(value, DOMAIN_MAX_CHARS).lower()
    return text if _HOST_RE.fullmatch(text) and "." in text else ""


# --- what the page shows ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    number: int
    title: str
    url: str  # "" when it may not be linked
    domain: str


@dataclass(frozen=True, slots=True)
class UrlRead:
    url: str
    linked: bool
    status: str  # in words
    ok: bool


@dataclass(frozen=True, slots=True)
class ToolReport:
    """What an answer's tools left, for the page: the searches, the numbered sources, Google's
    search suggestions (`entry_point`, HTML for a sandboxed frame only), the URLs read."""

    queries: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    entry_point: str = ""
    urls: tuple[UrlRead, ...] = ()


def report(extras: Any) -> ToolReport | None:
    """The stored tool details of an answer, checked again; None when there are none."""
    if not isinstance(extras, Mapping):
        return None
    found = extras.get("grounding")
    found = found if isinstance(found, Mapping) else {}
    queries = tuple(
        q
        for q in (_text(v, QUERY_MAX_CHARS) for v in _list(found.get("queries"))[:QUERIES_MAX])
        if q
    )
    sources: list[Source] = []
    for item in _list(found.get("sources"))[:SOURCES_MAX]:
        if isinstance(item, Mapping):
            sources.append(
                Source(
                    number=len(sources) + 1,
                    title=_text(item.get("title"), TITLE_MAX_CHARS),
                    url=safe_url(item.get("uri")),
                    domain=_domain(item.get("domain")),
                )
            )
    rendered = found.get("entry_point")
    entry = rendered if isinstance(rendered, str) and len(rendered) <= ENTRY_POINT_MAX_CHARS else ""
    urls = []
    for item in _list(extras.get("url_context"))[:URLS_MAX]:
        if not isinstance(item, Mapping):
            continue
        url = _text(item.get("url"), URL_MAX_CHARS)
        status = str(item.get("status") or "")
        if url:
            urls.append(
                UrlRead(
                    url=url,
                    linked=bool(safe_url(url)),
                    status=URL_STATUS_WORDS.get(
                        status, URL_STATUS_WORDS["URL_RETRIEVAL_STATUS_UNSPECIFIED"]
                    ),
                    ok=status == "URL_RETRIEVAL_STATUS_SUCCESS",
                )
            )
    result = ToolReport(tuple(queries), tuple(sources), entry, tuple(urls))
    return result if result != ToolReport() else None


def citations(extras: Any) -> list[rendering.Citation]:
    """The stored citation markers of an answer, for `rendering.render_markdown`; only those
    that name a source the answer lists."""
    found = extras.get("grounding") if isinstance(extras, Mapping) else None
    if not isinstance(found, Mapping):
        return []
    count = min(len(_list(found.get("sources"))), SOURCES_MAX)
    marks = []
    for item in _list(found.get("citations"))[:CITATIONS_MAX]:
        if not isinstance(item, Mapping) or type(item.get("at")) is not int:
            continue
        numbers = tuple(n for n in _list(item.get("sources")) if type(n) is int and 0 < n <= count)
        if numbers:
            marks.append(rendering.Citation(item["at"], numbers))
    return marks


def shifted(extras: Mapping[str, Any], by: int) -> dict[str, Any]:
    """The extras of a continuation, whose offsets count from the start of what it sent, as
    offsets of the whole answer: the run appends what comes back to the `by` characters the
    answer had. The recorded parts (`gemini.parts`) and the citations move; nothing else
    holds an offset."""
    moved = json_copy(extras)
    gemini = moved.get("gemini")
    for part in _list(gemini.get("parts")) if isinstance(gemini, dict) else ():
        if isinstance(part, dict) and type(part.get("at")) is int:
            part["at"] += by
    found = moved.get("grounding")
    for item in _list(found.get("citations")) if isinstance(found, dict) else ():
        if isinstance(item, dict) and type(item.get("at")) is int:
            item["at"] += by
    return moved


def anchor(message_id: object) -> str:
    """The prefix of the ids a message's sources carry, and its citations link to."""
    return f"m-{message_id}"


def searched(options: Mapping[str, Any] | None) -> bool:
    """Whether the answer was asked for with Google Search on."""
    return bool(options and options.get("google_search"))


__all__ = [
    "CODE_PARTS",
    "Source",
    "TextMap",
    "ToolReport",
    "UrlRead",
    "anchor",
    "citations",
    "code_fence",
    "grounding",
    "report",
    "safe_url",
    "searched",
    "shifted",
    "url_context",
]
