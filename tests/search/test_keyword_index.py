"""The keyword index follows the catalogue in the same transaction, in both engines: images created, edited
(``save`` and bulk ``update``) and deleted; picture text and automatic tags added, changed, reviewed and removed;
accents, stems and id-like words; the rebuild command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from images import keyword_search
from images.keyword_sql import _SQLITE_TRIGGERS
from images.models import AutoTag, AutoTagState, Image, ImageText, PictureText, PictureTextStatus
from images.services.enrichment import autotag_review
from search.query import SearchQuery, query_parse
from search.services.search import search_run
from tests.search.test_search_fixtures import image_make

pytestmark = pytest.mark.django_db


def found(q: str, **options) -> list[int]:
    """Ids of the keyword-mode hits of ``q``, best first."""
    page = search_run(query=SearchQuery(terms=query_parse(text=q), mode="keyword", limit=50, **options))
    return [hit.image.pk for hit in page.hits]


def test_every_database_object_of_the_index_is_installed():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'images_%%'")
            names = {row[0] for row in cursor.fetchall()}
            assert names == {"images_imagetext_document", "images_text_image_insert", "images_text_image_update",
                             "images_text_image_delete", "images_text_picturetext", "images_text_autotag"}  # fmt: skip
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'images_imagetext_document'")
            assert "gin (document)" in cursor.fetchone()[0]
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            assert set(_SQLITE_TRIGGERS) <= {row[0] for row in cursor.fetchall()}
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'images_imagetext_fts'")
            assert "fts5" in cursor.fetchone()[0].lower()


def test_each_field_is_searchable_and_field_terms_look_only_there():
    # given an image whose words sit in different fields
    image = image_make(title="Woman exploring a forest", tags=["autumn", "hiking"])
    Image.objects.filter(pk=image.pk).update(attribution="Michelle Spencer", original_filename="IMG_2041.JPG",
                                             description="Taken near the old lighthouse of Porto")  # fmt: skip
    other = image_make(title="Spencer street at night")
    Image.objects.filter(pk=other.pk).update(original_filename="IMG_2042.jpg")
    # then each field finds it
    for q in ("forest", "Michelle Spencer", "hiking", "lighthouse", "IMG_2041", "img_2041.jpg"):
        assert found(q)[:1] == [image.pk], q
    # and a field term looks in that field only
    assert found('by:"Michelle Spencer"') == [image.pk]
    assert found("by:Spencer") == [image.pk]
    assert found("title:spencer") == [other.pk]
    assert found("file:IMG_2041") == [image.pk]
    assert found("file:IMG_2042") == [other.pk]
    assert found("desc:porto") == [image.pk]
    assert found("tag:forest") == []
    # and a negative field term excludes
    assert found("spencer -by:spencer") == [other.pk]


def test_both_names_rank_above_one_name_and_stems_and_accents_fold():
    both = image_make(title="Portrait")
    Image.objects.filter(pk=both.pk).update(attribution="Michelle Spencer")
    first_only = image_make(title="Michelle at the café")
    assert found("Michelle Spencer") == [both.pk, first_only.pk]
    assert found("cafe") == [first_only.pk]  # accents fold (unaccent / remove_diacritics)
    assert found("portraits") == [both.pk]  # English stems


def test_when_enough_images_hold_every_word_images_holding_some_are_not_ranked():
    # given more images holding both words than the keyword side fetches, in long titles (low engine scores),
    # and one holding a single word that the engine scores high (its title is that word)
    first_only = image_make(title="Michelle")
    filler = " ".join(f"word{n}" for n in range(60))
    both = [image_make(title=f"Portrait {n} of Michelle Spencer {filler}") for n in range(130)]
    # then the images holding both words fill the ranking, and the one holding a single word is left out
    with CaptureQueriesContext(connection) as queries:
        hits = found("Michelle Spencer")
    ranking = [q["sql"] for q in queries.captured_queries if "bm25(" in q["sql"] or "ts_rank(" in q["sql"]]
    assert ranking
    matched = [sql.split(" WHERE ", 1)[1] for sql in ranking]
    assert not [sql for sql in matched if " OR " in sql or " | " in sql]  # the engine scored no partial match
    assert len(hits) == 50
    assert set(hits) <= {image.pk for image in both}
    # but with fewer of them, every image holding either word is ranked, the ones holding both first
    Image.objects.filter(pk__in=[image.pk for image in both[3:]]).delete()
    assert found("Michelle Spencer") == [*sorted(image.pk for image in both[:3]), first_only.pk]


def test_images_holding_some_words_are_ranked_from_the_newest_scanned(monkeypatch):
    # given a scan of images holding some words no deeper than the keyword side's fetch, two images holding both
    # words, then more images holding one of them than the keyword side fetches
    monkeypatch.setattr(keyword_search, "PARTIAL_SCAN", 0)
    both = [image_make(title="Michelle Spencer") for _ in range(2)]
    some = [image_make(title="Michelle") for _ in range(130)]
    # then the two come first, and the rest come from the newest images holding one word (equal scores: by id)
    hits = found("Michelle Spencer")
    assert hits[:2] == sorted(i.pk for i in both)
    assert hits[2:] == sorted(hits[2:])
    assert not set(hits) & {i.pk for i in some[:10]}


def test_the_index_follows_edits_bulk_updates_and_deletes_in_the_same_transaction():
    image = image_make(title="A lonely lighthouse")
    assert found("lighthouse") == [image.pk]
    image.title = "A windmill"
    image.save()
    assert (found("lighthouse"), found("windmill")) == ([], [image.pk])
    Image.objects.filter(pk=image.pk).update(tags=["harbour"], description="Seen from the ferry")
    assert found("harbour ferry") == [image.pk]
    assert ImageText.objects.get(image=image).tags == "harbour"
    image.delete()
    assert found("windmill") == []
    assert not ImageText.objects.filter(image_id=image.pk).exists()


def test_picture_text_and_accepted_automatic_tags_are_indexed():
    image = image_make(title="Street")
    text = PictureText.objects.create(image=image, text="EMERGENCY EXIT", words=" emergency exit ", engine="t",
                                      status=PictureTextStatus.DONE)  # fmt: skip
    assert found("text:exit") == [image.pk]
    text.text = "ENTRANCE"
    text.save()
    assert (found("exit"), found("entrance")) == ([], [image.pk])
    text.delete()
    assert found("entrance") == []
    # a proposed automatic tag is not searchable text; accepted (a bulk update) it is; rejected it is gone again
    tag = AutoTag.objects.create(image=image, tag="bicycle", confidence=0.9, model_key="toy")
    assert found("bicycle") == []
    autotag_review(autotag_ids=[tag.pk], accept=True, user=None)
    assert found("auto:bicycle") == [image.pk]
    autotag_review(autotag_ids=[tag.pk], accept=False, user=None)
    assert AutoTag.objects.get(pk=tag.pk).state == AutoTagState.REJECTED
    assert found("bicycle") == []


def test_only_ready_images_and_filters_apply_to_keyword_hits():
    ready = image_make(title="red kite", tags=["bird"])
    image_make(title="red kite", status="pending")
    other = image_make(title="red kite", tags=["toy"])
    assert sorted(found("kite")) == sorted([ready.pk, other.pk])
    from search.query.params import filters_from_params

    assert found("kite", filters=filters_from_params({"tags": ["bird"]})) == [ready.pk]


def test_hits_show_the_matched_fields_with_the_words_marked():
    image = image_make(title="Woman exploring a forest")
    Image.objects.filter(pk=image.pk).update(attribution="Michelle <Spencer>")
    page = search_run(query=SearchQuery(terms=query_parse(text="forest spencer"), mode="keyword"))
    matches = {m.field: m.highlight for m in page.hits[0].matches}
    assert matches == {"title": "Woman exploring a <mark>forest</mark>",
                       "attribution": "Michelle &lt;<mark>Spencer</mark>&gt;"}  # fmt: skip
    assert page.hits[0].keyword_score == pytest.approx(1.0)
    assert page.hits[0].semantic_score is None


def test_the_rebuild_command_backfills_a_wiped_index():
    image = image_make(title="Lighthouse at dawn")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM images_imagetext")
    assert found("lighthouse") == []
    out = StringIO()
    call_command("keyword_reindex", stdout=out)
    assert "1 documents" in out.getvalue()
    assert found("lighthouse") == [image.pk]
