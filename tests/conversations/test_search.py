"""Search (chatapp/conversations/search.py) on the engine the suite runs on: SQLite's FTS5 in
the first pass, PostgreSQL's tsvector in the second. Queries read as people expect a search
box to (words, "phrases", -word, OR); hostile input is an empty result or a message naming
the limit, never an error; each person finds only their own; every branch is searched, an
answer once it is final; results are one per conversation with a marked, escaped snippet."""

from __future__ import annotations

import uuid

import pytest

from chatapp.conversations import search as search_module
from chatapp.conversations.search import QUERY_MAX_CHARS, BadQuery, Term, parse, search
from chatapp.models import Conversation, Message
from tests.conftest import add_message

pytestmark = pytest.mark.django_db


def chat(owner, title: str = "", *texts: str, **fields) -> Conversation:
    conversation = Conversation.objects.create(
        owner=owner, route="aimlapi", model="google/gemini-2.5-flash", title=title, **fields
    )
    for i, text in enumerate(texts):
        add_message(conversation, role="user" if i % 2 == 0 else "assistant", content=text)
    return conversation


def found(owner, raw: str) -> list[str]:
    return [hit.title for hit in search(owner=owner, raw=raw).hits]


# --- Reading a query -------------------------------------------------------------------------


def test_words_phrases_minus_and_or_are_read_as_a_search_box_reads_them():
    query = parse('Paris "eiffel tower" -London rome OR milan')
    assert query.groups == (
        (Term(("paris",)),),
        (Term(("eiffel", "tower")),),
        (Term(("rome",)), Term(("milan",))),
    )
    assert query.without == (Term(("london",)),)
    assert query.words == ["paris", "eiffel", "tower", "rome", "milan"]


@pytest.mark.parametrize(
    "raw",
    ["-only", "   ", '""', "- -", "OR", "%", "***", '"""'],
)
def test_a_query_with_nothing_to_look_for_says_so(raw):
    with pytest.raises(BadQuery) as caught:
        parse(raw)
    assert caught.value.message.startswith("Type a word to look for")


def test_a_query_that_is_too_long_or_has_too_many_terms_names_the_limit():
    with pytest.raises(BadQuery) as caught:
        parse("x" * (QUERY_MAX_CHARS + 1))
    assert f"at most {QUERY_MAX_CHARS}" in caught.value.message
    with pytest.raises(BadQuery) as caught:
        parse(" ".join(f"w{i}" for i in range(40)))
    assert "at most 16" in caught.value.message


# --- Finding ---------------------------------------------------------------------------------


def test_all_words_must_appear_in_a_title_or_a_message(user):
    chat(user, "Trip plans", "We fly to Paris on Monday", "Paris in spring is lovely")
    chat(user, "Recipes", "A Monday soup")
    assert found(user, "paris monday") == ["Trip plans"]
    assert found(user, "MONDAY") == ["Trip plans", "Recipes"] or sorted(found(user, "MONDAY")) == [
        "Recipes",
        "Trip plans",
    ]
    assert found(user, "recipes") == ["Recipes"]  # the title alone
    assert found(user, "berlin") == []


def test_quotes_match_a_phrase_and_minus_leaves_out(user):
    chat(user, "One", "the eiffel tower at night")
    chat(user, "Two", "a tower near eiffel street")
    assert found(user, '"eiffel tower"') == ["One"]
    assert found(user, "tower -night") == ["Two"]
    assert sorted(found(user, "night OR street")) == ["One", "Two"]


def test_accents_and_case_do_not_matter(user):
    chat(user, "Café", "Crème brûlée recipe")
    assert found(user, "creme brulee") == ["Café"]
    assert found(user, "CAFE") == ["Café"]


@pytest.mark.parametrize(
    "raw",
    [
        "NEAR(a b)",
        "a AND",
        "body:secret",
        "scope:o1",
        "^start",
        "word*",
        "(unbalanced",
        '"unterminated phrase',
        "100% sure",
        "under_score",
        "a'b",
        "';DROP TABLE chatapp_message;--",
        "\\x00",
        "\ue000marked\ue001",
        "🙂 emoji",
        "日本語",
        "&lt;script&gt;",
    ],
)
def test_hostile_or_odd_queries_are_answered_without_an_error(user, raw):
    chat(user, "Mine", "plain words here")
    try:
        results = search(owner=user, raw=raw)
    except BadQuery as exc:  # a message, never an engine error
        message = exc.message
        results = None
    else:
        message = ""
    assert results is not None or message


def test_an_fts_operator_typed_as_text_is_only_a_word(user):
    chat(user, "Operators", "a NEAR b and then")
    chat(user, "Other", "nothing at all")
    assert found(user, "NEAR") == ["Operators"]
    # No column filter: the words either side of a colon, as a phrase.
    assert found(user, "at:all") == ["Other"]
    assert found(user, "body:nothing") == []


def test_each_person_finds_only_their_own(user, other_user):
    chat(user, "Mine", "the shared secret word")
    chat(other_user, "Theirs", "the shared secret word")
    assert found(user, "secret") == ["Mine"]
    assert found(other_user, "secret") == ["Theirs"]


def test_every_branch_is_searched_and_the_hit_names_its_message(user):
    conversation = chat(user, "Branches", "question")
    question = Message.objects.get(conversation=conversation)
    old = add_message(conversation, role="assistant", content="an old version about zebras")
    new = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content="a new one"
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=new)
    (hit,) = search(owner=user, raw="zebras").hits
    assert hit.message_id == old.pk
    assert hit.conversation_id == conversation.pk


def test_an_answer_is_found_once_it_is_final_and_by_its_final_text(user):
    conversation = chat(user, "Streaming", "q")
    answer = add_message(conversation, role="assistant", status="streaming", content="half done")
    assert found(user, "half") == []  # checkpoints are not indexed
    Message.objects.filter(pk=answer.pk).update(status="complete", content="fully done now")
    assert found(user, "fully") == ["Streaming"]
    assert found(user, "half") == []


def test_deleted_messages_and_conversations_leave_the_index(user):
    conversation = chat(user, "Gone soon", "ephemeral words")
    Message.objects.filter(conversation=conversation).delete()
    assert found(user, "ephemeral") == []
    conversation.delete()
    assert found(user, "gone") == []


def test_a_renamed_conversation_is_found_by_its_new_title_only(user):
    conversation = chat(user, "Old name")
    Conversation.objects.filter(pk=conversation.pk).update(title="Fresh name")
    assert found(user, "fresh") == ["Fresh name"]
    assert found(user, "old") == []


def test_archived_conversations_are_found_and_say_so(user):
    chat(user, "Put away", "archived words", archived=True)
    (hit,) = search(owner=user, raw="archived").hits
    assert hit.archived


def test_results_are_one_per_conversation_with_a_marked_escaped_snippet(user):
    chat(user, "Markup", "<script>alert(1)</script> the needle is here", "a needle again")
    chat(user, "Other markup", "<b>bold</b> and a needle")
    hits = search(owner=user, raw="needle").hits
    assert sorted(hit.title for hit in hits) == ["Markup", "Other markup"]  # once each
    (hit,) = search(owner=user, raw="needle here").hits
    html = str(hit.snippet)
    assert "<script>" not in html
    assert "&lt;" in html  # escaped, then marked
    assert "alert(1)" in html
    assert "<mark>needle</mark>" in html


def test_results_come_a_page_at_a_time(user, monkeypatch):
    monkeypatch.setattr(search_module, "RESULTS_PER_PAGE", 3)
    for i in range(7):
        chat(user, f"Chat {i}", f"common word {uuid.uuid4().hex}")
    first = search(owner=user, raw="common")
    assert len(first.hits) == 3
    assert first.more == 3
    seen = [h.conversation_id for h in first.hits]
    offset = first.more
    while offset is not None:
        page = search(owner=user, raw="common", offset=offset)
        seen += [h.conversation_id for h in page.hits]
        offset = page.more
    assert len(seen) == len(set(seen)) == 7


def test_a_word_in_very_many_messages_is_ranked_among_the_newest_matches(user, monkeypatch):
    monkeypatch.setattr(search_module, "RANK_WINDOW", 3)
    for i in range(6):
        chat(user, f"Chat {i}", "everywhere")
    assert sorted(found(user, "everywhere")) == ["Chat 3", "Chat 4", "Chat 5"]


def test_function_names_arguments_and_results_are_found_once_the_results_are_sent(user):
    from chatapp.providers import functions

    conversation = chat(user, "Tools", "Weather?")
    call = {"id": "c1", "name": "get_weather", "arguments": '{"city": "Lausanne"}'}
    add_message(
        conversation,
        role="assistant",
        content="",
        provider_extras={functions.CALLS_KEY: [call]},
    )
    result = {"id": "c1", "name": "get_weather", "content": "drizzle"}
    add_message(
        conversation,
        role="user",
        content=functions.results_text([result], [call]),
        provider_extras={functions.RESULTS_KEY: [result]},
    )
    for words in ("get_weather", "Lausanne", "drizzle"):
        assert found(user, words) == ["Tools"], words
