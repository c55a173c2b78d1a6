"""The REST API for search and system status (``/api/v1/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("search", views.SearchView.as_view(), name="api-search"),
    path("images/<int:pk>/similar", views.SimilarView.as_view(), name="api-image-similar"),
    path("status", views.StatusView.as_view(), name="api-status"),
]
