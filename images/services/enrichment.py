"""A person's review of automatic tags, and asking the workers to re-run enrichment (by task name)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from core.dispatch import ENRICH_OCR, ENRICH_TAGS, task_send_on_commit
from core.errors import NotFoundError
from images.models import AutoTag, AutoTagState

CHUNK = 64


def autotag_review(*, autotag_ids: Sequence[int], accept: bool, user: AbstractBaseUser | AnonymousUser | None) -> int:
    """Mark these automatic tags accepted (or rejected) by ``user``; a rejected tag never counts as the image's tag
    and is never proposed again. Idempotent. ``NotFoundError`` when none of the ids exists. Returns how many."""
    with transaction.atomic():
        rows = AutoTag.objects.select_for_update().filter(pk__in=list(autotag_ids))
        changed = rows.update(
            state=AutoTagState.ACCEPTED if accept else AutoTagState.REJECTED,
            reviewed_by_id=user.pk if user is not None and user.is_authenticated else None,
            reviewed_at=timezone.now(),
        )
    if not changed:
        raise NotFoundError(f"There is no automatic tag {', '.join(map(str, autotag_ids))}.")
    return changed


def enrichment_rerun(*, image_ids: Sequence[int], ocr: bool = False, tags: bool = False) -> int:
    """Queue OCR (``force``: read again) and/or automatic tagging of these images on commit, in chunks on the
    ``enrich`` queue. Idempotent (the tasks are). Returns how many images were queued."""
    ids = [int(i) for i in image_ids]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        if ocr:
            task_send_on_commit(ENRICH_OCR, image_ids=chunk, force=True)
        if tags:
            task_send_on_commit(ENRICH_TAGS, image_ids=chunk)
    return len(ids)
