"""Synthetic captioned pictures (coloured shapes) that the bundled tiny CLIP understands.

The training script (``tools/train_tiny_clip.py``), the offline demo and the tests all draw pictures from this one
generator, so a picture made here is "in distribution" for the toy model. Pure PIL + ``random``; no torch.
Everything is deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

from PIL import Image, ImageDraw

KINDS: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 230),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 170),
    "orange": (250, 140, 20),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (10, 10, 10),
    "grey": (128, 128, 128),
    "blue": (40, 70, 230),
}
COUNTS: tuple[int, ...] = (1, 2, 3, 4)
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "centre")

_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
_PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars", "cross": "crosses"}
_POSITION_PHRASES = {
    "left": ("on the left", "at the left", "in the left half"),
    "right": ("on the right", "at the right", "in the right half"),
    "top": ("at the top", "in the top half", "near the top"),
    "bottom": ("at the bottom", "in the bottom half", "near the bottom"),
    "centre": ("in the centre", "in the middle", "at the center"),
}
# Regions (left, top, right, bottom) as fractions of the picture for each position.
_REGIONS = {
    "left": (0.0, 0.0, 0.5, 1.0),
    "right": (0.5, 0.0, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.5),
    "bottom": (0.0, 0.5, 1.0, 1.0),
    "centre": (0.2, 0.2, 0.8, 0.8),
}
_TEMPLATES = (
    "{count_phrase} {colour} {kind_word} {position} on a {background} background",
    "a photo of {count_phrase} {colour} {kind_word} {position}, {background} background",
    "{count_phrase} {colour} {kind_word} on {background} {position}",
    "a {background} picture with {count_phrase} {colour} {kind_word} {position}",
    "{position}: {count_phrase} {colour} {kind_word}, on a {background} background",
    "an image of {count_phrase} {colour} {kind_word} {position} over a plain {background} background",
    "{background} background, {count_phrase} {colour} {kind_word} {position}",
)


@dataclass(frozen=True)
class ShapeAttributes:
    """What a toy picture shows; two pictures with equal attributes count as the same answer in retrieval."""

    kind: str
    colour: str
    count: int
    background: str
    position: str

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)


def render_shape_picture(
    *,
    kind: str,
    colour: str,
    count: int,
    background: str,
    position: str,
    size: int = 224,
    seed: int = 0,
) -> Image.Image:
    """Draw ``count`` ``colour`` ``kind`` shapes in the ``position`` region of a ``background`` RGB square picture.

    ``seed`` varies the exact sizes, placements, rotations and a slight colour jitter. Raises ``ValueError`` for an
    unknown attribute value or when the shape colour equals the background colour. Pure function, no side effects.
    """
    _validate(kind=kind, colour=colour, count=count, background=background, position=position)
    rng = random.Random(seed)
    scale = 2  # draw at twice the size, then downsample: smooth edges like a photo of a shape
    canvas = size * scale
    bg = _jitter(BACKGROUNDS[background], rng, 8)
    image = Image.new("RGB", (canvas, canvas), bg)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = (int(f * canvas) for f in _REGIONS[position])
    region_w, region_h = right - left, bottom - top
    # A grid inside the region gives each shape its own cell, so shapes never overlap and stay countable.
    cols = 1 if count == 1 else 2
    rows = 1 if count <= 2 else 2
    if region_w < region_h and count == 2:
        cols, rows = 1, 2
    cell_w, cell_h = region_w / cols, region_h / rows
    cells = [(c, r) for r in range(rows) for c in range(cols)]
    rng.shuffle(cells)
    fill = _jitter(COLOURS[colour], rng, 12)
    for c, r in cells[:count]:
        radius = min(cell_w, cell_h) * rng.uniform(0.26, 0.38)
        cx = left + cell_w * (c + 0.5) + rng.uniform(-0.08, 0.08) * cell_w
        cy = top + cell_h * (r + 0.5) + rng.uniform(-0.08, 0.08) * cell_h
        _draw_shape(draw, kind, cx, cy, radius, rng.uniform(-0.3, 0.3), fill)
    return image.resize((size, size), Image.Resampling.BOX)


def caption_for(attributes: ShapeAttributes, rng: random.Random) -> str:
    """A caption in one of several templates that mentions every attribute."""
    count = attributes.count
    kind_word = attributes.kind if count == 1 else _PLURALS[attributes.kind]
    if count == 1:
        count_phrase = rng.choice(("a", "one", "a single"))
    else:
        count_phrase = rng.choice((_COUNT_WORDS[count], _COUNT_WORDS[count], str(count)))
    template = rng.choice(_TEMPLATES)
    text = template.format(
        count_phrase=count_phrase,
        colour=attributes.colour,
        kind_word=kind_word,
        position=rng.choice(_POSITION_PHRASES[attributes.position]),
        background=attributes.background,
    )
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def canonical_caption(attributes: ShapeAttributes) -> str:
    """The plainest caption for ``attributes`` (first template, word counts)."""
    count = attributes.count
    kind_word = attributes.kind if count == 1 else _PLURALS[attributes.kind]
    count_phrase = "a" if count == 1 else _COUNT_WORDS[count]
    return _TEMPLATES[0].format(
        count_phrase=count_phrase,
        colour=attributes.colour,
        kind_word=kind_word,
        position=_POSITION_PHRASES[attributes.position][0],
        background=attributes.background,
    )


def random_attributes(rng: random.Random) -> ShapeAttributes:
    """Uniformly random valid attributes (the shape colour never equals the background colour)."""
    while True:
        colour = rng.choice(tuple(COLOURS))
        background = rng.choice(tuple(BACKGROUNDS))
        if colour != background:
            break
    return ShapeAttributes(
        kind=rng.choice(KINDS),
        colour=colour,
        count=rng.choice(COUNTS),
        background=background,
        position=rng.choice(POSITIONS),
    )


def random_captioned_pictures(n: int, seed: int, *, size: int = 224) -> list[tuple[Image.Image, str, ShapeAttributes]]:
    """``n`` (picture, caption, attributes) triples, deterministic for ``seed``."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        attributes = random_attributes(rng)
        picture = render_shape_picture(kind=attributes.kind, colour=attributes.colour, count=attributes.count,
                                       background=attributes.background, position=attributes.position, size=size,
                                       seed=rng.getrandbits(32))  # fmt: skip
        out.append((picture, caption_for(attributes, rng), attributes))
    return out


def _validate(*, kind: str, colour: str, count: int, background: str, position: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; expected one of {', '.join(COLOURS)}")
    if count not in COUNTS:
        raise ValueError(f"count must be one of {COUNTS}, got {count!r}")
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; expected one of {', '.join(BACKGROUNDS)}")
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}; expected one of {', '.join(POSITIONS)}")
    if colour == background:
        raise ValueError(f"a {colour} shape on a {background} background would be invisible")


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, v + rng.randint(-amount, amount))) for v in rgb)
    return (r, g, b)


def _draw_shape(
    draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, radius: float, angle: float, fill: tuple[int, int, int]
) -> None:
    if kind == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
        return
    if kind == "square":
        points = _polygon(cx, cy, radius * 1.25, 4, angle + math.pi / 4)
    elif kind == "triangle":
        points = _polygon(cx, cy, radius * 1.25, 3, angle - math.pi / 2)
    elif kind == "star":
        outer = _polygon(cx, cy, radius * 1.3, 5, angle - math.pi / 2)
        inner = _polygon(cx, cy, radius * 0.55, 5, angle - math.pi / 2 + math.pi / 5)
        points = [p for pair in zip(outer, inner, strict=True) for p in pair]
    else:  # cross: two bars
        arm, half = radius * 1.15, radius * 0.38
        bars = [
            [(-arm, -half), (arm, -half), (arm, half), (-arm, half)],
            [(-half, -arm), (half, -arm), (half, arm), (-half, arm)],
        ]
        cos_a, sin_a = math.cos(angle), math.sin(angle)
        for bar in bars:
            draw.polygon([(cx + x * cos_a - y * sin_a, cy + x * sin_a + y * cos_a) for x, y in bar], fill=fill)
        return
    draw.polygon(points, fill=fill)


def _polygon(cx: float, cy: float, radius: float, sides: int, angle: float) -> list[tuple[float, float]]:
    return [
        (
            cx + radius * math.cos(angle + 2 * math.pi * i / sides),
            cy + radius * math.sin(angle + 2 * math.pi * i / sides),
        )
        for i in range(sides)
    ]


def photo_like_picture(width: int, height: int, seed: int = 0) -> Image.Image:
    """A ``width`` x ``height`` RGB picture with photo-like statistics (smooth colour fields, edges, texture and
    sensor noise) for preprocessing tests and benchmarks; JPEG-compresses like a photo, not like flat art."""
    import numpy as np

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    detail = rng.integers(0, 256, size=(max(2, height // 24), max(2, width // 24), 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(detail).resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    pixels = 0.75 * base + 0.25 * texture + rng.normal(0, 6, size=(height, width, 3)).astype(np.float32)
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    shape_rng = random.Random(seed)
    for _ in range(6):  # a few hard edges, like objects in a scene
        x0, y0 = shape_rng.uniform(0, width), shape_rng.uniform(0, height)
        w, h = shape_rng.uniform(0.05, 0.4) * width, shape_rng.uniform(0.05, 0.4) * height
        fill = tuple(shape_rng.randint(0, 255) for _ in range(3))
        if shape_rng.random() < 0.5:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=fill)
        else:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=fill)
    return picture
