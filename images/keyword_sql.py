"""The keyword index's database objects, per engine: what migration 0004 installs and the rebuild re-runs.

Both engines keep ``images_imagetext`` (the ``ImageText`` model) in step with its sources by triggers, in the
same transaction as the change: an image inserted, its text columns updated or the image deleted; its picture text
(``PictureText``) or automatic tags (``AutoTag``, accepted ones) inserted, changed or deleted. ORM saves, bulk
``update()``, raw SQL and cascades are all covered because nothing in Python has to remember to call anything.

* PostgreSQL: ``images_imagetext.document`` is a weighted ``tsvector`` (title and attribution A; tags and file
  name B; description and automatic tags C; picture text D) in the ``semsearch`` text search configuration
  (English stems without stop words, ``unaccent`` first when the extension could be installed), kept by a
  ``BEFORE`` trigger and indexed with GIN.
* SQLite: ``images_imagetext_fts``, an external-content FTS5 table over the same columns (``porter unicode61
  remove_diacritics 2``: English stems, accents and case folded), kept by the standard FTS5 triggers.

Text is split into words the same way on both (every run of characters that are not letters or digits separates
words: ``IMG_2041.jpg`` is ``img 2041 jpg``), so both engines find the same documents.
"""

from __future__ import annotations

FIELDS = ("title", "attribution", "tags", "filename", "description", "picture_text", "autotags")

_TEXT_CHANGED = " OR ".join(
    f"OLD.{column} IS DISTINCT FROM NEW.{column}"
    for column in ("title", "attribution", "tags", "original_filename", "description")
)

# -- PostgreSQL -------------------------------------------------------------------------------------------------

PG_UNACCENT = "CREATE EXTENSION IF NOT EXISTS unaccent"


def pg_install(*, unaccent: bool) -> list[str]:
    """Statements that create the configuration, the document column, its index, the functions and triggers."""
    chain = "unaccent, semsearch_stem" if unaccent else "semsearch_stem"
    document = " || ".join(
        f"setweight(to_tsvector('semsearch', semsearch_words(NEW.{column})), '{weight}')"
        for column, weight in zip(FIELDS, "AABBCDC", strict=True)
    )
    columns = ", ".join(FIELDS)
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in FIELDS)
    return [
        "CREATE TEXT SEARCH DICTIONARY semsearch_stem (TEMPLATE = snowball, Language = english)",
        "CREATE TEXT SEARCH CONFIGURATION semsearch (COPY = simple)",
        "ALTER TEXT SEARCH CONFIGURATION semsearch ALTER MAPPING FOR asciiword, word, numword, asciihword, hword, "
        f"numhword, hword_asciipart, hword_part, hword_numpart WITH {chain}",
        # Letters and digits only, so the parser never sees URLs, e-mails or paths as single tokens (like FTS5).
        "CREATE FUNCTION semsearch_words(value text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        "AS $$ SELECT regexp_replace(coalesce(value, ''), '[^[:alnum:]]+', ' ', 'g') $$",
        "ALTER TABLE images_imagetext ADD COLUMN document tsvector NOT NULL DEFAULT ''::tsvector",
        "CREATE INDEX images_imagetext_document ON images_imagetext USING gin (document)",
        "CREATE FUNCTION images_imagetext_document() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN NEW.document := {document}; RETURN NEW; END $$",
        "CREATE TRIGGER images_imagetext_document BEFORE INSERT OR UPDATE ON images_imagetext "
        "FOR EACH ROW EXECUTE FUNCTION images_imagetext_document()",
        f"""CREATE FUNCTION images_text_refresh(target bigint) RETURNS void LANGUAGE sql AS $$
            INSERT INTO images_imagetext (image_id, {columns})
            SELECT i.id, i.title, i.attribution,
                   coalesce((SELECT string_agg(t.value, ' ') FROM jsonb_array_elements_text(
                       CASE WHEN jsonb_typeof(i.tags) = 'array' THEN i.tags ELSE '[]'::jsonb END) AS t(value)), ''),
                   i.original_filename, i.description,
                   coalesce((SELECT p.text FROM images_picturetext p WHERE p.image_id = i.id), ''),
                   coalesce((SELECT string_agg(a.tag, ' ' ORDER BY a.tag) FROM images_autotag a
                             WHERE a.image_id = i.id AND a.state = 'accepted'), '')
            FROM images_image i WHERE i.id = target
            ON CONFLICT (image_id) DO UPDATE SET {updates} $$""",
        "CREATE FUNCTION images_text_from_image() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'DELETE' THEN DELETE FROM images_imagetext WHERE image_id = OLD.id; RETURN OLD; END IF; "
        "PERFORM images_text_refresh(NEW.id); RETURN NEW; END $$",
        "CREATE TRIGGER images_text_image_insert AFTER INSERT ON images_image "
        "FOR EACH ROW EXECUTE FUNCTION images_text_from_image()",
        f"CREATE TRIGGER images_text_image_update AFTER UPDATE ON images_image FOR EACH ROW WHEN ({_TEXT_CHANGED}) "
        "EXECUTE FUNCTION images_text_from_image()",
        "CREATE TRIGGER images_text_image_delete AFTER DELETE ON images_image "
        "FOR EACH ROW EXECUTE FUNCTION images_text_from_image()",
        "CREATE FUNCTION images_text_from_related() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM images_text_refresh(OLD.image_id); END IF; "
        "IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM images_text_refresh(NEW.image_id); END IF; "
        "RETURN NULL; END $$",
        "CREATE TRIGGER images_text_picturetext AFTER INSERT OR UPDATE OR DELETE ON images_picturetext "
        "FOR EACH ROW EXECUTE FUNCTION images_text_from_related()",
        "CREATE TRIGGER images_text_autotag AFTER INSERT OR UPDATE OR DELETE ON images_autotag "
        "FOR EACH ROW EXECUTE FUNCTION images_text_from_related()",
    ]


PG_REBUILD = ["DELETE FROM images_imagetext", "SELECT images_text_refresh(id) FROM images_image"]

PG_UNINSTALL = [
    "DROP TRIGGER IF EXISTS images_text_autotag ON images_autotag",
    "DROP TRIGGER IF EXISTS images_text_picturetext ON images_picturetext",
    "DROP TRIGGER IF EXISTS images_text_image_delete ON images_image",
    "DROP TRIGGER IF EXISTS images_text_image_update ON images_image",
    "DROP TRIGGER IF EXISTS images_text_image_insert ON images_image",
    "DROP FUNCTION IF EXISTS images_text_from_related()",
    "DROP FUNCTION IF EXISTS images_text_from_image()",
    "DROP FUNCTION IF EXISTS images_text_refresh(bigint)",
    "DROP FUNCTION IF EXISTS images_imagetext_document() CASCADE",
    "DROP FUNCTION IF EXISTS semsearch_words(text)",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS semsearch",
    "DROP TEXT SEARCH DICTIONARY IF EXISTS semsearch_stem",
]

# -- SQLite -----------------------------------------------------------------------------------------------------


def _sqlite_refresh(target: str) -> str:
    """Upsert the document of image ``target`` (an SQL expression) from its sources."""
    columns = ", ".join(FIELDS)
    updates = ", ".join(f"{column} = excluded.{column}" for column in FIELDS)
    return f"""INSERT INTO images_imagetext (image_id, {columns})
        SELECT i.id, i.title, i.attribution,
               coalesce((SELECT group_concat(t.value, ' ') FROM json_each(
                   CASE WHEN json_type(i.tags) = 'array' THEN i.tags ELSE '[]' END) AS t), ''),
               i.original_filename, i.description,
               coalesce((SELECT p.text FROM images_picturetext p WHERE p.image_id = i.id), ''),
               coalesce((SELECT group_concat(a.tag, ' ') FROM (SELECT tag FROM images_autotag
                         WHERE image_id = i.id AND state = 'accepted' ORDER BY tag) AS a), '')
        FROM images_image i WHERE i.id = {target}
        ON CONFLICT (image_id) DO UPDATE SET {updates};"""


def sqlite_install() -> list[str]:
    """Statements that create the FTS5 table and every trigger (SQLite)."""
    columns = ", ".join(FIELDS)
    new = ", ".join(f"NEW.{column}" for column in FIELDS)
    old = ", ".join(f"OLD.{column}" for column in FIELDS)
    changed = _TEXT_CHANGED.replace("IS DISTINCT FROM", "IS NOT")
    fts_delete = f"INSERT INTO images_imagetext_fts (images_imagetext_fts, rowid, {columns}) VALUES ('delete', OLD.image_id, {old});"  # noqa: E501
    fts_insert = f"INSERT INTO images_imagetext_fts (rowid, {columns}) VALUES (NEW.image_id, {new});"
    statements = [
        f"CREATE VIRTUAL TABLE images_imagetext_fts USING fts5({columns}, content='images_imagetext', "
        "content_rowid='image_id', tokenize='porter unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER images_imagetext_fts_insert AFTER INSERT ON images_imagetext BEGIN {fts_insert} END",
        f"CREATE TRIGGER images_imagetext_fts_delete AFTER DELETE ON images_imagetext BEGIN {fts_delete} END",
        f"CREATE TRIGGER images_imagetext_fts_update AFTER UPDATE ON images_imagetext BEGIN {fts_delete} "
        f"{fts_insert} END",
        f"CREATE TRIGGER images_text_image_insert AFTER INSERT ON images_image BEGIN {_sqlite_refresh('NEW.id')} END",
        f"CREATE TRIGGER images_text_image_update AFTER UPDATE ON images_image WHEN {changed} BEGIN "
        f"{_sqlite_refresh('NEW.id')} END",
        "CREATE TRIGGER images_text_image_delete AFTER DELETE ON images_image BEGIN "
        "DELETE FROM images_imagetext WHERE image_id = OLD.id; END",
    ]
    for table in ("images_picturetext", "images_autotag"):
        statements += [
            f"CREATE TRIGGER {table}_text_insert AFTER INSERT ON {table} BEGIN {_sqlite_refresh('NEW.image_id')} END",
            f"CREATE TRIGGER {table}_text_update AFTER UPDATE ON {table} BEGIN {_sqlite_refresh('OLD.image_id')} "
            f"{_sqlite_refresh('NEW.image_id')} END",
            f"CREATE TRIGGER {table}_text_delete AFTER DELETE ON {table} BEGIN {_sqlite_refresh('OLD.image_id')} END",
        ]
    return statements


SQLITE_REBUILD = [
    "DELETE FROM images_imagetext",
    _sqlite_refresh("i.id").replace("WHERE i.id = i.id", "WHERE true"),
    "INSERT INTO images_imagetext_fts (images_imagetext_fts) VALUES ('rebuild')",
]

_SQLITE_TRIGGERS = (
    "images_imagetext_fts_insert", "images_imagetext_fts_delete", "images_imagetext_fts_update",
    "images_text_image_insert", "images_text_image_update", "images_text_image_delete",
    *(f"{t}_text_{op}" for t in ("images_picturetext", "images_autotag") for op in ("insert", "update", "delete")),
)  # fmt: skip
SQLITE_UNINSTALL = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in _SQLITE_TRIGGERS),
    "DROP TABLE IF EXISTS images_imagetext_fts",
]
