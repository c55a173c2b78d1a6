"""URL map: the web UI, the REST API (``/api/v1/``) with its OpenAPI schema, admin, health and metrics."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from . import health
from .api_views import SchemaView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("search.api.urls")),
    path("api/v1/", include("images.api.urls")),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
    path("", include("images.urls")),
    path("", include("search.urls")),
]

handler404 = "semsearch_site.api_views.not_found"
