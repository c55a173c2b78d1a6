"""The OCR engine: Tesseract through ``tesserocr`` (its wheel bundles libtesseract; the language data comes from
Debian's ``tesseract-ocr-eng``). Chosen over RapidOCR after measuring both (docs/enrichment.md).

Tesseract reads horizontal text only, so a picture where the first pass finds no confident words is read again
turned by ±90°, ±25°, ±8° and 180°, keeping the reading with the most confident words. One engine per process
(a cache), guarded by a lock: the API object is not thread-safe.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from PIL import Image as PILImage

# Extra orientations tried in order when a reading has no confident word (counter-clockwise degrees).
RETRY_ANGLES = (-90, 90, -25, 25, -8, 8, 180)
CONFIDENT = 70  # Tesseract word confidence (0-100) that counts a word as read
GOOD_ENOUGH = 85  # mean confidence of the confident words at which no other orientation is tried
TESSDATA_CANDIDATES = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")


class OcrUnavailableError(Exception):
    """The engine cannot run here (package or language data missing); the message says what to install."""


class OcrTimeoutError(Exception):
    """Reading one picture took longer than ``SEMSEARCH_OCR_TIMEOUT_SECONDS``."""


@dataclass(frozen=True)
class OcrReading:
    text: str
    confident_words: int
    seconds: float


def _tessdata() -> str:
    configured = settings.SEMSEARCH_OCR_TESSDATA or os.environ.get("TESSDATA_PREFIX", "")
    for folder in [configured] if configured else list(TESSDATA_CANDIDATES):
        languages = settings.SEMSEARCH_OCR_LANGUAGES.split("+")
        if all((Path(folder) / f"{lang}.traineddata").is_file() for lang in languages):
            return folder
    raise OcrUnavailableError(
        f"No Tesseract language data for {settings.SEMSEARCH_OCR_LANGUAGES!r} in "
        f"{configured or ' or '.join(TESSDATA_CANDIDATES)}: install Debian's tesseract-ocr-eng "
        "(or set SEMSEARCH_OCR_TESSDATA)."
    )


class _Engine:
    def __init__(self) -> None:
        try:
            import tesserocr
        except ImportError as exc:
            raise OcrUnavailableError(f"The tesserocr package is not installed ({exc}).") from exc
        self._tesserocr = tesserocr
        self.api = tesserocr.PyTessBaseAPI(path=_tessdata() + "/", lang=settings.SEMSEARCH_OCR_LANGUAGES)
        self.name = f"tesseract {tesserocr.tesseract_version().split()[1]} ({settings.SEMSEARCH_OCR_LANGUAGES})"
        self.lock = threading.Lock()

    def read_once(self, picture: PILImage.Image, deadline: float) -> tuple[str, list[int]]:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise OcrTimeoutError(f"OCR took longer than {settings.SEMSEARCH_OCR_TIMEOUT_SECONDS} s")
        self.api.SetImage(picture)
        if not self.api.Recognize(timeout=remaining_ms):
            raise OcrTimeoutError(f"OCR took longer than {settings.SEMSEARCH_OCR_TIMEOUT_SECONDS} s")
        return self.api.GetUTF8Text(), list(self.api.AllWordConfidences())


@cache
def _engine() -> _Engine:
    return _Engine()


def ocr_engine_reset() -> None:
    """Forget this process's engine, so the next use re-reads the settings (after changing them; tests)."""
    _engine.cache_clear()


def ocr_status() -> dict[str, Any]:
    """``{"enabled", "available", "engine", "reason"}``: whether pictures are read and, if not, why. Never raises."""
    if not settings.SEMSEARCH_OCR:
        return {"enabled": False, "available": False, "engine": None, "reason": "SEMSEARCH_OCR is off."}
    try:
        engine = _engine()
    except Exception as exc:  # reported, never raised: OCR is optional
        return {"enabled": True, "available": False, "engine": None, "reason": str(exc)}
    return {"enabled": True, "available": True, "engine": engine.name, "reason": None}


def ocr_engine_name() -> str:
    """The engine's name and version; raises ``OcrUnavailableError``."""
    return _engine().name


def ocr_read(*, picture: PILImage.Image) -> OcrReading:
    """Read the text in ``picture`` (any orientation tried in ``RETRY_ANGLES``). Pure apart from CPU time.

    Raises ``OcrUnavailableError`` or ``OcrTimeoutError`` (the whole picture, all orientations, gets
    ``SEMSEARCH_OCR_TIMEOUT_SECONDS``).
    """
    engine = _engine()
    started = time.monotonic()
    deadline = started + settings.SEMSEARCH_OCR_TIMEOUT_SECONDS
    picture = _prepared(picture)
    background = picture.getpixel((0, 0))
    best = ("", 0)
    with engine.lock:
        for angle in (0, *RETRY_ANGLES):
            turned = picture if angle == 0 else picture.rotate(angle, expand=True, fillcolor=background)
            text, confidences = engine.read_once(turned, deadline)
            confident = [c for c in confidences if c >= CONFIDENT]
            if len(confident) > best[1]:
                best = (text, len(confident))
            if confident and sum(confident) / len(confident) >= GOOD_ENOUGH:
                break
    text = best[0] if best[1] else ""
    return OcrReading(text=" ".join(text.split()), confident_words=best[1], seconds=time.monotonic() - started)


def _prepared(picture: PILImage.Image) -> PILImage.Image:
    """RGB, no larger than ``SEMSEARCH_OCR_MAX_SIDE`` on its long side (text stays legible; time stays bounded)."""
    picture = picture.convert("RGB")
    longest = max(picture.size)
    if longest > settings.SEMSEARCH_OCR_MAX_SIDE:
        scale = settings.SEMSEARCH_OCR_MAX_SIDE / longest
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
    return picture
