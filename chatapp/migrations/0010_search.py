"""Full-text search over a person's conversations, with each engine's own index
(docs/ARCHITECTURE.md, "Search"; queries in chatapp/conversations/search.py).

SQLite: an FTS5 table holding each finished message's text and each title, kept in step by
triggers. Not an external-content table: those address rows by rowid, and a table keyed by a
UUID (as messages are) has an implicit rowid that VACUUM may renumber, which would silently
point the index at the wrong rows. `chatapp_search_row` gives every indexed message or title a
stable integer key instead. The `scope` column holds the owner ("o<id>"), so that a search
is narrowed to one person's rows inside the index.

PostgreSQL: a `tsvector` column with a GIN index on each table: on messages set by a trigger
(so that a streaming answer's checkpoints do not re-index it every second), on conversations
generated from the title.

Both index a message once it is final (not while pending or streaming), the first 200,000
characters of it (PostgreSQL refuses a tsvector over 1 MB), with no stemming (the same words
match on both engines, in any language).
"""

from django.db import DatabaseError, migrations, transaction

INDEXED_CHARS = 200_000
ACTIVE = "('pending', 'streaming')"

SQLITE_FORWARD = [
    """CREATE TABLE chatapp_search_row (
        id INTEGER PRIMARY KEY,
        ref char(32) NOT NULL UNIQUE,
        conversation_id char(32) NOT NULL,
        kind char(1) NOT NULL
    )""",
    "CREATE INDEX chatapp_search_row_conversation ON chatapp_search_row (conversation_id)",
    """CREATE VIRTUAL TABLE chatapp_search USING fts5(
        body, scope, tokenize = 'unicode61 remove_diacritics 2'
    )""",
    # A message: indexed when it is saved final, again when its final text changes.
    f"""CREATE TRIGGER chatapp_search_message_insert AFTER INSERT ON chatapp_message
    WHEN new.content != '' AND new.status NOT IN {ACTIVE}
    BEGIN
        INSERT INTO chatapp_search_row (ref, conversation_id, kind)
        VALUES (new.id, new.conversation_id, 'm');
        INSERT INTO chatapp_search (rowid, body, scope) VALUES (
            last_insert_rowid(),
            substr(new.content, 1, {INDEXED_CHARS}),
            (SELECT 'o' || owner_id FROM chatapp_conversation WHERE id = new.conversation_id)
        );
    END""",
    f"""CREATE TRIGGER chatapp_search_message_update AFTER UPDATE OF content, status
    ON chatapp_message
    WHEN new.status NOT IN {ACTIVE}
        AND (new.content != old.content OR old.status IN {ACTIVE})
    BEGIN
        DELETE FROM chatapp_search
        WHERE rowid = (SELECT id FROM chatapp_search_row WHERE ref = old.id);
        DELETE FROM chatapp_search_row WHERE ref = old.id;
        INSERT INTO chatapp_search_row (ref, conversation_id, kind)
        SELECT new.id, new.conversation_id, 'm' WHERE new.content != '';
        INSERT INTO chatapp_search (rowid, body, scope)
        SELECT last_insert_rowid(), substr(new.content, 1, {INDEXED_CHARS}),
            (SELECT 'o' || owner_id FROM chatapp_conversation WHERE id = new.conversation_id)
        WHERE new.content != '';
    END""",
    """CREATE TRIGGER chatapp_search_message_delete AFTER DELETE ON chatapp_message
    BEGIN
        DELETE FROM chatapp_search
        WHERE rowid = (SELECT id FROM chatapp_search_row WHERE ref = old.id);
        DELETE FROM chatapp_search_row WHERE ref = old.id;
    END""",
    # A title.
    """CREATE TRIGGER chatapp_search_title_insert AFTER INSERT ON chatapp_conversation
    WHEN new.title != ''
    BEGIN
        INSERT INTO chatapp_search_row (ref, conversation_id, kind) VALUES (new.id, new.id, 't');
        INSERT INTO chatapp_search (rowid, body, scope)
        VALUES (last_insert_rowid(), new.title, 'o' || new.owner_id);
    END""",
    """CREATE TRIGGER chatapp_search_title_update AFTER UPDATE OF title ON chatapp_conversation
    WHEN new.title != old.title
    BEGIN
        DELETE FROM chatapp_search
        WHERE rowid = (SELECT id FROM chatapp_search_row WHERE ref = old.id);
        DELETE FROM chatapp_search_row WHERE ref = old.id;
        INSERT INTO chatapp_search_row (ref, conversation_id, kind)
        SELECT new.id, new.id, 't' WHERE new.title != '';
        INSERT INTO chatapp_search (rowid, body, scope)
        SELECT last_insert_rowid(), new.title, 'o' || new.owner_id WHERE new.title != '';
    END""",
    """CREATE TRIGGER chatapp_search_title_delete AFTER DELETE ON chatapp_conversation
    BEGIN
        DELETE FROM chatapp_search
        WHERE rowid = (SELECT id FROM chatapp_search_row WHERE ref = old.id);
        DELETE FROM chatapp_search_row WHERE ref = old.id;
    END""",
    # What is there already.
    f"""INSERT INTO chatapp_search_row (ref, conversation_id, kind)
    SELECT id, conversation_id, 'm' FROM chatapp_message
    WHERE content != '' AND status NOT IN {ACTIVE}""",
    "INSERT INTO chatapp_search_row (ref, conversation_id, kind) "
    "SELECT id, id, 't' FROM chatapp_conversation WHERE title != ''",
    f"""INSERT INTO chatapp_search (rowid, body, scope)
    SELECT r.id, substr(m.content, 1, {INDEXED_CHARS}), 'o' || c.owner_id
    FROM chatapp_search_row r JOIN chatapp_message m ON m.id = r.ref
    JOIN chatapp_conversation c ON c.id = m.conversation_id WHERE r.kind = 'm'""",
    """INSERT INTO chatapp_search (rowid, body, scope)
    SELECT r.id, c.title, 'o' || c.owner_id
    FROM chatapp_search_row r JOIN chatapp_conversation c ON c.id = r.ref WHERE r.kind = 't'""",
]

SQLITE_BACKWARD = [
    *(
        f"DROP TRIGGER IF EXISTS chatapp_search_{name}"
        for name in (
            "message_insert",
            "message_update",
            "message_delete",
            "title_insert",
            "title_update",
            "title_delete",
        )
    ),
    "DROP TABLE IF EXISTS chatapp_search",
    "DROP TABLE IF EXISTS chatapp_search_row",
]

# The text indexed, on PostgreSQL: without accents when the `unaccent` extension can be had
# (as SQLite's tokenizer removes them), else as it is. IMMUTABLE, as an index needs.
UNACCENTED = f"""CREATE FUNCTION chatapp_search_text(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary,
        left(value, {INDEXED_CHARS}))) $$"""
PLAIN = f"""CREATE FUNCTION chatapp_search_text(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT lower(left(value, {INDEXED_CHARS})) $$"""

POSTGRESQL_FORWARD = [
    "ALTER TABLE chatapp_message ADD COLUMN search tsvector",
    f"""CREATE FUNCTION chatapp_message_search() RETURNS trigger AS $$
    BEGIN
        IF NEW.status IN {ACTIVE} THEN
            NEW.search := NULL;
        ELSIF TG_OP = 'INSERT' OR NEW.content IS DISTINCT FROM OLD.content
            OR OLD.status IN {ACTIVE} OR NEW.search IS NULL THEN
            NEW.search := to_tsvector('simple', chatapp_search_text(NEW.content));
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER chatapp_message_search BEFORE INSERT OR UPDATE OF content, status
    ON chatapp_message FOR EACH ROW EXECUTE FUNCTION chatapp_message_search()""",
    f"""UPDATE chatapp_message SET search = to_tsvector('simple', chatapp_search_text(content))
    WHERE status NOT IN {ACTIVE}""",
    "CREATE INDEX chatapp_message_search ON chatapp_message USING GIN (search)",
    # The newest messages first: a frequent word's matches are ranked among the newest only.
    "CREATE INDEX chatapp_message_recent ON chatapp_message (created_at DESC)",
    """ALTER TABLE chatapp_conversation ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', chatapp_search_text(title))) STORED""",
    "CREATE INDEX chatapp_conversation_search ON chatapp_conversation USING GIN (search)",
]

POSTGRESQL_BACKWARD = [
    "DROP INDEX IF EXISTS chatapp_conversation_search",
    "ALTER TABLE chatapp_conversation DROP COLUMN IF EXISTS search",
    "DROP TRIGGER IF EXISTS chatapp_message_search ON chatapp_message",
    "DROP FUNCTION IF EXISTS chatapp_message_search()",
    "DROP INDEX IF EXISTS chatapp_message_search",
    "DROP INDEX IF EXISTS chatapp_message_recent",
    "ALTER TABLE chatapp_message DROP COLUMN IF EXISTS search",
    "DROP FUNCTION IF EXISTS chatapp_search_text(text)",
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql" and statements is FORWARD:
            _text_function(schema_editor)
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


def _text_function(schema_editor) -> None:
    """`unaccent` if this database has it or lets us create it (a superuser, or a trusted
    extension), else the plain text: search then tells "é" from "e", as it says in
    docs/ARCHITECTURE.md."""
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
            schema_editor.execute(UNACCENTED)
    except DatabaseError:
        schema_editor.execute(PLAIN)


FORWARD = {"sqlite": SQLITE_FORWARD, "postgresql": POSTGRESQL_FORWARD}
BACKWARD = {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRESQL_BACKWARD}


class Migration(migrations.Migration):
    dependencies = [
        ("chatapp", "0009_children_index"),
    ]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False),
    ]
