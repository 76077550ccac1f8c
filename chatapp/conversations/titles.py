"""A conversation's title from its first message."""

from __future__ import annotations

import re
import unicodedata

# What a title keeps of a markdown line: the words, not the markup around them.
# A marker counts at the end of the line too: an empty heading or list item has no words.
_TITLE_LINE_PREFIX = re.compile(r"^(?:#{1,6}(?:\s+|$)|>\s*|[-*+](?:\s+|$)|\d{1,3}[.)](?:\s+|$))+")
# A thematic break (---, ***, ___) is a line of markup alone.
_THEMATIC_BREAK = re.compile(r"(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}")
_TITLE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Paired markers only, as markdown reads them: "2*3" and "__init__" keep their characters.
_TITLE_MARKERS = re.compile(r"(\*\*|\*|~~|`)(?=\S)(.+?)(?<=\S)\1")


def plain_title(text: str) -> str:
    """A title as plain visible text: no control or format characters, so a bidirectional
    override (U+202E) cannot reverse the sidebar, the page title or the admin around it. The
    zero-width joiner stays: emoji sequences need it."""
    if text.isprintable():
        # No control or format character at all (nor any other kind `isprintable` refuses):
        # nothing to drop, and no call per character (a new chat's first title).
        return " ".join(text.split())
    return " ".join(
        "".join(
            ch for ch in text if ch == "\u200d" or unicodedata.category(ch) not in ("Cc", "Cf")
        ).split()
    )


def title_from_text(text: str, limit: int = 80) -> str:
    """A conversation's title from its first message: the first line with words in it,
    without markdown markup (headings, quotes, list markers, emphasis, code spans, links),
    cut at a word boundary. Lines inside code fences count only if nothing else has words."""
    line, code_line, in_fence = "", "", False
    for raw in text.splitlines():
        if raw.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            code_line = code_line or " ".join(raw.split())
            continue
        if _THEMATIC_BREAK.fullmatch(raw.strip()):
            continue
        line = _TITLE_LINK.sub(r"\1", _TITLE_LINE_PREFIX.sub("", raw.strip()))
        for _ in range(3):  # nested emphasis: the outer pair first, then what it held
            line, found = _TITLE_MARKERS.subn(r"\2", line)
            if not found:
                break
        line = " ".join(line.split())
        if line:
            break
    line = plain_title(line or code_line) or "New chat"
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
    return cut.rstrip(",.;:") + "…"
