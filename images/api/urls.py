from django.urls import path

from . import views

urlpatterns = [
    path("images/", views.ImageListUploadView.as_view(), name="api-images"),
    path("images/from-url", views.ImageFromUrlView.as_view(), name="api-images-from-url"),
    path("images/<int:image_id>", views.ImageDetailView.as_view(), name="api-image-detail"),
]
