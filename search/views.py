"""Server-rendered pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .selectors import system_status


def home(request: HttpRequest) -> HttpResponse:
    """The search page; shows the system status line (and why the model is unavailable, if it is)."""
    return render(request, "search/home.html", {"status": system_status()})
