"""Text -> HTML: the one place in the project where markup is made from untrusted text.

Everything a user typed or a model produced reaches the page through `render_markdown` or
`render_plain`. `tests/test_architecture.py` fails on `mark_safe(` / `|safe` /
`SafeString(` anywhere else (docs/SECURITY.md rule 2), so new HTML-producing code belongs here,
behind the same sanitiser.

Pipeline for markdown, always in this order:

1. markdown-it-py (CommonMark, `html=False`): raw HTML in the input is escaped as text,
   dangerous link schemes are refused by its `validateLink`.
2. Our own render rules for the few constructs whose default HTML we do not want:
   fenced code (Pygments, no `language-*` class), images (a link, never `<img>`), and table
   cell alignment (`align=` instead of a `style=` attribute the CSP would block anyway).
3. nh3 (ammonia) with a tight allowlist: the second wall. If step 1 or 2 ever lets
   something through (a markdown-it bug, a careless rule added later), only the tags,
   attributes, classes and URL schemes below can survive.
4. `mark_safe`, here and only here.

Output contract (what templates, CSS and the front-end JS may rely on):

- Fenced and indented code: ``<div class="code-block">`` containing an optional
  ``<div class="code-lang">name</div>`` and ``<pre class="code"><code>…</code></pre>``;
  highlighted tokens are ``<span class="k">`` etc. with Pygments' standard short names.
- Links: ``<a href="http(s)/mailto…" target="_blank" rel="noopener noreferrer nofollow">``.
  A link whose target was refused keeps its text but has no ``href``.
- Images: ``<a href="…">image: alt</a>`` for http(s) sources, plain text otherwise.

Bump `RENDERER_VERSION` whenever the HTML for some input changes, so that caches keyed on it
are invalidated.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from io import StringIO
from typing import TYPE_CHECKING

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import MD_TRIM_RE, escapeHtml, mdTrim, unescapeAll
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import find_lexer_class_by_name
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

if TYPE_CHECKING:
    from markdown_it.renderer import RendererHTML
    from markdown_it.token import Token
    from markdown_it.utils import EnvType, OptionsDict

__all__ = ["RENDERER_VERSION", "answer_html", "render_markdown", "render_plain"]

RENDERER_VERSION: int = 1

# Above this many characters a block is shown as plain escaped text. Pygments is pure-Python
# regexes, measured at 0.2-0.5 MB/s (Python and JavaScript lexers), so this cap bounds the
# worst case near 150 ms. Characters rather than bytes: it is what we have in hand.
MAX_HIGHLIGHT_CHARS = 50_000
# The same bound for a whole document, so that many large blocks cannot add up to seconds.
MAX_HIGHLIGHT_CHARS_PER_DOCUMENT = MAX_HIGHLIGHT_CHARS
# Longest language label shown above a code block; the info string is model-controlled.
MAX_LANG_LABEL_CHARS = 32

# Names for which Pygments would only produce unstyled text: skip it (and the lookup).
_PLAIN_LANGS = frozenset({"", "text", "txt", "plain", "plaintext", "none", "output"})

# Pygments' short token classes ("k", "s2", "nf", ...). Only standard token types are
# emitted (see `_standard_tokens`), so this set is exactly what highlighted code can carry.
TOKEN_CLASSES: frozenset[str] = frozenset(name for name in STANDARD_TYPES.values() if name)

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        # blocks
        "p", "br", "hr", "blockquote", "pre", "div",
        "h1", "h2", "h3", "h4", "h5", "h6",
        "ul", "ol", "li",
        "table", "thead", "tbody", "tr", "th", "td",
        # inline
        "a", "em", "strong", "s", "code", "span",
    }
)  # fmt: skip
# Tag -> attributes that may carry any value. `class` is not here: it is value-checked
# through ALLOWED_CLASSES so model text cannot pick class names that restyle the page.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    # "*": empty on purpose, otherwise ammonia keeps its default generic `lang`/`title`.
    "*": set(),
    "a": {"href"},
    "ol": {"start"},
}
# Tag -> attribute -> the only values allowed. `align` is a presentational attribute, not
# inline CSS, so table alignment survives a CSP without 'unsafe-inline' styles.
ALLOWED_ATTRIBUTE_VALUES: dict[str, dict[str, set[str]]] = {
    "th": {"align": {"left", "center", "right"}},
    "td": {"align": {"left", "center", "right"}},
}
ALLOWED_CLASSES: dict[str, set[str]] = {
    "div": {"code-block", "code-lang"},
    "pre": {"code"},
    "span": set(TOKEN_CLASSES),
}
URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

# One Cleaner for the process: building the ammonia configuration per call would cost more
# than cleaning a typical answer. It holds no per-call state, so threads may share it.
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    # Their text would be meaningless if a raw element ever got this far; drop it whole.
    clean_content_tags={"script", "style"},
    attributes=ALLOWED_ATTRIBUTES,
    strip_comments=True,
    link_rel=LINK_REL,
    tag_attribute_values=ALLOWED_ATTRIBUTE_VALUES,
    # `target` is not in ALLOWED_ATTRIBUTES, so whatever the input said is stripped first and
    # this fixed value is the only one that can appear.
    set_tag_attribute_values={"a": {"target": "_blank"}},
    url_schemes=set(URL_SCHEMES),
    # Relative and scheme-relative URLs ("//evil.example", "jav%09ascript:") have no scheme
    # to check; a model has no business linking into this app, so drop them.
    url_relative="deny",
    allowed_classes=ALLOWED_CLASSES,
)

# Reused for every block: nowrap gives bare spans inside our own wrapper, so the structure is
# ours to define; class names only (no inline styles, which the CSP forbids).
_FORMATTER = HtmlFormatter(nowrap=True, classprefix="")

_HTTP_URL_RE = re.compile(r"^https?://", re.IGNORECASE)
_BUDGET_KEY = "chatapp_highlight_budget"


@functools.lru_cache(maxsize=256)
def _lexer_class_for(name: str) -> type[Lexer] | None:
    """Pygments lexer class for a fence name, or None. Cached because a miss scans plugin
    entry points; bounded because the names come from model output. Classes, not instances:
    a few lexers keep state on `self`, and requests render in parallel threads."""
    try:
        return find_lexer_class_by_name(name)
    except ClassNotFound:
        return None


def _standard_tokens(
    tokens: Iterable[tuple[_TokenType, str]],
) -> Iterator[tuple[_TokenType, str]]:
    # Some lexers invent sub-types (YAML's Literal.Scalar.Plain) that HtmlFormatter writes
    # as class="l lScalarPlain". Folding them to the nearest standard ancestor means the
    # HTML handed to the sanitiser already uses TOKEN_CLASSES only, one class per span.
    for ttype, value in tokens:
        while ttype not in STANDARD_TYPES and ttype.parent is not None:
            ttype = ttype.parent
        yield ttype, value


def _highlight(code: str, lang: str, env: EnvType) -> str:
    """Escaped (and, within budget, highlighted) HTML for a code block's content."""
    budget: int = env.get(_BUDGET_KEY, MAX_HIGHLIGHT_CHARS_PER_DOCUMENT)
    key = lang.lower()
    if key in _PLAIN_LANGS or len(code) > MAX_HIGHLIGHT_CHARS or len(code) > budget:
        return escapeHtml(code)
    lexer_class = _lexer_class_for(key)
    if lexer_class is None:
        # Unknown names stay plain: guessing from content is slow and often wrong.
        return escapeHtml(code)
    env[_BUDGET_KEY] = budget - len(code)
    out = StringIO()
    try:
        # stripnl=False keeps leading/trailing blank lines the author wrote.
        lexer = lexer_class(stripnl=False, ensurenl=True)
        _FORMATTER.format(_standard_tokens(lexer.get_tokens(code)), out)
    except Exception:
        # A third-party lexer bug must cost colour, not the whole answer.
        return escapeHtml(code)
    return out.getvalue()


def _code_block_html(code: str, lang: str, env: EnvType) -> str:
    label = ""
    if lang:
        label = f'<div class="code-lang">{escapeHtml(lang[:MAX_LANG_LABEL_CHARS])}</div>'
    body = _highlight(code, lang, env)
    return f'<div class="code-block">{label}<pre class="code"><code>{body}</code></pre></div>\n'


def _render_fence(
    self: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    token = tokens[idx]
    # Same info-string parsing as markdown-it's own fence rule: first word, CommonMark
    # whitespace, backslash escapes and entities resolved.
    info = mdTrim(unescapeAll(token.info)) if token.info else ""
    lang = MD_TRIM_RE.split(info, maxsplit=1)[0] if info else ""
    return _code_block_html(token.content, lang, env)


def _render_code_block(
    self: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    return _code_block_html(tokens[idx].content, "", env)


def _render_image(
    self: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    # Never an <img>: loading it would send a request the model chose, and a prompt
    # injection can put secrets in that URL. The reader may follow it deliberately.
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    text = escapeHtml(f"image: {alt}" if alt else "image")
    src = str(token.attrGet("src") or "")
    if not _HTTP_URL_RE.match(src):
        return text
    return f'<a href="{escapeHtml(src)}">{text}</a>'


def _render_cell_open(
    self: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    # markdown-it writes alignment as style="text-align:x"; the sanitiser drops all style.
    token = tokens[idx]
    style = str(token.attrGet("style") or "")
    align = style.removeprefix("text-align:")
    if align in {"left", "center", "right"}:
        return f'<{token.tag} align="{align}">'
    return f"<{token.tag}>"


def _build_markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_code_block)
    md.add_render_rule("image", _render_image)
    md.add_render_rule("th_open", _render_cell_open)
    md.add_render_rule("td_open", _render_cell_open)
    return md


# Built once: compiling the rule chains per call would dominate short answers. render()
# keeps all parse state in a fresh StateCore, so concurrent calls can share it.
_MD = _build_markdown()


def render_markdown(text: str) -> SafeString:
    """Sanitised HTML for markdown from an untrusted source (model answers, mostly)."""
    if not text:
        return mark_safe("")
    html = _MD.render(text, {})
    return mark_safe(_CLEANER.clean(html))


def render_plain(text: str) -> SafeString:
    """Escaped text shown verbatim (user input). Newlines are kept as characters: the
    container is `white-space: pre-wrap`, so no `<br>` is needed."""
    # django's escape() always escapes, even an already-"safe" string, and returns a
    # SafeString: a plain str is fine here since escaping leaves no markup at all.
    return escape(text)


def answer_html(text: str, cached_html: str, cached_version: int) -> SafeString:
    """An answer's HTML: the copy rendered (by `render_markdown`) when the answer finished, if
    it was made by this version of the renderer, else a fresh rendering.

    Rendering costs ~3 ms per 2 KB answer and ~150 ms per 100 KB, so history pages serve the
    stored copy; a renderer change (a sanitiser fix) bumps RENDERER_VERSION and stale copies
    are re-rendered instead of trusted.
    """
    if cached_html and cached_version == RENDERER_VERSION:
        return mark_safe(cached_html)
    return render_markdown(text)
