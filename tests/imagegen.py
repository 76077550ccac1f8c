"""Test images, generated with Pillow (no binaries in the repository): good ones in every
accepted format and mode, and the hostile corpus of docs/SECURITY.md rules 6–7.

Big images are made from Pillow's C primitives (gradients, Gaussian noise) so that a 40 MB
photo takes about a second, not a minute of Python loops.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from functools import cache

from PIL import Image, ImageChops, ImageDraw

# GPS coordinates written into EXIF; they must never come out again.
GPS_LATITUDE = (51.0, 30.0, 26.34)
GPS_LONGITUDE = (0.0, 7.0, 39.54)


def photo(width: int, height: int, *, noise: int = 32, seed: int = 0) -> Image.Image:
    """Something that compresses like a photo: smooth gradients (sky, shading) under sensor
    noise. Deterministic: the same arguments give the same pixels (the same upload twice)."""
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    base = Image.merge("RGB", (horizontal, radial, vertical))
    # Uniform noise of ±`noise` levels around 128, from seeded random bytes.
    uniform = Image.frombytes("L", (width, height), random.Random(seed).randbytes(width * height))
    grain = uniform.point(lambda value: 128 + (value - 128) * noise / 128)
    grains = Image.merge(
        "RGB",
        (
            grain,
            grain.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            grain.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        ),
    )
    return ImageChops.add(base, grains, scale=1.0, offset=-128)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "TestPhone Inc."  # Make
    exif[0x0110] = "TestPhone 12"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = GPS_LATITUDE
    gps[3] = "W"
    gps[4] = GPS_LONGITUDE
    return exif


@cache
def phone_photo() -> bytes:
    """A 12-megapixel phone photo: 4032 × 3024 JPEG at quality 90, with EXIF (GPS, make,
    orientation)."""
    return encode(photo(4032, 3024), "JPEG", quality=90, exif=gps_exif().tobytes())


@cache
def huge_photo() -> bytes:
    """About 40 MB: a 43-megapixel JPEG (7600 × 5700) at quality 98."""
    return encode(photo(7600, 5700), "JPEG", quality=98)


def png(width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    image = photo(width, height).convert(mode) if mode != "RGBA" else _with_alpha(width, height)
    return encode(image, "PNG")


def _with_alpha(width: int, height: int) -> Image.Image:
    image = photo(width, height).convert("RGBA")
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, width - 1, height - 1), fill=255)
    image.putalpha(mask)
    return image


def jpeg(width: int = 64, height: int = 48, **options) -> bytes:
    return encode(photo(width, height), "JPEG", quality=90, **options)


def webp(width: int = 64, height: int = 48) -> bytes:
    return encode(photo(width, height), "WEBP", quality=85)


def gif(width: int = 64, height: int = 48, frames: int = 3) -> bytes:
    """An animated GIF: frame 0 is red, the others blue (only the first must be used)."""
    first = Image.new("RGB", (width, height), (220, 20, 20))
    rest = [Image.new("RGB", (width, height), (20, 20, 220)) for _ in range(frames - 1)]
    return encode(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)


def mpo(width: int = 64, height: int = 48) -> bytes:
    """A JPEG with a second picture after it (MPO), as many phones write."""
    first, second = photo(width, height), photo(width // 2, height // 2, seed=1)
    return encode(first, "MPO", save_all=True, append_images=[second], quality=90)


def cmyk_jpeg(width: int = 64, height: int = 48) -> bytes:
    return encode(photo(width, height).convert("CMYK"), "JPEG", quality=90)


def png16(width: int = 64, height: int = 48) -> bytes:
    """A 16-bit greyscale PNG whose values use the whole 0–65535 range."""
    gradient = Image.linear_gradient("L").rotate(90).resize((width, height)).convert("I")
    return encode(gradient.point(lambda value: value * 257).convert("I;16"), "PNG")


def png_rgb16(width: int = 32, height: int = 24) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow writes 8-bit RGB only)."""
    rows = b"".join(
        b"\x00" + b"".join(struct.pack(">HHH", x * 2000, y * 2000, 40000) for x in range(width))
        for y in range(height)
    )
    return _png_chunks(width, height, bit_depth=16, colour_type=2, data=zlib.compress(rows))


def one_pixel() -> bytes:
    return encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG")


def truncated_jpeg() -> bytes:
    data = jpeg(640, 480)
    return data[: len(data) // 2]


def png_html_polyglot() -> bytes:
    """A valid PNG with an HTML page after IEND: a browser sniffing it would run the script."""
    return png() + b"<html><body><script>alert(document.cookie)</script></body></html>"


def png_with_html_chunk() -> bytes:
    """A valid PNG with the HTML inside a text chunk (no trailing data)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    return encode(photo(64, 48), "PNG", pnginfo=info)


def png_with_trailing_zip() -> bytes:
    return png() + b"PK\x03\x04" + b"\x00" * 64


def png_with_fake_end() -> bytes:
    """Data glued on that ends like a PNG ("IEND" and its CRC), to fool a naive check."""
    return png() + b"PK\x03\x04" + b"\x00" * 32 + b"IEND\xae\x42\x60\x82"


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(1)</script><rect width="10" height="10"/></svg>'
)
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def _png_chunks(width: int, height: int, *, bit_depth: int, colour_type: int, data: bytes):
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def decompression_bomb(side: int = 50_000) -> bytes:
    """A greyscale PNG that claims side × side pixels (2.5 gigapixels) in a few kilobytes: the
    IDAT is zlib of zeros, compressed incrementally so making it costs no memory either."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    parts = [compressor.compress(row) for _ in range(64)]  # enough to look plausible
    parts.append(compressor.flush())
    return _png_chunks(side, side, bit_depth=8, colour_type=0, data=b"".join(parts))


def long_thin(width: int = 100, height: int = 100_000) -> bytes:
    return encode(Image.new("L", (width, height), 128), "PNG")
