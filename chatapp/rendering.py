"""Text -> HTML: the one place in the project where markup is made from untrusted text.

Everything a user typed or a model produced reaches the page through `render_markdown` or
`render_plain` (or, escaped in fixed markup, `render_marked` and `render_spans`), or through
the templates' own escaping. `tests/test_architecture.py` fails on `mark_safe(` / `|safe` /
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
- Math (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``): MathML from latex2mathml, ``<math>`` with
  ``display="block"`` for display math; TeX it cannot read stays as ``<code class="math-source">``.
- Task lists: ``<ul class="contains-task-list">`` whose items hold a disabled checkbox.
- Footnotes: ``<sup class="footnote-ref">label</sup>`` where cited and
  ``<div class="footnote"><sup class="footnote-label">label</sup> text</div>`` where defined.
  Labels are shown as written, so a block renders the same wherever a stream starts.
- Code a model ran and its output (docs/ARCHITECTURE.md, "Tools"): a fence whose info string's
  second word is `EXECUTED_CODE_TAG` (```` ```python model-executed-code ````) is
  ``<div class="code-block code-run">`` labelled "Code run by the model · python"; one whose
  second word is `EXECUTION_OUTPUT_TAG` followed by an outcome
  (```` ```text model-execution-output failed ````) is ``<div class="code-block code-output
  outcome-failed">`` labelled with the outcome in words.
- Citations (`render_markdown(..., citations=)`): ``<sup class="cite">[<a href="#A-source-N">N</a>]</sup>``
  at the offsets given, where A is the caller's anchor (a message's element id).

Blocks (docs/ARCHITECTURE.md, "Formatted while it streams"): a document is cut into top-level
blocks by `BlockSplitter`, and its HTML is the concatenation of each block rendered alone. The
stream renders each block once, when it closes, with the same function, so the final HTML of
an answer is exactly the blocks the browser already shows: nothing moves when it ends, and the
work per answer stays linear in its length.

Bump `RENDERER_VERSION` whenever the HTML for some input changes, so that caches keyed on it
are invalidated.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from html import escape as escape_text
from io import StringIO
from typing import TYPE_CHECKING

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from latex2mathml.converter import convert as _latex_to_mathml
from markdown_it import MarkdownIt
from markdown_it.common.utils import MD_TRIM_RE, escapeHtml, mdTrim, unescapeAll
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import find_lexer_class_by_name
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

if TYPE_CHECKING:
    from markdown_it.renderer import RendererHTML
    from markdown_it.rules_block import StateBlock
    from markdown_it.rules_inline import StateInline
    from markdown_it.token import Token
    from markdown_it.utils import EnvType, OptionsDict

__all__ = [
    "RENDERER_VERSION",
    "BlockSplitter",
    "Citation",
    "StreamRenderer",
    "answer_html",
    "has_reference_definitions",
    "partial_answer",
    "render_markdown",
    "render_plain",
    "split_blocks",
]

RENDERER_VERSION: int = 3

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

# MathML Core's presentation elements, as latex2mathml writes them. `semantics`/`annotation`
# are left out (an annotation-xml can carry HTML), and so is every attribute that can hold a URL
# or a style (`href`, which MathML Core allows on any element; `style`; `mathbackground`).
MATHML_TAGS: frozenset[str] = frozenset(
    {
        "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "mpadded", "mphantom",
        "msub", "msup", "msubsup", "munder", "mover", "munderover", "mmultiscripts",
        "mprescripts", "none", "mfrac", "msqrt", "mroot", "mstyle", "menclose", "merror",
        "mtable", "mtr", "mtd", "mlabeledtr",
    }
)  # fmt: skip
MATHML_ATTRIBUTES: dict[str, set[str]] = {
    "math": {"display"},
    "mi": {"mathvariant"},
    "mn": {"mathvariant"},
    "mo": {
        "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "accent",
        "largeop", "movablelimits", "form", "symmetric", "minsize", "maxsize",
    },
    "mtext": {"mathvariant"},
    "mspace": {"width", "height", "depth"},
    "mpadded": {"width", "height", "depth", "lspace", "voffset"},
    "mfrac": {"linethickness"},
    "mover": {"accent"},
    "munder": {"accentunder"},
    "munderover": {"accent", "accentunder"},
    "mstyle": {"displaystyle", "scriptlevel", "mathvariant"},
    "menclose": {"notation"},
    "mtable": {"columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines", "frame"},
    "mtr": {"columnalign", "rowalign"},
    "mtd": {"columnalign", "rowalign", "columnspan", "rowspan"},
}  # fmt: skip

# Code a model ran (Gemini's code execution) is stored as fences marked by the second word of
# their info string, so that the stored text stays Markdown for history, export and search
# (docs/ARCHITECTURE.md, "Tools"); the first word stays the language, for any other viewer.
EXECUTED_CODE_TAG = "model-executed-code"
EXECUTION_OUTPUT_TAG = "model-execution-output"
# An output fence's third word -> the outcome in words.
EXECUTION_OUTCOMES: dict[str, str] = {
    "ok": "OK",
    "failed": "failed",
    "deadline-exceeded": "deadline exceeded",
    "unknown": "outcome unknown",
}

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        # blocks
        "p", "br", "hr", "blockquote", "pre", "div",
        "h1", "h2", "h3", "h4", "h5", "h6",
        "ul", "ol", "li",
        "table", "thead", "tbody", "tr", "th", "td",
        # inline
        "a", "em", "strong", "s", "code", "span", "sup",
        # a task list's checkbox (disabled; only `type="checkbox"` survives)
        "input",
    }
) | MATHML_TAGS  # fmt: skip
# Tag -> attributes that may carry any value. `class` is not here: it is value-checked
# through ALLOWED_CLASSES so model text cannot pick class names that restyle the page.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    # "*": empty on purpose, otherwise ammonia keeps its default generic `lang`/`title`.
    "*": set(),
    "a": {"href"},
    "ol": {"start"},
    "input": {"checked", "disabled"},
    **MATHML_ATTRIBUTES,
}
# Tag -> attribute -> the only values allowed. `align` is a presentational attribute, not
# inline CSS, so table alignment survives a CSP without 'unsafe-inline' styles.
ALLOWED_ATTRIBUTE_VALUES: dict[str, dict[str, set[str]]] = {
    "th": {"align": {"left", "center", "right"}},
    "td": {"align": {"left", "center", "right"}},
}
ALLOWED_CLASSES: dict[str, set[str]] = {
    "div": {
        "code-block",
        "code-lang",
        "footnote",
        "code-run",
        "code-output",
        *(f"outcome-{outcome}" for outcome in EXECUTION_OUTCOMES),
    },
    "pre": {"code"},
    "span": set(TOKEN_CLASSES),
    "code": {"math-source"},
    "sup": {"footnote-ref", "footnote-label"},
    "ul": {"contains-task-list"},
    "li": {"task-list-item"},
    "input": {"task-list-item-checkbox"},
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
    # A checkbox is always disabled: the page has nothing a ticked box could change.
    # Every input that survives is a disabled checkbox, whatever it said it was.
    set_tag_attribute_values={
        "a": {"target": "_blank"},
        "input": {"type": "checkbox", "disabled": "disabled"},
    },
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


def _code_block_html(
    code: str, lang: str, env: EnvType, *, label: str | None = None, kind: str = ""
) -> str:
    shown = lang[:MAX_LANG_LABEL_CHARS] if label is None else label[: MAX_LANG_LABEL_CHARS * 2]
    head = f'<div class="code-lang">{escapeHtml(shown)}</div>' if shown else ""
    body = _highlight(code, lang, env)
    classes = f"code-block {kind}" if kind else "code-block"
    return f'<div class="{classes}">{head}<pre class="code"><code>{body}</code></pre></div>\n'


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
    lang = _fence_lang(token.info)
    words = mdTrim(unescapeAll(token.info)).split() if token.info else []
    if len(words) >= 2 and words[1] == EXECUTED_CODE_TAG:
        label = "Code run by the model" + (f" · {lang}" if lang not in _PLAIN_LANGS else "")
        return _code_block_html(token.content, lang, env, label=label, kind="code-run")
    if len(words) >= 2 and words[1] == EXECUTION_OUTPUT_TAG:
        outcome = words[2] if len(words) > 2 and words[2] in EXECUTION_OUTCOMES else "unknown"
        return _code_block_html(
            token.content,
            "",
            env,
            label=f"Output · {EXECUTION_OUTCOMES[outcome]}",
            kind=f"code-output outcome-{outcome}",
        )
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


# Longest TeX source turned into MathML; longer formulas are shown as their source. latex2mathml
# is pure Python, measured at ~0.35 ms for a 60-character formula, so this bounds one at ~10 ms.
MAX_MATH_CHARS = 2_000
# Longest footnote label shown; labels come from model text.
MAX_FOOTNOTE_LABEL_CHARS = 32
_FOOTNOTE_LABEL_RE = re.compile(rf"\[\^([A-Za-z0-9_.-]{{1,{MAX_FOOTNOTE_LABEL_CHARS}}})\]")


def _math_html(tex: str, display: bool) -> str:
    r"""MathML for TeX from model text; what latex2mathml cannot read stays visible as source.
    The sanitiser still cleans the result (latex2mathml passes `\href` and `\style` through)."""
    source = tex.strip()
    if not source:
        return ""
    if len(source) <= MAX_MATH_CHARS:
        try:
            return str(_latex_to_mathml(source, display="block" if display else "inline"))
        except Exception:
            pass  # unbalanced braces, unknown environments: fall through to the source
    text = escapeHtml(f"$${source}$$" if display else f"${source}$")
    return f'<code class="math-source">{text}</code>'


def _render_math_token(
    self: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    token = tokens[idx]
    display = token.type in ("math_block", "math_inline_double", "math_bracket_block")
    html = _math_html(token.content, display)
    return f"<p>{html}</p>\n" if token.block else html


def _bracket_math_inline(state: StateInline, silent: bool) -> bool:
    r"""`\(…\)` (inline) and `\[…\]` (display) inside a paragraph. Runs before markdown-it's
    escape rule, which would otherwise turn `\(` into a bare parenthesis."""
    src, pos = state.src, state.pos
    if src[pos] != "\\" or pos + 1 >= state.posMax or src[pos + 1] not in "([":
        return False
    closing = "\\)" if src[pos + 1] == "(" else "\\]"
    end = src.find(closing, pos + 2, state.posMax)
    if end < 0 or not src[pos + 2 : end].strip():
        return False
    if not silent:
        token = state.push(
            "math_bracket_inline" if closing == "\\)" else "math_inline_double", "math", 0
        )
        token.content = src[pos + 2 : end]
        token.markup = src[pos : pos + 2]
    state.pos = end + 2
    return True


def _bracket_math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    r"""A display formula between a line `\[` and a line `\]`, blank lines allowed inside."""
    first = state.bMarks[start] + state.tShift[start]
    if state.sCount[start] - state.blkIndent >= 4:
        return False
    if state.src[first : state.eMarks[start]].strip() != "\\[":
        return False
    line = start + 1
    while line < end:
        text = state.src[state.bMarks[line] + state.tShift[line] : state.eMarks[line]].strip()
        if text == "\\]":
            break
        line += 1
    else:
        return False  # never closed: the lines stay text
    if silent:
        return True
    token = state.push("math_bracket_block", "math", 0)
    token.block = True
    token.content = state.getLines(start + 1, line, state.blkIndent, False)
    token.map = [start, line + 1]
    state.line = line + 1
    return True


def _footnote_ref(state: StateInline, silent: bool) -> bool:
    """`[^label]` where a footnote is cited. Shown as its label whether or not the definition
    has arrived: a block must render the same wherever the stream that shows it started."""
    if not state.src.startswith("[^", state.pos):
        return False
    match = _FOOTNOTE_LABEL_RE.match(state.src, state.pos, state.posMax)
    if match is None:
        return False
    if not silent:
        token = state.push("footnote_ref", "sup", 0)
        token.meta = {"label": match.group(1)}
    state.pos = match.end()
    return True


def _footnote_def(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """`[^label]: text` at the start of a line, continued by the indented lines after it."""
    first = state.bMarks[start] + state.tShift[start]
    if state.sCount[start] - state.blkIndent >= 4:
        return False
    match = _FOOTNOTE_LABEL_RE.match(state.src, first, state.eMarks[start])
    if match is None or state.src[match.end() : match.end() + 1] != ":":
        return False
    if silent:
        return True
    line = start + 1
    while line < end and not state.isEmpty(line) and state.sCount[line] > state.blkIndent:
        line += 1
    body = state.src[match.end() + 1 : state.eMarks[start]].strip()
    rest = state.getLines(start + 1, line, state.blkIndent, False).strip()
    token = state.push("footnote_def_open", "div", 1)
    token.meta = {"label": match.group(1)}
    token.map = [start, line]
    inline = state.push("inline", "", 0)
    inline.content = f"{body}\n{rest}".strip()
    inline.map = [start, line]
    inline.children = []
    state.push("footnote_def_close", "div", -1)
    state.line = line
    return True


def _render_footnote_ref(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return f'<sup class="footnote-ref">{escapeHtml(tokens[idx].meta["label"])}</sup>'


def _render_footnote_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    label = escapeHtml(tokens[idx].meta["label"])
    return f'<div class="footnote"><sup class="footnote-label">{label}</sup> '


def _render_footnote_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return "</div>\n"


def _build_markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    # `$5 and $10` stays text: no space inside the dollars, no digit right after the closing one.
    md.use(
        dollarmath_plugin,
        allow_labels=False,
        allow_space=False,
        allow_digits=False,
        double_inline=True,
    )
    md.use(tasklists_plugin)
    md.inline.ruler.before("escape", "math_bracket", _bracket_math_inline)
    md.block.ruler.before("fence", "math_bracket_block", _bracket_math_block)
    md.inline.ruler.before("link", "footnote_ref", _footnote_ref)
    md.block.ruler.before("reference", "footnote_def", _footnote_def)
    for kind in ("math_inline", "math_inline_double", "math_block", "math_bracket_inline"):
        md.add_render_rule(kind, _render_math_token)
    md.add_render_rule("math_bracket_block", _render_math_token)
    md.add_render_rule("math_block_label", _render_math_token)
    md.add_render_rule("footnote_ref", _render_footnote_ref)
    md.add_render_rule("footnote_def_open", _render_footnote_open)
    md.add_render_rule("footnote_def_close", _render_footnote_close)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_code_block)
    md.add_render_rule("image", _render_image)
    md.add_render_rule("th_open", _render_cell_open)
    md.add_render_rule("td_open", _render_cell_open)
    return md


# Built once: compiling the rule chains per call would dominate short answers. render()
# keeps all parse state in a fresh StateCore, so concurrent calls can share it.
_MD = _build_markdown()


# --- Blocks ---------------------------------------------------------------------------------

_FENCE_OPEN_RE = re.compile(r"( {0,3})(`{3,}|~{3,})([^\n]*)")
_ATX_HEADING_RE = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")
_LIST_ITEM_RE = re.compile(r" {0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_LIST_ITEM_PREFIX_RE = re.compile(r"(?:[-*+]|\d{1,9}[.)]?)")
_MATH_FENCES = {"$$": "$$", "\\[": "\\]"}
_REFERENCE_DEFINITION_RE = re.compile(r"^ {0,3}\[[^\]\n]+\]:", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Block:
    """Characters [start, end) of a document: one or more top-level markdown blocks that
    render the same alone as in their place."""

    start: int
    end: int
    text: str


class BlockSplitter:
    """Cuts markdown into `Block`s as its text arrives, in any pieces.

    A block closes at a blank line (a list waits for the next line: an indented line or another
    item continues it), after an ATX heading, after a closing code fence, and before a heading
    or a code fence that starts a line. Inside a fence or a display formula nothing closes.
    Decisions depend only on whole lines (and, for a list, on the start of the next line), so
    any way of cutting the same text into pieces gives the same blocks: the page's render of a
    partial answer, a stream that starts mid-answer at a block boundary, and the final render
    all agree."""

    def __init__(self, start: int = 0) -> None:
        self.start = start  # offset of the open block
        self._lines: list[str] = []  # its complete lines, each ending in "\n"
        self._size = 0  # characters in _lines
        self._partial = ""  # the line being written
        self._fence: tuple[str, int] | None = None  # (character, length) of an open fence
        self._math: str | None = None  # the line that closes an open display formula
        self._listy = False  # the open block holds a list item
        self._after_blank = False  # a list block that has met blank lines
        self._has_text = False  # the open block holds a non-blank line

    @property
    def offset(self) -> int:
        """The end of the text fed so far."""
        return self.start + self._size + len(self._partial)

    @property
    def open_text(self) -> str:
        return "".join(self._lines) + self._partial

    def code_tail(self) -> tuple[str, str] | None:
        """(language, code so far) when the open block is a fenced code block whose opening
        line is complete, so that a page can show it as a code box before it closes."""
        if self._fence is None:
            return None
        for index, line in enumerate(self._lines):
            if line.strip():
                match = _FENCE_OPEN_RE.match(line)
                if match is None:
                    return None
                return _fence_lang(match.group(3)), "".join(
                    self._lines[index + 1 :]
                ) + self._partial
        return None

    def feed(self, text: str) -> list[Block]:
        closed: list[Block] = []
        pieces = text.split("\n")
        for piece in pieces[:-1]:
            line, self._partial = self._partial + piece + "\n", ""
            self._line(line, closed)
        self._partial += pieces[-1]
        if self._after_blank and self._partial and self._continues_list(self._partial) is False:
            self._close(closed)
        return closed

    def finish(self) -> list[Block]:
        """The open block, closed because the document ended."""
        closed: list[Block] = []
        if self._partial:
            self._lines.append(self._partial)
            self._size += len(self._partial)
            self._partial = ""
        self._close(closed, force=True)
        return closed

    def _line(self, line: str, closed: list[Block]) -> None:
        if self._fence is not None:
            self._append(line)
            char, length = self._fence
            body = line.strip()
            indent = len(line) - len(line.lstrip(" "))
            if indent <= 3 and len(body) >= length and body == char * len(body):
                self._fence = None
                self._close(closed)
            return
        if self._math is not None:
            self._append(line)
            if line.strip() == self._math or (self._math == "$$" and line.rstrip().endswith("$$")):
                self._math = None
            return
        if not line.strip():
            self._append(line)
            if self._has_text:
                if self._listy:
                    self._after_blank = True
                else:
                    self._close(closed)
            return
        if self._after_blank:
            if self._continues_list(line):
                self._after_blank = False
            else:
                self._close(closed)
        indent_ok = not self._listy or not line.startswith(" ")
        fence = _FENCE_OPEN_RE.match(line) if indent_ok else None
        if fence is not None and fence.group(2)[0] == "`" and "`" in fence.group(3):
            fence = None  # a backtick fence's info string has no backticks: this is inline code
        heading = indent_ok and _ATX_HEADING_RE.match(line) is not None
        if (fence is not None or heading) and self._has_text:
            self._close(closed)
        if fence is not None:
            self._fence = (fence.group(2)[0], len(fence.group(2)))
        elif _LIST_ITEM_RE.match(line):
            self._listy = True
        else:
            opener = line.strip()
            if opener in _MATH_FENCES or (opener.startswith("$$") and "$$" not in opener[2:]):
                self._math = _MATH_FENCES["$$" if opener.startswith("$$") else opener]
        self._append(line)
        self._has_text = True
        if heading:
            self._close(closed)

    @staticmethod
    def _continues_list(line: str) -> bool | None:
        """Whether a line after blank lines continues a list: True or False once its start
        says so, None while it could still go either way (a partial line)."""
        if not line.strip():
            return None
        if line[0] in " \t":
            return True
        if _LIST_ITEM_RE.match(line):
            return True
        if line.endswith("\n"):
            return False
        return None if _LIST_ITEM_PREFIX_RE.fullmatch(line) else False

    def _append(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line)

    def _close(self, closed: list[Block], *, force: bool = False) -> None:
        if not self._has_text and not force:
            return  # blank lines only: they lead the next block
        if self._size:
            closed.append(Block(self.start, self.start + self._size, "".join(self._lines)))
        self.start += self._size
        self._lines, self._size = [], 0
        self._fence = self._math = None
        self._listy = self._after_blank = self._has_text = False


def _fence_lang(info: str) -> str:
    """A fence's language: the first word of its info string, parsed as markdown-it's own fence
    rule does (CommonMark whitespace, backslash escapes and entities resolved)."""
    info = mdTrim(unescapeAll(info)) if info else ""
    return MD_TRIM_RE.split(info, maxsplit=1)[0] if info else ""


def has_reference_definitions(text: str) -> bool:
    """Whether a text may define link references ("[1]: https://…"), which a block before the
    definition can only use once the whole text is known."""
    return _REFERENCE_DEFINITION_RE.search(text) is not None


def split_blocks(text: str) -> list[Block]:
    splitter = BlockSplitter()
    return splitter.feed(text) + splitter.finish()


def partial_answer(text: str) -> StreamUpdate:
    """A partial answer as its stream shows it (for a page that loads mid-answer): the blocks
    closed so far, rendered, and the open one. Its stream resumes at `end`."""
    renderer = StreamRenderer()
    update = renderer.feed(text)
    if update is None:
        update = renderer._current(mark_safe(""), 0)
    return update


def _render_block(text: str, env: EnvType) -> str:
    return _CLEANER.clean(_MD.render(text, env))


@dataclass(frozen=True, slots=True)
class Citation:
    """A citation marker: after character `at` of the text, the numbers of the sources it
    cites (1-based, as the list of sources beside the answer numbers them)."""

    at: int
    sources: tuple[int, ...]


# Citations are marked in the text by one private-use character each before it is rendered,
# and each mark becomes its marker in the sanitised HTML: one character, so that no tokenizer
# (markdown-it's, a Pygments lexer's) can split it. Characters of that range already in the
# text become U+FFFD (one for one, so offsets hold).
MAX_CITATIONS = 500
_MARK_BASE = 0xE000
_MARKS_RE = re.compile(f"[{chr(_MARK_BASE)}-{chr(_MARK_BASE + MAX_CITATIONS - 1)}]")
_ANCHOR_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,80}")


def render_markdown(
    text: str, citations: Sequence[Citation] = (), *, anchor: str = ""
) -> SafeString:
    """Sanitised HTML for markdown from an untrusted source (model answers, mostly): its blocks,
    each rendered alone, as a stream renders them. `citations` (with the `anchor` their links
    point under: `#<anchor>-source-<n>`) puts numbered markers at their offsets; a stream,
    which has none yet, shows the text without them."""
    if not text:
        return mark_safe("")
    marks = _citations(text, citations, anchor)
    if marks:
        text = _MARKS_RE.sub("\ufffd", text)
        pieces: list[str] = []
        position = 0
        for index in sorted(range(len(marks)), key=lambda i: marks[i].at):
            at = marks[index].at
            pieces += [text[position:at], chr(_MARK_BASE + index)]
            position = at
        text = "".join(pieces) + text[position:]
    env: EnvType = {}
    if has_reference_definitions(text):
        # A link may cite a definition further down ("[x][1]" … "[1]: https://…"): learn them
        # all first. A stream learns each as its block closes, so there a forward reference
        # shows as text until the answer ends (the one case where the end changes a block).
        _MD.parse(text, env)
    html = "".join(_render_block(block.text, env) for block in split_blocks(text))
    if marks:
        # After the sanitiser: the markers are made here from numbers alone. A mark that
        # ended up somewhere its marker cannot go (a link's URL) is gone, never shown.
        html = _MARKS_RE.sub(lambda m: _marker(marks[ord(m[0]) - _MARK_BASE], anchor), html)
    return mark_safe(html)


def _citations(text: str, citations: Sequence[Citation], anchor: str) -> list[Citation]:
    if not citations or not _ANCHOR_RE.fullmatch(anchor):
        return []
    kept = []
    for citation in citations[:MAX_CITATIONS]:
        at = citation.at
        if type(at) is not int or not 0 <= at <= len(text):
            continue
        # A marker that would start a line could turn a heading or a list into a paragraph:
        # it goes at the end of the line before.
        while at > 0 and text[at - 1] in "\r\n":
            at -= 1
        numbers = tuple(n for n in citation.sources if type(n) is int and 0 < n <= 10_000)
        if numbers:
            kept.append(Citation(at, numbers))
    return kept


def _marker(citation: Citation, anchor: str) -> str:
    links = ", ".join(
        f'<a href="#{anchor}-source-{n}" aria-label="Source {n}">{n}</a>' for n in citation.sources
    )
    return f'<sup class="cite">[{links}]</sup>'


@dataclass(slots=True)
class StreamUpdate:
    """What a stream has to show after a piece of text: the HTML of the blocks that closed
    (for characters [start, end)), and the open block, as text or as a code box."""

    html: SafeString
    start: int
    end: int
    tail: str
    code_lang: str | None


class StreamRenderer:
    """An answer's HTML block by block as its text arrives: each block is rendered once, when
    it closes (linear in the answer's length, however many frames it comes in)."""

    def __init__(self, start: int = 0) -> None:
        self._splitter = BlockSplitter(start)
        self._env: EnvType = {}
        self._code = False

    @property
    def block_start(self) -> int:
        return self._splitter.start

    @property
    def offset(self) -> int:
        return self._splitter.offset

    @property
    def pending(self) -> int:
        """Characters of the open block: what rendering it will cost, roughly."""
        return self._splitter.offset - self._splitter.start

    def feed(self, text: str) -> StreamUpdate | None:
        """An update when blocks closed or the open block became a code box, else None (the
        piece only adds to the open block's text)."""
        return self._update(self._splitter.feed(text))

    def finish(self) -> StreamUpdate | None:
        return self._update(self._splitter.finish())

    def _update(self, closed: list[Block]) -> StreamUpdate | None:
        code = self._splitter.code_tail() is not None
        if not closed and code == self._code:
            return None
        self._code = code
        html = "".join(_render_block(block.text, self._env) for block in closed)
        start = closed[0].start if closed else self.block_start
        return self._current(mark_safe(html), start)

    def _current(self, html: SafeString, start: int) -> StreamUpdate:
        code = self._splitter.code_tail()
        if code is not None:
            lang, tail = code
            return StreamUpdate(html, start, self.block_start, tail, lang[:MAX_LANG_LABEL_CHARS])
        return StreamUpdate(html, start, self.block_start, self._splitter.open_text, None)


def render_plain(text: str) -> SafeString:
    """Escaped text shown verbatim (user input). Newlines are kept as characters: the
    container is `white-space: pre-wrap`, so no `<br>` is needed."""
    # django's escape() always escapes, even an already-"safe" string, and returns a
    # SafeString: a plain str is fine here since escaping leaves no markup at all.
    return escape(text)


def render_spans(items: Iterable[tuple[str, str]], prefix: str) -> SafeString:
    """`<span class="{prefix}{name}">{text}</span>` for each (name, text), both escaped (as
    Django's `escape` does: `html.escape`, without its lazy-string checks on every argument,
    which made a template loop of these ~a quarter of an answer's render)."""
    return SafeString(
        "".join(
            f'<span class="{escape_text(prefix + name)}">{escape_text(text)}</span>'
            for name, text in items
        )
    )


def render_marked(text: str, start: str, end: str) -> SafeString:
    """Escaped text in which the spans between `start` and `end` (characters a search engine
    put around matched words) become <mark>: the only markup added, after escaping."""
    cleaned = escape(text)
    return mark_safe(cleaned.replace(escape(start), "<mark>").replace(escape(end), "</mark>"))


def answer_html(
    text: str,
    cached_html: str,
    cached_version: int,
    citations: Sequence[Citation] = (),
    *,
    anchor: str = "",
) -> SafeString:
    """An answer's HTML: the copy rendered (by `render_markdown`) when the answer finished, if
    it was made by this version of the renderer, else a fresh rendering.

    Rendering costs ~3 ms per 2 KB answer and ~150 ms per 100 KB, so history pages serve the
    stored copy; a renderer change (a sanitiser fix) bumps RENDERER_VERSION and stale copies
    are re-rendered instead of trusted.
    """
    if cached_html and cached_version == RENDERER_VERSION:
        return mark_safe(cached_html)
    return render_markdown(text, citations, anchor=anchor)
