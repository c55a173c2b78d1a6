"""Server-rendered pages: the search page (text, picture, filters, pages), the image detail page (with its text and
automatic tags), and staff review of automatic tags.

Thin: parameters are checked by the REST API's serializers, searches run through ``search_run``, and every domain
error becomes a message on the page (with its 4xx/503 status), never a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import DomainError
from images.api.permissions import reading_allowed, remote_fetch_check
from images.formats import FORMAT_NAMES
from images.models import AutoTag, Image, ImageStatus
from images.services.enrichment import autotag_review
from search.api.serializers import SearchParamsSerializer
from search.query import QueryTerm, SearchHit, query_parse
from search.query.params import search_query_from_params
from search.selectors import image_enrichment, images_recent, system_status
from search.services.query_pictures import query_picture_load, query_picture_store
from search.services.search import search_run

FILTER_FIELDS = ("tags", "text", "uploader", "format", "min_width", "min_height", "created_after", "created_before")
OPTION_FIELDS = ("min_score", "relative_margin", "sort", "collapse")
RECENT_COUNT = 12


@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """GET: search with ``q`` (query syntax), an optional cached ``picture`` and filters. POST: a picture upload,
    encoded and cached, then a redirect to the equivalent GET (so pages and filters work on it)."""
    if _login_needed(request):
        return redirect_to_login(request.get_full_path(), login_url=reverse("admin:login"))
    if request.method == "POST":
        return _picture_post(request)
    context: dict[str, Any] = {"status": system_status(), "form": request.GET, "formats": FORMAT_NAMES}
    context["filters_open"] = any(request.GET.get(f) for f in FILTER_FIELDS + OPTION_FIELDS[:2])
    q = request.GET.get("q", "").strip()
    token = request.GET.get("picture", "")
    picture = query_picture_load(token=token) if token else None
    if token and picture is None:
        context["error"] = "The picture you searched with has expired; add it again."
    if picture is not None:
        context["picture_preview"] = picture[1]
    if not q and picture is None:
        context["recent"] = [SearchHit(image, 0.0) for image in images_recent(limit=RECENT_COUNT)]
        return render(request, "search/home.html", context)
    status_code = 200
    try:
        params = _params(request.GET)
        terms = query_parse(text=q) + ((picture[0],) if picture else ())
        if any(term.kind == "url" for term in terms):
            remote_fetch_check(request=request, anonymous_setting=settings.SEMSEARCH_URL_TERMS_ANONYMOUS)
        query = search_query_from_params(params=params, terms=terms, interface="web")
        page = search_run(query=query)
        context.update(page=page, results_end=page.offset + len(page.hits))
        context["pages"] = _page_links(request, page.previous_offset, page.next_offset)
    except DomainError as error:
        context["error"] = error.message
        status_code = error.status_code
    return render(request, "search/home.html", context, status=status_code)


def _login_needed(request: HttpRequest) -> bool:
    """Pages follow the API: private when ``SEMSEARCH_SEARCH_PUBLIC`` is false (``reading_allowed``)."""
    return not reading_allowed(user=request.user)


def _params(data: Any) -> dict[str, Any]:
    cleaned = {key: value for key, value in data.items() if value != "" and key in SearchParamsSerializer().fields}
    serializer = SearchParamsSerializer(data=cleaned)
    if not serializer.is_valid():
        field, problems = next(iter(serializer.errors.items()))
        raise DomainError(f"{field.replace('_', ' ')}: {problems[0]}")
    return dict(serializer.validated_data)


def _page_links(request: HttpRequest, previous: int | None, following: int | None) -> dict[str, str | None]:
    def link(offset: int | None) -> str | None:
        if offset is None:
            return None
        query = {k: v for k, v in request.GET.items() if k != "offset" and v != ""}
        if offset:
            query["offset"] = str(offset)
        return "?" + urlencode(query)

    return {"previous": link(previous), "next": link(following)}


def _picture_post(request: HttpRequest) -> HttpResponse:
    keep = {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "picture") and v != ""}
    upload = request.FILES.get("image")
    if upload is None:
        if request.POST.get("picture"):
            keep["picture"] = request.POST["picture"]
        return HttpResponseRedirect(reverse("home") + ("?" + urlencode(keep) if keep else ""), status=303)
    try:
        keep["picture"] = query_picture_store(data=upload.read())
    except DomainError as error:
        context = {"status": system_status(), "form": request.POST, "formats": FORMAT_NAMES, "error": error.message}
        return render(request, "search/home.html", context, status=error.status_code)
    return HttpResponseRedirect(reverse("home") + "?" + urlencode(keep), status=303)


def image_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One image: the picture, its metadata and provenance, and the images most like it."""
    if _login_needed(request):
        return redirect_to_login(request.get_full_path(), login_url=reverse("admin:login"))
    image = get_object_or_404(Image.objects.select_related("uploader"), pk=pk, status=ImageStatus.READY)
    context: dict[str, Any] = {"status": system_status(), "image": image, **image_enrichment(image=image)}
    try:
        query = search_query_from_params(
            params={"limit": 12},
            terms=(QueryTerm(kind="image_id", image_id=pk),),
            interface="web",
            exclude_ids=(pk,),
        )
        context["similar"] = search_run(query=query)
    except DomainError as error:
        context["similar_error"] = error.message
    return render(request, "search/image_detail.html", context)


@require_POST
@staff_member_required
def autotag_review_post(request: HttpRequest, pk: int, tag_pk: int) -> HttpResponse:
    """Staff: accept (``decision=accept``) or reject an automatic tag of image ``pk``, then back to its page."""
    if not AutoTag.objects.filter(pk=tag_pk, image_id=pk).exists():
        raise Http404("No such automatic tag on this image.")
    autotag_review(autotag_ids=[tag_pk], accept=request.POST.get("decision") == "accept", user=request.user)
    return HttpResponseRedirect(reverse("image-detail", args=[pk]), status=303)
