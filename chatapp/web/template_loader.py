"""The project's own templates, read without indentation and without the lines that hold
only control tags.

A line like `    {% if control.control == "checkbox" %}` prints its indentation and its newline
whatever the condition, and every line its indentation: in the settings panel's options (~25
controls, a dozen such lines each) and in every message's article, whitespace sent with every
page and fragment. The 5,000-message page crossed its 100 KB budget (bench S8: 100,093 bytes)
when the panel gained its tools; read this way it is 96,533, and the new-chat page 20,309 ->
18,811. The template is changed once, when it is read (the cached loader keeps the compiled
template), so rendering costs nothing more.

Only tags that print nothing are joined (`if`, `for`, `with`, `block`, comments…), and only
when nothing else is on the line: a line with markup keeps its newline, so two elements on
lines of their own are still apart, as the browser lays them out. Every template here is HTML
(no plain-text mail), and no `<pre>`, `<textarea>` or attribute value spans lines, where
indentation would be content.
"""

from __future__ import annotations

import re

from django.template import Origin
from django.template.loaders.filesystem import Loader as FilesystemLoader

_SILENT_TAGS = (
    "if|elif|else|endif|for|empty|endfor|with|endwith|block|endblock|extends|load"
    "|comment|endcomment"
)
_SILENT = rf"\{{%\s*(?:{_SILENT_TAGS})\b(?:[^%]|%(?!\}}))*%\}}|\{{#.*?#\}}"
_SILENT_LINE = re.compile(rf"^[ \t]*(?:(?:{_SILENT})[ \t]*)+\n", re.MULTILINE)
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)


def compact(source: str) -> str:
    """`source` with each line of only silent tags joined to the next, and no indentation."""
    return _SILENT_LINE.sub(lambda line: line.group(0).rstrip(), _INDENT.sub("", source))


class Loader(FilesystemLoader):
    def get_contents(self, origin: Origin) -> str:
        return compact(super().get_contents(origin))
