"""Who may do what: reading is public unless ``SEMSEARCH_SEARCH_PUBLIC`` is false (then it needs an account);
adding needs ``images.add_image``, deleting ``images.delete_image``; staff may do both."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission

PRIVATE_MESSAGE = "Reading is private on this server; sign in or send an API token."


def reading_allowed(*, user: Any) -> bool:
    """Whether ``user`` may read the catalogue (search, images, status, media, pages): everyone on a public
    server, signed-in users when ``SEMSEARCH_SEARCH_PUBLIC`` is false."""
    return bool(settings.SEMSEARCH_SEARCH_PUBLIC or (user is not None and user.is_authenticated))


class ReadPermission(BasePermission):
    """For operations that only read (a POST search included): anyone ``reading_allowed`` admits."""

    message = PRIVATE_MESSAGE

    def has_permission(self, request, view) -> bool:
        return reading_allowed(user=request.user)


REQUIRED = {"POST": "images.add_image", "DELETE": "images.delete_image", "PUT": "images.change_image",
            "PATCH": "images.change_image"}  # fmt: skip


class CataloguePermission(BasePermission):
    message = "You need permission to change the catalogue (images.add_image / images.delete_image, or staff)."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            if not reading_allowed(user=request.user):
                self.message = PRIVATE_MESSAGE
                return False
            return True
        user = request.user
        if not user or not user.is_authenticated:
            return False
        needed = REQUIRED.get(request.method)
        return bool(user.is_staff or (needed and user.has_perm(needed)))


class CredentialsNeededMixin:
    """A refused caller without credentials gets a 401 whose message says why (DRF's says only "not provided")."""

    def permission_denied(self, request, message=None, code=None) -> None:
        if request.authenticators and not request.successful_authenticator:
            raise NotAuthenticated(message or PRIVATE_MESSAGE)
        super().permission_denied(request, message=message, code=code)


class MethodScopedThrottleMixin:
    """``read`` scope for safe methods, ``upload`` for writes (rates in settings.REST_FRAMEWORK)."""

    def get_throttles(self):
        self.throttle_scope = "read" if self.request.method in SAFE_METHODS else "upload"
        return super().get_throttles()
