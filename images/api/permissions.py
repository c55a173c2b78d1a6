"""Who may do what: reading is public; adding needs ``images.add_image``, deleting ``images.delete_image``; staff
may do both."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

REQUIRED = {"POST": "images.add_image", "DELETE": "images.delete_image", "PUT": "images.change_image",
            "PATCH": "images.change_image"}  # fmt: skip


class CataloguePermission(BasePermission):
    message = "You need permission to change the catalogue (images.add_image / images.delete_image, or staff)."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        if not user or not user.is_authenticated:
            return False
        needed = REQUIRED.get(request.method)
        return bool(user.is_staff or (needed and user.has_perm(needed)))


class MethodScopedThrottleMixin:
    """``read`` scope for safe methods, ``upload`` for writes (rates in settings.REST_FRAMEWORK)."""

    def get_throttles(self):
        self.throttle_scope = "read" if self.request.method in SAFE_METHODS else "upload"
        return super().get_throttles()
