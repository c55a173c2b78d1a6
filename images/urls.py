from django.urls import path

from . import views

urlpatterns = [
    path("media/<path:name>", views.media_serve, name="media"),
]
