"""Generated pictures with rendered words, for measuring OCR and for tests (pure PIL; deterministic per seed).

Each sample records the words drawn, so recall (the share of drawn words the engine read back) needs no labels.
Fonts come from Debian's ``fonts-dejavu-core`` and ``fonts-liberation2`` (whichever are installed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation2"))
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf", "LiberationSans-Regular.ttf",
              "LiberationSerif-Regular.ttf", "LiberationMono-Regular.ttf")  # fmt: skip
_WORD_TEXT = """
harbour market station garden coffee bakery museum library river bridge castle forest mountain village street
avenue square theatre cinema hotel school church window ticket receipt invoice total price open closed exit
entrance parking police taxi airport platform north south east west welcome sale discount fresh bread cheese
apple orange lemon butter sugar salt pepper water juice dinner lunch breakfast menu kitchen table chair lamp
paper pencil camera picture photo summer winter spring autumn monday friday sunday morning evening midnight
yellow purple silver golden planet rocket engine motor bicycle garage office meeting project report budget
agenda slide chapter lesson answer question
"""
WORDS = tuple(_WORD_TEXT.split())
# (name, text colour, background colour); the first is the "clear" scheme.
COLOUR_SCHEMES: tuple[tuple[str, tuple[int, int, int], tuple[int, int, int]], ...] = (
    ("black-on-white", (15, 15, 15), (250, 250, 250)),
    ("white-on-navy", (245, 245, 245), (20, 40, 110)),
    ("red-on-yellow", (200, 20, 20), (250, 225, 60)),
    ("grey-on-grey", (90, 90, 90), (175, 175, 175)),
)
SIZES = (14, 22, 36, 56)
ANGLES = (0, 8, 25, 90)
CLEAR_MIN_SIZE = 22


@dataclass(frozen=True)
class TextSample:
    """One generated picture and what was drawn on it."""

    image: Image.Image
    words: tuple[str, ...]
    size: int
    scheme: str
    angle: int
    font: str

    @property
    def clear(self) -> bool:
        """Horizontal, high-contrast, at least ``CLEAR_MIN_SIZE`` pixels: the text the recall target is about."""
        return self.angle == 0 and self.scheme == COLOUR_SCHEMES[0][0] and self.size >= CLEAR_MIN_SIZE


@cache
def fonts_available() -> tuple[Path, ...]:
    """The installed fonts among ``FONT_FILES`` (empty when neither Debian font package is installed)."""
    return tuple(folder / name for name in FONT_FILES for folder in FONT_DIRS if (folder / name).is_file())


def text_picture(
    *,
    lines: list[list[str]],
    size: int = 36,
    colour: tuple[int, int, int] = (15, 15, 15),
    background: tuple[int, int, int] = (250, 250, 250),
    angle: int = 0,
    font: Path | None = None,
) -> Image.Image:
    """A picture with ``lines`` of words drawn at ``size`` pixels, rotated by ``angle`` degrees (counter-clockwise)."""
    face = ImageFont.truetype(str(font or fonts_available()[0]), size)
    texts = [" ".join(line) for line in lines]
    spacing = int(size * 0.6)
    width = max(int(face.getlength(text)) for text in texts) + 2 * size
    height = len(texts) * (size + spacing) + 2 * size
    picture = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(picture)
    for row, text in enumerate(texts):
        draw.text((size, size + row * (size + spacing)), text, font=face, fill=colour)
    if angle:
        picture = picture.rotate(angle, expand=True, fillcolor=background, resample=Image.Resampling.BICUBIC)
    return picture


def text_samples(*, seed: int = 0, per_setting: int = 1) -> list[TextSample]:
    """Every combination of size, colour scheme and angle, ``per_setting`` times, with random words and fonts."""
    rng = random.Random(seed)
    fonts = fonts_available()
    samples = []
    for size in SIZES:
        for scheme, colour, background in COLOUR_SCHEMES:
            for angle in ANGLES:
                for _ in range(per_setting):
                    lines = [rng.sample(WORDS, rng.randint(2, 3)) for _ in range(rng.randint(1, 3))]
                    font = rng.choice(fonts)
                    image = text_picture(lines=lines, size=size, colour=colour, background=background,
                                         angle=angle, font=font)  # fmt: skip
                    words = tuple(word for line in lines for word in line)
                    samples.append(TextSample(image, words, size, scheme, angle, font.stem))
    return samples


def clear_text_samples(*, seed: int = 0, count: int = 12) -> list[TextSample]:
    """``count`` pictures of clear text (horizontal, black on white, ``CLEAR_MIN_SIZE`` pixels and up)."""
    rng = random.Random(seed)
    fonts = fonts_available()
    samples = []
    for i in range(count):
        size = [s for s in SIZES if s >= CLEAR_MIN_SIZE][i % 3]
        lines = [rng.sample(WORDS, rng.randint(2, 4)) for _ in range(rng.randint(1, 3))]
        font = rng.choice(fonts)
        _, colour, background = COLOUR_SCHEMES[0]
        image = text_picture(lines=lines, size=size, colour=colour, background=background, font=font)
        samples.append(TextSample(image, tuple(w for line in lines for w in line), size, COLOUR_SCHEMES[0][0], 0,
                                  font.stem))  # fmt: skip
    return samples


def words_recalled(*, expected: tuple[str, ...], text: str) -> int:
    """How many of ``expected`` appear as whole words in ``text`` (case-insensitive, punctuation ignored)."""
    found = {"".join(ch for ch in token if ch.isalnum()) for token in text.lower().split()}
    return sum(word.lower() in found for word in expected)
