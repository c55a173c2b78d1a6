"""Safe decoding: a corpus of hostile and awkward inputs, each with its clear outcome and nothing stored."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image as PILImage

from images.models import Image
from images.services import ImageRejectedError, decode_image, image_ingest

from .pictures import halves_jpeg, picture_bytes, png_chunk, png_declaring, rgb_close, stored_files

ALLOWED = "allowed: JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF"


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def noisy_jpeg() -> bytes:
    image = PILImage.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def noisy_png() -> bytes:
    buffer = io.BytesIO()
    PILImage.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML_THEN_PNG = b"<html><body><script>alert(1)</script></body></html>" + picture_bytes("PNG")

REJECTED = [
    ("zero bytes", b"", "The file is empty."),
    ("random bytes", os.urandom(4096), f"not a readable image in an allowed format; {ALLOWED}"),
    ("text named .jpg", b"just some notes, not a picture\n" * 20, "not a readable image"),
    ("truncated JPEG", truncated(noisy_jpeg()), "JPEG file is truncated or corrupt"),
    ("truncated PNG", truncated(noisy_png()), "PNG file is truncated or corrupt"),
    ("huge declared size, tiny data", png_declaring(100_000, 100_000, idat=b"\0" * 10), "over the limit"),
    ("declared size with no pixel data", png_declaring(400, 300), "PNG file is truncated or corrupt"),
    ("SVG with a script", SVG, f"SVG is not an allowed format; {ALLOWED}"),
    ("HTML with a PNG inside", HTML_THEN_PNG, "HTML is not an allowed format"),
    ("PDF", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF is not an allowed format"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("case", "data", "message"), REJECTED, ids=[case for case, _, _ in REJECTED])
def test_bad_input_is_rejected_with_a_clear_error_and_nothing_stored(case, data, message, media_root):
    # Given hostile bytes, when they are ingested
    with pytest.raises(ImageRejectedError) as caught:
        image_ingest(data=data, filename="photo.jpg")
    # Then the error says why in one line, and neither a row nor a file was stored
    assert message in caught.value.message
    assert "\n" not in caught.value.message
    assert Image.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_png_bomb_over_the_pixel_limit_is_rejected_before_decoding(settings, media_root):
    # Given a 2000×1000 PNG (tiny when compressed) and a limit of one million pixels
    settings.SEMSEARCH_MAX_IMAGE_PIXELS = 1_000_000
    bomb = picture_bytes("PNG", size=(2000, 1000), color=0, mode="L")
    assert len(bomb) < 20_000
    # When it is ingested, then it is refused naming the declared size and the limit
    with pytest.raises(ImageRejectedError, match=r"2000×1000 = 2,000,000 pixels, over the limit of 1,000,000"):
        image_ingest(data=bomb)
    assert Image.objects.count() == 0
    assert stored_files(media_root) == []


def test_one_by_one_image_is_accepted():
    decoded = decode_image(picture_bytes("PNG", size=(1, 1), color=(1, 2, 3)))
    assert (decoded.width, decoded.height, decoded.format) == (1, 1, "PNG")
    assert decoded.image.getpixel((0, 0)) == (1, 2, 3)


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    decoded = decode_image(picture_bytes("PNG", size=(8, 8), color=40000, mode="I;16"))
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((3, 3)) == (155, 155, 155)  # 40000 / 65535 * 255


def test_cmyk_jpeg_becomes_rgb_with_the_right_colour():
    decoded = decode_image(picture_bytes("JPEG", size=(16, 16), color=(0, 255, 255, 0), mode="CMYK"))
    assert decoded.image.mode == "RGB"
    assert rgb_close(decoded.image.getpixel((8, 8)), (255, 0, 0))


def test_animated_gif_decodes_its_first_frame():
    frames = [PILImage.new("RGB", (10, 10), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode_image(buffer.getvalue())
    assert decoded.format == "GIF"
    assert rgb_close(decoded.image.getpixel((5, 5)), (255, 0, 0))


def test_palette_png_transparency_is_composited_on_white():
    image = PILImage.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 5, 10))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=0)
    decoded = decode_image(buffer.getvalue())
    assert decoded.image.getpixel((2, 5)) == (255, 0, 0)
    assert decoded.image.getpixel((8, 5)) == (255, 255, 255)


def test_rgba_alpha_is_composited_on_white():
    decoded = decode_image(picture_bytes("PNG", size=(4, 4), color=(0, 0, 0, 0), mode="RGBA"))
    assert decoded.image.getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("fmt", "name"), [("WEBP", "WebP"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("HEIF", "HEIC"), ("AVIF", "AVIF")]
)
def test_every_allowed_format_decodes(fmt, name):
    decoded = decode_image(picture_bytes(fmt, size=(24, 16), color=(0, 0, 255)))
    assert (decoded.format, decoded.width, decoded.height) == (name, 24, 16)
    assert rgb_close(decoded.image.getpixel((12, 8)), (0, 0, 255))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("orientation", "top", "bottom"), [(6, (255, 0, 0), (0, 0, 255)), (8, (0, 0, 255), (255, 0, 0))]
)
def test_exif_rotated_jpeg_gets_an_upright_thumbnail(orientation, top, bottom, media_root):
    # Given a landscape JPEG (red left, blue right) that EXIF says to display rotated
    result = image_ingest(data=halves_jpeg(orientation=orientation), filename="rotated.jpg")
    # Then the row has the displayed (portrait) size and the thumbnail is upright
    assert (result.image.width, result.image.height) == (20, 40)
    with PILImage.open(media_root / result.image.thumbnail.name) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (20, 40)
        rgb = thumb.convert("RGB")
        assert rgb_close(rgb.getpixel((10, 3)), top, tolerance=40)
        assert rgb_close(rgb.getpixel((10, 36)), bottom, tolerance=40)


@pytest.mark.django_db
def test_html_in_a_png_text_chunk_is_stored_as_a_png(media_root):
    # Given a valid PNG carrying HTML in a text chunk (a polyglot)
    png = picture_bytes("PNG")
    polyglot = png[:33] + png_chunk(b"tEXt", b"Comment\0<html><script>alert(1)</script></html>") + png[33:]
    # When ingested, then it is kept as the PNG it is (and served as image/png: see test_media)
    result = image_ingest(data=polyglot)
    assert result.image.format == "PNG"
    assert result.image.original.name.endswith(".png")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("..\\..\\windows\\evil.png", "evil.png"),
        ("/abs/path/x.png", "x.png"),
        ("bad\x00name\n.png", "bad_name_.png"),
        ("a" * 400 + ".png", "a" * 251 + ".png"),
    ],
)
def test_file_names_are_only_metadata_and_made_safe(filename, expected, media_root):
    # Given a hostile file name, when the image is ingested
    result = image_ingest(data=picture_bytes("PNG", color=(len(filename) % 256, 0, 0)), filename=filename)
    # Then the stored name is a safe last component, and the file itself is named by its hash inside MEDIA_ROOT
    assert result.image.original_filename == expected
    assert len(result.image.original_filename) <= 255
    original = (media_root / result.image.original.name).resolve()
    assert original.is_relative_to(media_root.resolve())
    assert original.name == f"{result.image.content_hash}.png"


def large_halves_jpeg(*, orientation: int = 1, size: tuple[int, int] = (1024, 768)) -> bytes:
    """A photo-sized JPEG, left half red and right half blue, with an EXIF orientation."""
    image = PILImage.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def test_a_jpeg_for_a_thumbnail_decodes_at_the_thumbnails_size():
    # libjpeg-turbo's 3/8 scale: a 1024×768 photo comes out at exactly the 384 px thumbnail, the full size reported
    decoded = decode_image(large_halves_jpeg(), max_side=384)
    assert (decoded.width, decoded.height) == (1024, 768)
    assert (decoded.image.mode, decoded.image.size) == ("RGB", (384, 288))
    assert rgb_close(decoded.image.getpixel((40, 144)), (255, 0, 0))
    assert rgb_close(decoded.image.getpixel((340, 144)), (0, 0, 255))


def test_a_reduced_decode_always_covers_the_requested_side():
    for size in ((4000, 3000), (3000, 4000), (1000, 999), (385, 100), (200, 100)):
        decoded = decode_image(large_halves_jpeg(size=size), max_side=384)
        assert max(decoded.image.size) >= min(384, max(size)), size
        assert decoded.image.size[0] / decoded.image.size[1] == pytest.approx(size[0] / size[1], rel=0.02)


@pytest.mark.parametrize(
    ("orientation", "top", "bottom"), [(6, (255, 0, 0), (0, 0, 255)), (8, (0, 0, 255), (255, 0, 0))]
)
def test_a_reduced_decode_is_upright(orientation, top, bottom):
    decoded = decode_image(large_halves_jpeg(orientation=orientation), max_side=384)
    assert (decoded.width, decoded.height) == (768, 1024)
    assert decoded.image.size == (288, 384)
    assert rgb_close(decoded.image.getpixel((144, 20)), top)
    assert rgb_close(decoded.image.getpixel((144, 360)), bottom)


def test_grey_and_cmyk_jpegs_decode_reduced_as_rgb():
    grey = decode_image(picture_bytes("JPEG", size=(800, 600), color=90, mode="L"), max_side=384)
    assert (grey.image.mode, grey.image.size) == ("RGB", (400, 300))  # 4/8: 3/8 would be under 384 px
    assert rgb_close(grey.image.getpixel((10, 10)), (90, 90, 90))
    cmyk = decode_image(picture_bytes("JPEG", size=(800, 600), color=(0, 255, 255, 0), mode="CMYK"), max_side=384)
    assert cmyk.image.mode == "RGB"
    assert max(cmyk.image.size) >= 384
    assert rgb_close(cmyk.image.getpixel((10, 10)), (255, 0, 0))


def test_a_truncated_jpeg_is_rejected_also_when_decoded_for_a_thumbnail():
    with pytest.raises(ImageRejectedError, match="JPEG file is truncated or corrupt"):
        decode_image(truncated(large_halves_jpeg()), max_side=384)
