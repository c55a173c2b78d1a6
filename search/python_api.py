"""``SemanticSearcher``: the seed's searcher object, grown up, for shells and scripts inside the project.

    >>> from search.python_api import SemanticSearcher
    >>> searcher = SemanticSearcher()              # the active model (or SemanticSearcher(model_id="toy"))
    >>> for hit in searcher.search("red circle - circle", k=5, tags=["demo"]):
    ...     print(hit.score, hit.image.pk, hit.image.title)
    >>> searcher.search('forest by:"Michelle Spencer"')  # words and pictures fused (mode="hybrid", the default)
    >>> searcher.search("IMG_2041", mode="keyword")   # the keyword index only; mode="semantic": CLIP only
    >>> searcher.search(42)                        # more like image 42 (its stored vector)
    >>> searcher.search(PIL.Image.open("cat.jpg")) # or a path: searcher.search(Path("cat.jpg"))
    >>> searcher.encode("a red circle").shape      # (dimension,) float32, L2-normalised

Needs Django set up (``manage.py shell``, or ``django.setup()`` with ``DJANGO_SETTINGS_MODULE``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from images.formats import IMAGE_SUFFIXES
from search.query import QueryError, QueryTerm, SearchHit, SearchPage, query_parse
from search.query.params import search_query_from_params

QueryInput = str | int | Path | Any  # text (query syntax), image id, picture path, PIL image or raw bytes


class SemanticSearcher:
    """Search the catalogue with text, a picture, an image id, or a mix, from Python.

    ``model_id`` (default: the active model) must be the model the catalogue was embedded with for text and
    pictures; image-id searches use stored vectors and never load the model.
    """

    def __init__(self, model_id: str | None = None) -> None:
        self.model_id = model_id

    def search(
        self,
        query: QueryInput | Iterable[QueryTerm],
        k: int = 10,
        *,
        offset: int = 0,
        tags: Iterable[str] | str = (),
        uploader: str = "",
        format: Iterable[str] | str = (),
        min_width: int | None = None,
        min_height: int | None = None,
        created_after: date | datetime | None = None,
        created_before: date | datetime | None = None,
        min_score: float | None = None,
        relative_margin: float | None = None,
        sort: str = "score",
        collapse: bool = False,
        exclude: Iterable[int] = (),
        mode: str = "hybrid",
    ) -> list[SearchHit]:
        """The ``k`` best hits (each with ``.image``, the Image row, and ``.score``), after filters and cut-offs.

        ``query``: text in the query syntax (``"beach + 0.5 * sunset - people"``), an ``int`` image id, a
        ``Path`` or path string of a picture file, a ``PIL.Image``, raw picture ``bytes``, or ``QueryTerm``\\ s.
        ``mode``: ``"hybrid"`` (words and pictures fused), ``"semantic"`` or ``"keyword"``; each hit says why it
        matched (``.semantic_score``, ``.keyword_score``, ``.matches``).
        Raises ``QueryError`` for a bad query and ``ModelUnavailableError`` if the model cannot load. Read-only.
        """
        return self.search_page(query, k=k, offset=offset, tags=tags, uploader=uploader, format=format,
                                min_width=min_width, min_height=min_height, created_after=created_after,
                                created_before=created_before, min_score=min_score, relative_margin=relative_margin,
                                sort=sort, collapse=collapse, exclude=exclude, mode=mode).hits  # fmt: skip

    def search_page(self, query: QueryInput | Iterable[QueryTerm], k: int = 10, **options: Any) -> SearchPage:
        """Like ``search`` but returns the whole ``SearchPage`` (``has_more``, ``next_offset``, notices)."""
        from search.services.search import search_run

        exclude = tuple(int(i) for i in options.pop("exclude", ()) or ())
        params = {key: value for key, value in options.items() if value not in (None, "", ())}
        params["limit"] = k
        search_query = search_query_from_params(params=params, terms=self.terms(query), interface="python",
                                                exclude_ids=exclude)  # fmt: skip
        return search_run(query=replace(search_query, model_id=self.model_id))

    def encode(self, query: QueryInput | Iterable[QueryTerm]) -> np.ndarray:
        """The normalised query vector (float32, shape ``(dimension,)``) that ``search`` would use."""
        from search.query import terms_validate
        from search.services.query_vectors import query_vector_build

        terms = self.terms(query)
        terms_validate(terms=terms)
        return query_vector_build(terms=terms, model_id=self.model_id).vector

    @staticmethod
    def terms(query: QueryInput | Iterable[QueryTerm]) -> tuple[QueryTerm, ...]:
        """The weighted terms a query input stands for (see ``search``)."""
        if isinstance(query, QueryTerm):
            return (query,)
        if isinstance(query, bool):
            raise QueryError("A query must be text, an image id, a picture or a path, not a boolean.")
        if isinstance(query, (int, np.integer)):
            return (QueryTerm(kind="image_id", image_id=int(query)),)
        if isinstance(query, Path) or (
            isinstance(query, str) and Path(query).suffix.lower() in IMAGE_SUFFIXES and Path(query).is_file()
        ):
            path = Path(query)
            if not path.is_file():
                raise QueryError(f"{path} is not a file.")
            return (QueryTerm(kind="image", image=path.read_bytes()),)
        if isinstance(query, str):
            return query_parse(text=query)
        if isinstance(query, (bytes, bytearray)):
            return (QueryTerm(kind="image", image=bytes(query)),)
        if hasattr(query, "convert") and hasattr(query, "size"):  # a PIL image
            return (QueryTerm(kind="image", image=query.convert("RGB")),)
        if isinstance(query, Iterable):
            terms = tuple(query)
            if all(isinstance(t, QueryTerm) for t in terms):
                return terms
        raise QueryError(f"Cannot search with a {type(query).__name__}; use text, an image id, a picture or a path.")
