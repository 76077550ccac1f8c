"""`{% url %}` builds the app's links as Django's `reverse` does, from a shape reversed once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.template import Context, Template
from django.urls import URLPattern, URLResolver, get_resolver, reverse, set_script_prefix
from django.urls.converters import IntConverter, UUIDConverter

from chatapp.web.templatetags.links import fast_reverse


def _named_patterns(
    patterns: list[Any], converters: dict[str, Any] | None = None
) -> Iterator[tuple[str, list[Any]]]:
    for entry in patterns:
        found = {**(converters or {}), **getattr(entry.pattern, "converters", {})}
        if isinstance(entry, URLResolver):
            if entry.namespace:  # the admin's: namespaced names go to Django
                continue
            yield from _named_patterns(entry.url_patterns, found)
        elif isinstance(entry, URLPattern) and entry.name:
            yield entry.name, list(found.values())


def _args(converters: list[Any], seed: int) -> list[Any] | None:
    args: list[Any] = []
    for converter in converters:
        if isinstance(converter, UUIDConverter):
            args.append(uuid.UUID(int=seed * 7919 + len(args)))
        elif isinstance(converter, IntConverter):
            args.append(seed * 31 + len(args))
        else:
            return None
    return args


APP_LINKS = [
    (name, converters)
    for name, converters in _named_patterns(get_resolver().url_patterns)
    if _args(converters, 1) is not None
]


def test_the_app_has_links_with_uuids_to_check():
    assert sum(1 for _, converters in APP_LINKS if converters) >= 10


@pytest.mark.parametrize(("name", "converters"), APP_LINKS, ids=[n for n, _ in APP_LINKS])
def test_every_link_of_uuids_and_ints_is_the_one_django_reverses(name, converters):
    for seed in (1, 2, 3):  # the first reverses the shape, the others fill it
        args = _args(converters, seed)
        assert args is not None
        assert fast_reverse(name, args) == reverse(name, args=args)


def test_a_script_prefix_is_kept_apart():
    message, conversation = uuid.uuid4(), uuid.uuid4()
    plain = fast_reverse("message-regenerate", [conversation, message])
    set_script_prefix("/chat/")
    try:
        prefixed = fast_reverse("message-regenerate", [conversation, message])
    finally:
        set_script_prefix("/")
    assert prefixed == "/chat" + str(plain)
    assert prefixed == f"/chat{reverse('message-regenerate', args=[conversation, message])}"


def test_other_arguments_are_left_to_django():
    assert fast_reverse("message-regenerate", ["a", "b"]) is None
    assert fast_reverse("healthz", [True]) is None


def test_the_template_tag_writes_the_same_links_escaped_and_otherwise():
    conversation, message = uuid.uuid4(), uuid.uuid4()
    template = Template(
        "{% url 'message-regenerate' c m %}|{% url 'chat-home' %}|"
        "{% url 'message-regenerate' c m as link %}{{ link }}|{% url 'login' %}?next={{ n }}"
    )
    got = template.render(Context({"c": conversation, "m": message, "n": "/a&b"}))
    regenerate = reverse("message-regenerate", args=[conversation, message])
    assert (
        got == f"{regenerate}|{reverse('chat-home')}|{regenerate}|{reverse('login')}?next=/a&amp;b"
    )
