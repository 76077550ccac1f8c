"""chatapp.rendering's blocks (docs/ARCHITECTURE.md, "Formatted while it streams"): a document
is cut into blocks the same way whatever pieces its text arrives in, a stream renders each
block once, and what it shows is exactly the final HTML; plus math, task lists and footnotes."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapp.rendering import (
    BlockSplitter,
    StreamRenderer,
    partial_answer,
    render_markdown,
    split_blocks,
)
from tests.test_rendering import XSS_PAYLOADS, assert_inert

# Lines that exercise every decision the splitter makes: paragraphs, blank lines, headings,
# lists (tight and loose, nested, ordered), fences of both kinds (with blank lines inside,
# indented, unclosed, longer closers), display math, quotes, tables, footnotes.
LINES = [
    "Some text with **bold** and `code`.",
    "",
    "   ",
    "# Heading",
    "## Sub heading",
    "- item",
    "* star item",
    "1. first",
    "12) twelfth",
    "  nested continuation",
    "    indented code",
    "```python",
    "```",
    "````",
    "~~~",
    "~~~ text",
    "   ```",
    "x = 1",
    "$$",
    "E = mc^2",
    "$$ x $$",
    "\\[",
    "\\]",
    "> quoted",
    "| a | b |",
    "|---|---|",
    "---",
    "===",
    "[^1]: a footnote",
    "[ref]: https://example.com",
    "Text with [^1] and [a link][ref].",
    "- [ ] a task",
    "- [x] done",
]

documents = st.lists(st.sampled_from(LINES), max_size=40).map("\n".join)


def cut(text: str, rng: random.Random) -> list[str]:
    """The text in random pieces, as a stream might bring it."""
    if len(text) < 2:
        return [text]
    points = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 30))))
    edges = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


@given(documents, st.integers(0, 2**32))
@settings(max_examples=300, deadline=None)
def test_any_pieces_give_the_same_blocks_and_they_cover_the_text(text, seed):
    whole = split_blocks(text)
    assert "".join(block.text for block in whole) == text
    assert [b.start for b in whole[1:]] == [b.end for b in whole[:-1]]
    splitter = BlockSplitter()
    pieces: list = []
    for piece in cut(text, random.Random(seed)):
        pieces += splitter.feed(piece)
    assert pieces + splitter.finish() == whole


@given(documents, st.integers(0, 2**32))
@settings(max_examples=200, deadline=None)
def test_a_stream_shows_exactly_the_final_html(text, seed):
    renderer = StreamRenderer()
    shown = ""
    for piece in cut(text, random.Random(seed)):
        update = renderer.feed(piece)
        if update is not None:
            shown += update.html
    end = renderer.finish()
    if end is not None:
        shown += end.html
    if "[ref]:" in text and text.rfind("[ref]:") > text.find("[ref]"):
        return  # "[ref]" before a definition: the one case the end may change (rendering.py)
    assert shown == render_markdown(text)


@given(documents, st.integers(0, 2**32))
@settings(max_examples=100, deadline=None)
def test_a_stream_started_at_a_block_boundary_renders_the_same_blocks(text, seed):
    """A reconnect resumes at the page's open block: from there, the same blocks follow."""
    whole = split_blocks(text)
    if len(whole) < 2:
        return
    start = whole[len(whole) // 2].start
    splitter = BlockSplitter(start)
    resumed: list = []
    for piece in cut(text[start:], random.Random(seed)):
        resumed += splitter.feed(piece)
    assert resumed + splitter.finish() == [b for b in whole if b.start >= start]


@pytest.mark.parametrize(
    ("text", "blocks"),
    [
        ("One.\n\nTwo.", ["One.\n\n", "Two."]),
        ("# Title\nText", ["# Title\n", "Text"]),
        (
            "Text\n```\ncode\n\n\nmore\n```\nAfter",
            ["Text\n", "```\ncode\n\n\nmore\n```\n", "After"],
        ),
        # A loose list stays one list (its items keep their paragraphs).
        ("- a\n\n- b\n\n  cont\n\nafter", ["- a\n\n- b\n\n  cont\n\n", "after"]),
        ("$$\na\n\nb\n$$\n\nz", ["$$\na\n\nb\n$$\n\n", "z"]),
        ("\\[\nx\n\n\\]\nz", ["\\[\nx\n\n\\]\nz"]),
        ("Setext\n---\n\nnext", ["Setext\n---\n\n", "next"]),
        ("\n\nLeading blanks", ["\n\nLeading blanks"]),
    ],
)
def test_where_blocks_end(text, blocks):
    assert [block.text for block in split_blocks(text)] == blocks


def test_a_list_closes_as_soon_as_the_next_line_shows_it_is_not_a_list():
    splitter = BlockSplitter()
    assert splitter.feed("- a\n- b\n\n") == []
    assert splitter.feed("1") == []  # "1." could still start an item
    closed = splitter.feed("0 apples")
    assert [block.text for block in closed] == ["- a\n- b\n\n"]


def test_an_open_fence_is_a_code_box_with_its_language_and_code_so_far():
    renderer = StreamRenderer()
    first = renderer.feed("Intro.\n\n```py")
    assert first is not None
    assert first.html == "<p>Intro.</p>\n"
    assert (first.tail, first.code_lang) == ("```py", None)  # the fence line is not complete
    update = renderer.feed('thon title="x"\nprint(1)\n')
    assert update is not None
    assert (update.html, update.tail, update.code_lang) == ("", "print(1)\n", "python")
    assert renderer.feed("x = 2") is None  # more code: only text for the box
    closed = renderer.feed("\n```\n")
    assert closed is not None
    assert closed.html.startswith('<div class="code-block"><div class="code-lang">python</div>')
    assert (closed.tail, closed.code_lang, closed.end) == ("", None, renderer.offset)


def test_a_page_mid_answer_shows_the_closed_blocks_and_resumes_at_the_open_one():
    view = partial_answer("Done para.\n\nStill writ")
    assert view.html == "<p>Done para.</p>\n"
    assert (view.end, view.tail, view.code_lang) == (len("Done para.\n\n"), "Still writ", None)
    assert partial_answer("").html == ""


def test_forward_references_resolve_in_the_final_html():
    html = render_markdown("See [the docs][1].\n\n[1]: https://example.com/docs")
    assert '<a href="https://example.com/docs"' in html


@pytest.mark.parametrize("payload", XSS_PAYLOADS.values(), ids=XSS_PAYLOADS.keys())
def test_hostile_text_streamed_in_pieces_stays_inert(payload):
    renderer = StreamRenderer()
    rng = random.Random(len(payload))
    for piece in cut(payload[:20_000], rng):
        update = renderer.feed(piece)
        if update is not None:
            assert_inert(update.html)
    end = renderer.finish()
    if end is not None:
        assert_inert(end.html)


# --- math, task lists, footnotes --------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Inline $E=mc^2$ here.",
        "Display:\n\n$$\n\\int_0^1 x\\,dx\n$$",
        "Brackets \\(a+b\\) inline.",
        "Display \\[x^2\\] in text.",
        "\\[\n\\frac{1}{2}\n\\]",
        "Double $$\\sum_{i=1}^n i$$ inline.",
    ],
)
def test_tex_becomes_mathml(text):
    html = render_markdown(text)
    assert "<math" in html
    assert "$" not in html.replace("$$", "")
    assert "\\" not in html  # every command became MathML, no backslash shown as text


def test_backslashes_in_formulas_are_kept():
    html = render_markdown("$\\int_0^1 x\\,dx$ and $a \\cdot b$")
    assert "∫" in html
    assert '<mspace width="0.167em">' in html  # "\," read as a thin space, not dropped
    assert "<mo>·</mo>" in html  # "\cdot"


def test_display_math_is_a_block():
    assert '<math display="block">' in render_markdown("$$\nx\n$$")
    assert '<math display="inline">' in render_markdown("a $x$ b")


@pytest.mark.parametrize(
    "text",
    ["It costs $5 and $10.", "Between $5 and $10 a day", "$ 5 $", "USD$20 or $30"],
)
def test_prices_stay_text(text):
    html = render_markdown(text)
    assert "<math" not in html
    assert "$" in html


def test_tex_it_cannot_read_is_shown_as_its_source():
    html = render_markdown("Broken $\\begin{matrix a$ here.")
    assert '<code class="math-source">$\\begin{matrix a$</code>' in html


def test_a_formula_over_the_limit_is_shown_as_its_source():
    from chatapp.rendering import MAX_MATH_CHARS

    html = render_markdown("$" + "x" * (MAX_MATH_CHARS + 1) + "$")
    assert "<math" not in html
    assert 'class="math-source"' in html


def test_task_lists_have_disabled_checkboxes():
    html = render_markdown("- [ ] todo\n- [x] done")
    assert '<ul class="contains-task-list">' in html
    assert html.count('type="checkbox"') == 2
    assert html.count('disabled="disabled"') == 2
    assert html.count('checked="checked"') == 1


def test_footnotes_show_their_labels_where_cited_and_defined():
    html = render_markdown("A claim[^1].\n\n[^1]: The source.")
    assert '<sup class="footnote-ref">1</sup>' in html
    assert '<div class="footnote"><sup class="footnote-label">1</sup> The source.</div>' in html


def test_strikethrough():
    assert "<s>gone</s>" in render_markdown("~~gone~~")
