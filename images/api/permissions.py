"""Who may do what: reading is public unless ``SEMSEARCH_SEARCH_PUBLIC`` is false (then it needs an account);
adding needs ``images.add_image``, deleting ``images.delete_image``; staff may do both."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NoReturn

from django.conf import settings
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from core.errors import DomainError

# The mixins are used on API views only; type-check them as such.
if TYPE_CHECKING:
    _ViewBase = APIView
else:
    _ViewBase = object

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
    message = (
        "You need permission to change the catalogue (images.add_image / images.change_image / "
        "images.delete_image, or staff)."
    )

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


class CredentialsNeededMixin(_ViewBase):
    """A refused caller without credentials gets a 401 whose message says why (DRF's says only "not provided")."""

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> NoReturn:
        if request.authenticators and not request.successful_authenticator:
            raise NotAuthenticated(message or PRIVATE_MESSAGE)
        super().permission_denied(request, message=message, code=code)


class MethodScopedThrottleMixin(_ViewBase):
    """``read`` scope for safe methods, ``upload`` for writes (rates in settings.REST_FRAMEWORK)."""

    def get_throttles(self) -> list[Any]:
        self.throttle_scope = "read" if self.request.method in SAFE_METHODS else "upload"
        return super().get_throttles()


class FetchThrottledError(DomainError):
    status_code = 429
    code = "throttled"


class UrlTermsNeedAccountError(DomainError):
    status_code = 401
    code = "url_terms_need_account"


class FetchUserThrottle(SimpleRateThrottle):
    """``fetch`` scope per user (per address for anonymous callers)."""

    scope = "fetch"

    def get_cache_key(self, request, view) -> str:
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return f"throttle_fetch_user_{ident}"


class FetchAddressThrottle(SimpleRateThrottle):
    """``fetch`` scope per client address, whoever is signed in there."""

    scope = "fetch"

    def get_cache_key(self, request, view) -> str:
        return f"throttle_fetch_address_{self.get_ident(request)}"


def remote_fetch_check(*, request: Any, anonymous_setting: bool | None = None) -> None:
    """Before a request downloads a URL: anonymous callers only when ``anonymous_setting`` allows it (``None``:
    never, e.g. add-by-URL, which needs the add permission anyway), then both ``fetch`` throttles. Raises
    ``UrlTermsNeedAccountError`` (401) or ``FetchThrottledError`` (429 with ``Retry-After``)."""
    user = getattr(request, "user", None)
    if not anonymous_setting and not (user is not None and user.is_authenticated):
        raise UrlTermsNeedAccountError("Searching with a picture URL needs an account on this server; sign in or "
                                       "send an API token (or upload the picture instead).")  # fmt: skip
    for throttle in (FetchUserThrottle(), FetchAddressThrottle()):
        # Keyed on the request alone (get_cache_key ignores the view), so pages without a DRF view can ask too.
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            error = FetchThrottledError("Too many URL fetches; retry later.")
            error.retry_after = max(1, math.ceil(throttle.wait() or 1))
            raise error
