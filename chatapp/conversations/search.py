"""Search a person's conversations (docs/ARCHITECTURE.md, "Search"): titles and the text of
every message on every branch, with each engine's own index (migration 0010: SQLite FTS5,
PostgreSQL tsvector + GIN).

A query is read once, here, the way people expect a search box to work (Google's and
PostgreSQL's `websearch_to_tsquery`): words must all appear, "quoted words" as a phrase, -word
leaves out what has it, OR between two words takes either. It becomes an FTS5 expression on
SQLite and the same words, normalised, for `websearch_to_tsquery` on PostgreSQL, so both
engines answer the same question. Nothing a person types reaches either engine's syntax
unquoted: a hostile query is an empty result or a clear message, never an error.

Results are one per conversation, its best hit first: the message (or title) that matched
best, with a snippet whose matched words are marked, and the conversation's date.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection
from django.utils.safestring import SafeString

from chatapp import rendering
from chatapp.core.errors import ServiceError

from .models import Conversation

if TYPE_CHECKING:
    from django.contrib.auth.models import User

QUERY_MAX_CHARS = 300
QUERY_MAX_TERMS = 16
RESULTS_PER_PAGE = 20
# The most results one search pages through: far beyond what anyone reads, and it bounds
# OFFSET.
RESULTS_MAX = 500

# Marks around matched words in a snippet: private-use characters that no text is expected to
# hold (they are removed from it first), turned into <mark> after escaping.
_OPEN, _CLOSE = "\ue000", "\ue001"
_WORD = re.compile(r"\w+", re.UNICODE)


class BadQuery(ServiceError):
    """A query that cannot be searched for; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Term:
    words: tuple[str, ...]  # one word, or a phrase


@dataclass(frozen=True, slots=True)
class Query:
    """What to look for: every group must match (a group is one term, or terms joined by OR),
    and none of `without`."""

    groups: tuple[tuple[Term, ...], ...]
    without: tuple[Term, ...] = ()

    @property
    def words(self) -> list[str]:
        """The words to mark where a hit is shown."""
        return [w for group in self.groups for term in group for w in term.words]


def parse(raw: str) -> Query:
    """Read a search box's text. Raises BadQuery for one too long, or with nothing to find."""
    if len(raw) > QUERY_MAX_CHARS:
        raise BadQuery(
            f"The search is {len(raw):,} characters; search for at most {QUERY_MAX_CHARS}."
        )
    text = raw.replace(_OPEN, " ").replace(_CLOSE, " ")
    items: list[tuple[bool, Term] | str] = []  # (negated, term), or "OR"
    position = 0
    pattern = re.compile(r'\s*(-?)(?:"([^"]*)"?|(\S+))')
    while position < len(text):
        match = pattern.match(text, position)
        if match is None:
            break
        position = match.end()
        negated, phrase, bare = match.group(1) == "-", match.group(2), match.group(3)
        if phrase is None and bare is not None and bare.upper() == "OR" and not negated:
            items.append("OR")
            continue
        source = phrase if phrase is not None else (bare or "")
        words = tuple(w.casefold() for w in _WORD.findall(source.replace('"', " ")))
        if words:
            items.append((negated, Term(words)))
    groups: list[list[Term]] = []
    without: list[Term] = []
    joining = False
    for item in items:
        if item == "OR":
            joining = bool(groups)
            continue
        negated, term = item  # type: ignore[misc]
        if negated:
            without.append(term)
        elif joining and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        joining = False
    terms = sum(len(g) for g in groups) + len(without)
    if terms > QUERY_MAX_TERMS:
        raise BadQuery(f"The search has {terms} terms; use at most {QUERY_MAX_TERMS}.")
    if not groups:
        raise BadQuery(
            "Type a word to look for (a word after a minus is only left out)."
            if without
            else "Type a word to look for."
        )
    return Query(tuple(tuple(g) for g in groups), tuple(without))


def _fts5(query: Query) -> str:
    """The FTS5 expression of a query: every word quoted, the precedence written out."""

    def term(t: Term) -> str:
        return '"' + " ".join(w.replace('"', '""') for w in t.words) + '"'

    groups = [
        term(g[0]) if len(g) == 1 else "(" + " OR ".join(term(t) for t in g) + ")"
        for g in query.groups
    ]
    expression = " AND ".join(groups)
    for t in query.without:
        expression = f"({expression}) NOT {term(t)}"
    return expression


def _websearch(query: Query) -> str:
    """The same query as `websearch_to_tsquery` reads it."""

    def term(t: Term) -> str:
        return t.words[0] if len(t.words) == 1 else '"' + " ".join(t.words) + '"'

    parts = [" or ".join(term(t) for t in g) for g in query.groups]
    parts += ["-" + term(t) for t in query.without]
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Hit:
    conversation_id: uuid.UUID
    title: str
    when: datetime
    # The message that matched best, or None when only the title did.
    message_id: uuid.UUID | None
    snippet: SafeString
    archived: bool = False


@dataclass(frozen=True, slots=True)
class Results:
    hits: list[Hit]
    query: Query | None
    # The offset of the next page, or None.
    more: int | None = None
    words: list[str] = field(default_factory=list)


def search(*, owner: User, raw: str, offset: int = 0) -> Results:
    """The person's conversations that match `raw`, best first, a page at a time. Raises
    BadQuery (its message says why) for a query that cannot be searched for."""
    query = parse(raw)
    offset = max(0, min(offset, RESULTS_MAX))
    limit = min(RESULTS_PER_PAGE, RESULTS_MAX - offset)
    if limit <= 0:
        return Results(hits=[], query=query, words=query.words)
    if connection.vendor == "postgresql":
        best, snippets = _postgresql(owner, query, offset, limit + 1)
    else:
        best, snippets = _sqlite(owner, query, offset, limit + 1)
    more = offset + limit if len(best) > limit and offset + limit < RESULTS_MAX else None
    best = best[:limit]
    conversations = Conversation.objects.filter(owner=owner, pk__in=[cid for cid, _ in best]).only(
        "id", "title", "updated_at", "archived"
    )
    by_id = {c.pk: c for c in conversations}
    hits = []
    for conversation_id, ref in best:
        conversation = by_id.get(conversation_id)
        if conversation is None:
            continue  # deleted since: the index and the row are written together, but be safe
        message_id = None if ref == conversation_id else ref
        hits.append(
            Hit(
                conversation_id=conversation_id,
                title=conversation.title or "New chat",
                when=conversation.updated_at,
                message_id=message_id,
                snippet=_marked(snippets.get(ref, "")),
                archived=conversation.archived,
            )
        )
    return Results(hits=hits, query=query, more=more, words=query.words)


def _marked(snippet: str) -> SafeString:
    """A snippet as HTML: escaped, the engine's marks made <mark> (chatapp/rendering.py)."""
    return rendering.render_marked(snippet, _OPEN, _CLOSE)


# Relevance is ranked among the newest RANK_WINDOW matches at most. Finding matches is cheap
# and ranking them is not: a word in 98,785 of 100,000 messages is counted in 7 ms, ranked in
# 105 ms (bm25 on SQLite; ts_rank: 170 ms), the newest 5,000 of them in 10.5 ms; a frequent
# phrase costs about four times a word, hence 2,000 (S11). For a word that common, relevance
# says little anyway, and newer is the better guess.
RANK_WINDOW = 2000

_SQLITE_WINDOW = """
SELECT rowid FROM chatapp_search WHERE chatapp_search MATCH %s
ORDER BY rowid DESC LIMIT 1 OFFSET %s
"""

# bm25() only works in a query over the FTS table alone, hence the materialised CTE. The
# rowid bound is FTS5's own (indexed rows are numbered as they are written: newest last).
_SQLITE_BEST = """
WITH h AS MATERIALIZED (
    SELECT rowid AS rid, bm25(chatapp_search) AS score FROM chatapp_search
    WHERE chatapp_search MATCH %s AND rowid >= %s
)
SELECT cid, ref, rid FROM (
    SELECT r.conversation_id AS cid, r.ref AS ref, h.rid AS rid,
        MIN(CASE r.kind WHEN 't' THEN 2.0 * h.score ELSE h.score END) AS score
    FROM h JOIN chatapp_search_row r ON r.id = h.rid
    GROUP BY r.conversation_id
) ORDER BY score, cid LIMIT %s OFFSET %s
"""

# By rowid, which FTS5 looks up directly: joined by ref instead, the match ran over every
# matching row again (22 ms for a frequent word, 1 ms this way: S11).
_SQLITE_SNIPPETS = """
SELECT rowid, snippet(chatapp_search, 0, %s, %s, '…', 18) FROM chatapp_search
WHERE chatapp_search MATCH %s AND rowid IN ({rowids})
"""


def _sqlite(
    owner: User, query: Query, offset: int, limit: int
) -> tuple[list[tuple[uuid.UUID, uuid.UUID]], dict[uuid.UUID, str]]:
    # The owner's rows only, inside the index: `scope` holds "o<owner id>" (migration 0010).
    match = f'scope : "o{int(owner.pk)}" AND body : ({_fts5(query)})'
    with connection.cursor() as cursor:
        cursor.execute(_SQLITE_WINDOW, [match, RANK_WINDOW - 1])
        bound = cursor.fetchone()
        cursor.execute(_SQLITE_BEST, [match, bound[0] if bound else 0, limit, offset])
        rows = cursor.fetchall()
        if not rows:
            return [], {}
        best = [(uuid.UUID(cid), uuid.UUID(ref)) for cid, ref, _ in rows]
        refs = {rid: uuid.UUID(ref) for _, ref, rid in rows}
        sql = _SQLITE_SNIPPETS.format(rowids=", ".join(["%s"] * len(refs)))
        cursor.execute(sql, [_OPEN, _CLOSE, match, *refs])
        snippets = {refs[rid]: text for rid, text in cursor.fetchall()}
    return best, snippets


# The query is written out each time rather than in a CTE, so that the planner sees it (the
# text function is IMMUTABLE: folded at planning) and estimates how many rows match: for a
# frequent word it walks the newest messages by the `chatapp_message_recent` index and stops
# after RANK_WINDOW matches (12 ms for a word in 107,629 rows, against 170 ms ranking them
# all: S11); for a rare one it reads the GIN index.
_TSQUERY = "websearch_to_tsquery('simple', chatapp_search_text(%s))"
_POSTGRESQL_BEST = f"""
WITH window_ AS MATERIALIZED (
    SELECT m.conversation_id AS cid, m.id AS ref, ts_rank(m.search, {_TSQUERY}) AS score
    FROM chatapp_message m JOIN chatapp_conversation c ON c.id = m.conversation_id
    WHERE c.owner_id = %s AND m.search @@ {_TSQUERY}
    ORDER BY m.created_at DESC LIMIT %s
),
hits AS (
    SELECT cid, ref, score FROM window_
    UNION ALL
    SELECT c.id, c.id, 2.0 * ts_rank(c.search, {_TSQUERY})
    FROM chatapp_conversation c WHERE c.owner_id = %s AND c.search @@ {_TSQUERY}
),
best AS (SELECT DISTINCT ON (cid) cid, ref, score FROM hits ORDER BY cid, score DESC, ref)
SELECT cid, ref FROM best ORDER BY score DESC, cid LIMIT %s OFFSET %s
"""

_POSTGRESQL_TEXTS = """
SELECT id, left(content, %s) FROM chatapp_message WHERE id = ANY(%s)
UNION ALL SELECT id, title FROM chatapp_conversation WHERE id = ANY(%s)
"""


def _postgresql(
    owner: User, query: Query, offset: int, limit: int
) -> tuple[list[tuple[uuid.UUID, uuid.UUID]], dict[uuid.UUID, str]]:
    words = _websearch(query)
    with connection.cursor() as cursor:
        cursor.execute(
            _POSTGRESQL_BEST,
            [words, owner.pk, words, RANK_WINDOW, words, owner.pk, words, limit, offset],
        )
        best = [(cid, ref) for cid, ref in cursor.fetchall()]
        if not best:
            return [], {}
        refs = [ref for _, ref in best]
        cursor.execute(_POSTGRESQL_TEXTS, [SNIPPET_SOURCE_CHARS, refs, refs])
        texts = {ref: text for ref, text in cursor.fetchall()}
    wanted = {_folded(w) for w in query.words}
    return best, {ref: _snippet(text, wanted) for ref, text in texts.items()}


# How much of a long message a snippet is looked for in (PostgreSQL; FTS5 makes its own).
SNIPPET_SOURCE_CHARS = 20_000
SNIPPET_WORDS = 18
_TOKEN = re.compile(r"\w+|\W+", re.UNICODE)


def _folded(word: str) -> str:
    """A word as the index compares it: lower case, without accents."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _snippet(text: str, wanted: set[str]) -> str:
    """About SNIPPET_WORDS words around the first matched one, the matched ones marked (as
    FTS5's snippet() does on SQLite)."""
    tokens = _TOKEN.findall(text)
    words = [i for i, t in enumerate(tokens) if t[:1].isalnum() or t[:1] == "_"]
    first = next((n for n, i in enumerate(words) if _folded(tokens[i]) in wanted), 0)
    start = max(0, first - SNIPPET_WORDS // 3)
    chosen = words[start : start + SNIPPET_WORDS]
    if not chosen:
        return ""
    pieces = []
    for i in range(chosen[0], chosen[-1] + 1):
        token = tokens[i]
        if i in chosen and _folded(token) in wanted:
            token = f"{_OPEN}{token}{_CLOSE}"
        pieces.append(token)
    prefix = "…" if chosen[0] > 0 else ""
    suffix = "…" if chosen[-1] < len(tokens) - 1 else ""
    return prefix + "".join(pieces).strip() + suffix


def words_in(raw: str) -> list[str]:
    """The words a query looks for (to mark them on the page a hit opens), or none."""
    try:
        return parse(raw).words
    except BadQuery:
        return []
