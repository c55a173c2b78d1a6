"""The catalogue's single source of truth: one row per distinct picture (by content hash)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ImageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Image(models.Model):
    """A stored picture and its provenance. Its primary key is also its id in every Faiss index."""

    content_hash = models.CharField(max_length=64, unique=True, help_text="sha256 of the original bytes (hex).")
    original = models.FileField(upload_to="originals/", max_length=255)
    thumbnail = models.FileField(upload_to="thumbnails/", max_length=255, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16, help_text="Decoded format, e.g. JPEG, PNG, WEBP.")
    file_size = models.PositiveBigIntegerField(default=0)
    title = models.CharField(max_length=500, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    source_url = models.URLField(max_length=2000, blank=True, help_text="Where the image bytes were fetched from.")
    source_link = models.URLField(max_length=2000, blank=True, help_text="The page the image belongs to.")
    attribution = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True, db_default="", help_text="Free text about the picture; searchable.")
    tags = models.JSONField(default=list, blank=True)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.PENDING, db_index=True)
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=ImageStatus.values), name="image_status_valid"),
            models.CheckConstraint(
                condition=models.Q(content_hash__regex=r"^[0-9a-f]{64}$"), name="image_content_hash_sha256"
            ),
            models.CheckConstraint(condition=models.Q(width__gt=0, height__gt=0), name="image_size_positive"),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return self.display_name(title=self.title, original_filename=self.original_filename, pk=self.pk)

    @staticmethod
    def display_name(*, title: str, original_filename: str, pk: int | None) -> str:
        """What an image is called: its title, else its file name, else ``image <id>`` (also for rows read as
        values, without an instance)."""
        return title or original_filename or f"image {pk}"

    @property
    def pixel_count(self) -> int:
        return self.width * self.height


class ImportedFile(models.Model):
    """Folder-import bookkeeping: one row per file path seen, so a re-run skips unchanged files (same size and
    mtime) and recognises renamed ones (same hash under a new path)."""

    path = models.CharField(max_length=1000, unique=True, help_text="Absolute, resolved path of the file.")
    size = models.PositiveBigIntegerField()
    mtime_ns = models.BigIntegerField()
    content_hash = models.CharField(max_length=64, db_index=True)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="imported_files")
    imported_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.path


class AutoTagState(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class AutoTag(models.Model):
    """A tag the search model proposed for an image (zero-shot), kept apart from the tags people gave it.

    One row per (image, tag): a person's accept/reject is about the picture, so it survives a model switch (the
    new model only refreshes ``confidence`` and ``model_key``). Proposed and accepted tags count in tag filters;
    rejected ones never do and are never proposed again.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="auto_tags")
    tag = models.CharField(max_length=100)
    confidence = models.FloatField(help_text="The score that cleared the tag's threshold (its scale: see vocabulary).")
    model_key = models.CharField(max_length=255, help_text="The model that proposed it last.")
    state = models.CharField(max_length=16, choices=AutoTagState.choices, default=AutoTagState.PROPOSED)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image", "-confidence"]
        constraints = [
            models.UniqueConstraint(fields=["image", "tag"], name="autotag_unique_image_tag"),
            models.CheckConstraint(condition=models.Q(state__in=AutoTagState.values), name="autotag_state_valid"),
        ]
        indexes = [models.Index(fields=["tag", "state"])]

    def __str__(self) -> str:
        return f"{self.tag} ({self.state}, {self.confidence:.2f}) on image {self.image_id}"


class PictureTextStatus(models.TextChoices):
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class PictureText(models.Model):
    """Text read from the picture (OCR). ``words`` is the lower-cased words joined by single spaces between two
    spaces, so whole-word (`` exit ``) and substring (``exi``) matches are plain ``LIKE`` lookups on any database."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="picture_text")
    text = models.TextField(blank=True)
    words = models.TextField(blank=True)
    engine = models.CharField(max_length=100, help_text="OCR engine and version, e.g. tesseract 5.5.4 (eng).")
    status = models.CharField(max_length=16, choices=PictureTextStatus.choices)
    error = models.TextField(blank=True)
    seconds = models.FloatField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=PictureTextStatus.values), name="picturetext_status")
        ]

    def __str__(self) -> str:
        return f"text of image {self.image_id} ({self.status})"


class ImageText(models.Model):
    """The keyword index's document of an image: its searchable text, one column per field.

    Written only by database triggers (see ``images.keyword_sql``) in the same transaction as the image, its
    picture text or its automatic tags, so it can never drift; ``images.services.keyword_index`` rebuilds it.
    PostgreSQL adds a weighted ``document`` tsvector with a GIN index; SQLite an FTS5 table over these columns.
    """

    image = models.OneToOneField(Image, primary_key=True, on_delete=models.CASCADE, related_name="text_index")
    title = models.TextField(blank=True)
    attribution = models.TextField(blank=True)
    tags = models.TextField(blank=True)
    filename = models.TextField(blank=True)
    description = models.TextField(blank=True)
    picture_text = models.TextField(blank=True)
    autotags = models.TextField(blank=True, help_text="Accepted automatic tags.")

    def __str__(self) -> str:
        return f"keyword document of image {self.image_id}"
