"""Admin for the catalogue: list with thumbnails and status filters, multi-file and zip upload, re-embed, re-run
enrichment and delete actions (files removed too), a queue progress page, and automatic tags to accept or reject."""

from __future__ import annotations

from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from .formats import FORMAT_NAMES_TEXT
from .models import AutoTag, Image, ImageStatus, PictureText
from .services import image_delete, images_reembed
from .services.enrichment import autotag_review, enrichment_rerun
from .services.uploads import UploadOutcome, uploaded_file_read, uploads_ingest


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*,.zip,.heic,.avif"}))
        super().__init__(*args, allow_empty_file=True, **kwargs)

    def clean(self, data, initial=None):
        items = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


class UploadForm(forms.Form):
    # A declared field named "files": Django's form metaclass pops it from the class, so ``form.files`` (the
    # uploaded data) is not shadowed.
    files = MultipleFileField(help_text=f"Images ({FORMAT_NAMES_TEXT}) and/or zip archives.")  # type: ignore[assignment]
    title = forms.CharField(required=False, max_length=500)
    attribution = forms.CharField(required=False, max_length=500)
    source_link = forms.URLField(required=False, max_length=2000)
    tags = forms.CharField(required=False, help_text="Comma-separated.")


class AutoTagInline(admin.TabularInline):
    model = AutoTag
    fields = ["tag", "confidence", "state", "model_key", "reviewed_by", "reviewed_at"]
    readonly_fields = ["tag", "confidence", "model_key", "reviewed_by", "reviewed_at"]
    extra = 0
    can_delete = False
    verbose_name_plural = "Automatic tags (set the state to accept or reject)"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class PictureTextInline(admin.StackedInline):
    model = PictureText
    fields = ["status", "text", "engine", "error", "seconds", "updated_at"]
    readonly_fields = ["status", "text", "engine", "error", "seconds", "updated_at"]
    extra = 0
    can_delete = False
    verbose_name_plural = "Text read from the picture"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "preview", "title", "status_badge", "format", "width", "height", "uploader", "created_at"]
    list_display_links = ["id", "preview", "title"]
    list_filter = ["status", "format", "created_at"]
    search_fields = ["title", "attribution", "original_filename", "content_hash", "source_url"]
    readonly_fields = ["content_hash", "width", "height", "format", "file_size", "created_at", "updated_at",
                       "preview", "status", "failure_reason", "original", "thumbnail"]  # fmt: skip
    date_hierarchy = "created_at"
    list_per_page = 50
    actions = ["reembed", "rerun_ocr", "rerun_autotags"]
    inlines = [AutoTagInline, PictureTextInline]
    change_list_template = "admin/images/image/change_list.html"

    @admin.display(description="Preview")
    def preview(self, obj: Image) -> str:
        if not obj.thumbnail:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:64px;max-width:96px" loading="lazy">',
                           obj.thumbnail.url)  # fmt: skip

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Image) -> str:
        if obj.status == ImageStatus.FAILED:
            return format_html('<span title="{}">failed: {}</span>', obj.failure_reason, obj.failure_reason[:80])
        return obj.get_status_display()

    @admin.action(description="Re-embed selected images", permissions=["change"])
    def reembed(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        count = images_reembed(image_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} image(s) set to pending and queued for embedding.", messages.SUCCESS)

    @admin.action(description="Read the text in the selected pictures again (OCR)", permissions=["change"])
    def rerun_ocr(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        count = enrichment_rerun(image_ids=list(queryset.values_list("pk", flat=True)), ocr=True)
        self.message_user(request, f"{count} image(s) queued for OCR.", messages.SUCCESS)

    @admin.action(description="Recompute the automatic tags of the selected images", permissions=["change"])
    def rerun_autotags(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        count = enrichment_rerun(image_ids=list(queryset.values_list("pk", flat=True)), tags=True)
        self.message_user(request, f"{count} image(s) queued for automatic tagging.", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: Image) -> None:
        image_delete(image=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        for image in queryset:
            image_delete(image=image)

    def get_urls(self):
        own = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="images_image_upload"),
        ]
        return own + super().get_urls()

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        results: list[UploadOutcome] = []
        counts: Counter[str] = Counter()
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            # read one file at a time, as it is ingested, rather than all of them up front
            files = ((f.name, uploaded_file_read(name=f.name, size=f.size, chunks=f.chunks())) for f in data["files"])
            results = uploads_ingest(files=files, title=data["title"], attribution=data["attribution"],
                                     source_link=data["source_link"], tags=data["tags"].split(","),
                                     uploader=request.user if request.user.is_authenticated else None)  # fmt: skip
            counts.update(outcome.status for outcome in results)
            level = messages.WARNING if counts["rejected"] else messages.SUCCESS
            self.message_user(request, f"{counts['created']} created, {counts['existing']} already stored, "
                                       f"{counts['rejected']} rejected.", level)  # fmt: skip
            form = UploadForm()
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "results": results, "title": "Upload images"}  # fmt: skip
        return TemplateResponse(request, "admin/images/image/upload.html", context)


@admin.register(AutoTag)
class AutoTagAdmin(admin.ModelAdmin):
    list_display = ["tag", "image", "confidence", "state", "model_key", "reviewed_by", "created_at"]
    list_filter = ["state", "tag", "model_key"]
    search_fields = ["tag"]
    raw_id_fields = ["image"]
    readonly_fields = ["image", "tag", "confidence", "model_key", "reviewed_by", "reviewed_at", "created_at"]
    actions = ["accept", "reject"]

    @admin.action(description="Accept the selected automatic tags", permissions=["change"])
    def accept(self, request: HttpRequest, queryset: QuerySet[AutoTag]) -> None:
        count = autotag_review(autotag_ids=list(queryset.values_list("pk", flat=True)), accept=True, user=request.user)
        self.message_user(request, f"{count} automatic tag(s) accepted.", messages.SUCCESS)

    @admin.action(description="Reject the selected automatic tags", permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[AutoTag]) -> None:
        count = autotag_review(autotag_ids=list(queryset.values_list("pk", flat=True)), accept=False, user=request.user)
        self.message_user(request, f"{count} automatic tag(s) rejected.", messages.SUCCESS)


@admin.register(PictureText)
class PictureTextAdmin(admin.ModelAdmin):
    list_display = ["image", "status", "short_text", "engine", "seconds", "updated_at"]
    list_filter = ["status", "engine"]
    search_fields = ["words"]
    raw_id_fields = ["image"]
    readonly_fields = ["image", "text", "words", "engine", "status", "error", "seconds", "updated_at"]

    @admin.display(description="Text")
    def short_text(self, obj: PictureText) -> str:
        return obj.text[:80] or (f"failed: {obj.error[:60]}" if obj.error else "(no text)")
