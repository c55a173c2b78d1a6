"""Reading the background work a test's code asked for, from the on-commit callbacks it registered."""

from __future__ import annotations

from core.dispatch import EMBED_IMAGES, task_send


def embed_requests(callbacks) -> list[tuple[list[int], str | None]]:
    """``(image_ids, model_key)`` of every ``embed_images`` send registered on commit (in order, not executed)."""
    return [
        (cb.keywords["image_ids"], cb.keywords.get("model_key"))
        for cb in callbacks
        if getattr(cb, "func", None) is task_send and cb.args[0] == EMBED_IMAGES
    ]
