"""The project's templates are read without their lines of only control tags and without
indentation (chatapp/web/template_loader.py): whitespace that every page and fragment sent
for nothing. What a line of markup says, and the space between two elements on their own
lines, stay as they were."""

from __future__ import annotations

import re

import pytest
from django.template import engines
from django.urls import reverse

from chatapp.web.template_loader import compact


def test_a_line_of_only_control_tags_prints_nothing():
    source = (
        "<ul>\n"
        "  {% for item in items %}\n"
        "  {# one per item #}\n"
        "  {% if item %}{% with x=item %}\n"
        "  <li>{{ x }}</li>\n"
        "  {% endwith %}{% endif %}\n"
        "  {% endfor %}\n"
        "</ul>\n"
    )
    assert compact(source) == (
        "<ul>\n{% for item in items %}{# one per item #}{% if item %}{% with x=item %}"
        "<li>{{ x }}</li>\n{% endwith %}{% endif %}{% endfor %}</ul>\n"
    )
    template = engines["django"].from_string(compact(source))
    assert template.render({"items": ["a", "", "b"]}) == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"


@pytest.mark.parametrize(
    "line",
    [
        "  {% include 'x.html' %}\n",  # prints the included template
        "  {% url 'chat-home' %}\n",  # prints a link
        "  {{ value }}\n",
        "  {% if a %}<b>{% endif %}\n",  # markup on the line
        "  {% if a %} text\n",
    ],
)
def test_a_line_that_prints_keeps_its_newline(line):
    assert compact(line) == line.lstrip()


def test_elements_on_lines_of_their_own_stay_apart():
    source = "<p>\n    <code>a</code>\n    {% if b %}\n    <button>Remove</button>\n    {% endif %}\n</p>\n"
    html = engines["django"].from_string(compact(source)).render({"b": True})
    assert html == "<p>\n<code>a</code>\n<button>Remove</button>\n</p>\n"


@pytest.mark.django_db
def test_the_chat_page_sends_its_settings_without_blank_or_indented_lines(user_client):
    html = user_client.get(reverse("chat-home")).content.decode()
    options = re.search(
        r'<div id="settings-options".*?<div class="param-group".*?</div>\n</div>', html, re.S
    )
    assert options is not None
    lines = options.group(0).splitlines()
    assert len(lines) > 20
    assert [line for line in lines if not line.strip()] == []
    assert [line for line in lines if line != line.lstrip()] == []
