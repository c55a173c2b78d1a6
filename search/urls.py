from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("images/<int:pk>/", views.image_detail, name="image-detail"),
    path("images/<int:pk>/autotags/<int:tag_pk>/review", views.autotag_review_post, name="autotag-review"),
]
