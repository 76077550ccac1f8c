"""Upload validation and normalisation: the only place uploaded bytes are decoded.

docs/SECURITY.md rules 6–7. An upload becomes an attachment only by being decoded here with
Pillow restricted to PNG, JPEG, WEBP and GIF (first frame), within byte and pixel caps, and
re-encoded from pixels: metadata (EXIF with GPS, XMP, comments, text chunks) never survives,
EXIF orientation is applied first, colour profiles are converted to sRGB, and anything too
big for a route is scaled down to the longest side a model can use. The output format is
chosen from the pixels, never from the client's file name or content type:

- opaque photos (JPEG, lossy WEBP sources) -> JPEG;
- opaque graphics (PNG, GIF sources: screenshots, diagrams) -> PNG, or JPEG if the PNG would
  be big (a photo saved as PNG);
- images whose transparency matters -> PNG, or lossy WEBP (with alpha) if the PNG would be big.

Every refusal is an `ImageRejected` whose message a person can act on and names the limit.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import threading
import warnings
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
FORMATS_IN_WORDS = "PNG, JPEG, WEBP or GIF"

# Output encodings: (format, MIME type, extension). Only these are ever stored or served.
JPEG = ("JPEG", "image/jpeg", "jpg")
PNG = ("PNG", "image/png", "png")
WEBP = ("WEBP", "image/webp", "webp")
MIME_TYPES = frozenset({JPEG[1], PNG[1], WEBP[1]})

JPEG_QUALITY = 85
WEBP_QUALITY = 88
# A lossless encoding bigger than this is a photo in disguise: a lossy one costs far fewer
# request bytes (and tokens are the same).
LOSSLESS_MAX_BYTES = 4_000_000
# Longer than this times the shortest side, and scaling down to the longest side a route can
# use leaves a sliver a model cannot read (a 100 × 100,000 image would become 3 × 3,072).
MAX_ASPECT_RATIO = 50
# Thumbnails for the composer and the conversation: small, and WEBP keeps transparency.
THUMBNAIL_SIDE = 320
THUMBNAIL = ("WEBP", "image/webp", "webp")

# The declared size is checked by Pillow as it opens a file: make its bomb threshold ours, so
# a decompression bomb is refused with the same limit a person is told about. Process-wide on
# purpose (it is Pillow's configuration); DecompressionBombWarning is made an error only
# locally, around the decode, below.
Image.MAX_IMAGE_PIXELS = settings.CHAT_IMAGE_LIMITS["max_pixels"]

# `warnings.catch_warnings` swaps the process-wide filter list (until Python 3.14), so two
# threads interleaving it could leave the "error" filter installed or drop one: the decode
# (open + load) runs one at a time per process. Scaling and encoding, most of the work, run
# outside the lock; `_WORK_SLOTS` bounds how many full-size images are in memory at once.
_DECODE_LOCK = threading.Lock()
_WORK_SLOTS = threading.BoundedSemaphore(2)

# HTML or script inside an image file (a polyglot: an image that a browser sniffing content
# would run as a page). Real photos' XMP packets (<x:xmpmeta, <rdf:...) do not match.
_MARKUP = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|script|iframe|svg|object|embed|"
    rb"meta\s+http-equiv)[\s>/]",
    re.IGNORECASE,
)


class ImageRejected(Exception):
    """An upload that will not become an attachment; `message` says why and names the limit."""

    status = 400

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ImageTooLarge(ImageRejected):
    status = 413


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    max_pixels: int
    # PNG, WEBP and GIF decode at full size (a JPEG decodes at a reduced scale when it will be
    # scaled down anyway), so their pixel count is what bounds the memory one upload takes.
    lossless_max_pixels: int
    longest_side: int

    @classmethod
    def from_settings(cls) -> Limits:
        limits = settings.CHAT_IMAGE_LIMITS
        return cls(
            max_bytes=limits["max_bytes"],
            max_pixels=limits["max_pixels"],
            lossless_max_pixels=limits["lossless_max_pixels"],
            longest_side=upload_longest_side(),
        )


@dataclass(frozen=True, slots=True)
class NormalisedImage:
    data: bytes
    mime_type: str
    extension: str
    width: int
    height: int
    sha256: str
    thumbnail: bytes
    thumbnail_mime_type: str
    thumbnail_extension: str
    source_format: str


def upload_longest_side() -> int:
    """The longest side an upload is scaled to: the largest any configured route can use, so
    that one stored image serves every route (smaller ones are fitted at send time)."""
    return max(route_limits(route)["longest_side"] for route in [*settings.PROVIDERS, "default"])


def route_limits(route: str) -> dict[str, int]:
    """Image limits of a route: `longest_side` (px) and `request_bytes` (the whole request,
    images base64-encoded). Routes not listed use the "default" entry."""
    routes = settings.CHAT_IMAGE_ROUTES
    return {**routes["default"], **routes.get(route, {})}


def megabytes(size: int) -> str:
    """Sizes as people read them (decimal megabytes, as file managers show them)."""
    value = size / 1_000_000
    if value >= 10 or value == int(value):
        return f"{value:,.0f} MB"
    return f"{value:.1f} MB"


def megapixels(pixels: int) -> str:
    value = pixels / 1_000_000
    return f"{value:,.0f} megapixels" if value >= 10 else f"{value:.1f} megapixels"


# --- Validation and normalisation ------------------------------------------------------------


def normalise(fp: IO[bytes], *, limits: Limits | None = None) -> NormalisedImage:
    """Decode, check and re-encode one uploaded image. Raises ImageRejected (400) or
    ImageTooLarge (413); nothing is written anywhere."""
    limits = limits or Limits.from_settings()
    return normalise_bytes(read_upload(fp, limits=limits), limits=limits)


def read_upload(fp: IO[bytes], *, limits: Limits | None = None) -> bytes:
    """The upload's bytes, within the byte limit (ImageTooLarge past it): read before any
    decoding, so a file already stored can be recognised by its hash without decoding it."""
    return _read_capped(fp, (limits or Limits.from_settings()).max_bytes)


def upload_digest(raw: bytes) -> str:
    """The hash that recognises an upload sent again, before it is decoded."""
    return hashlib.sha256(raw).hexdigest()


def normalise_bytes(raw: bytes, *, limits: Limits | None = None) -> NormalisedImage:
    """`normalise` for bytes already read by `read_upload`. At most two run at once in a
    process (`_WORK_SLOTS`): a decoded image can take a gigabyte."""
    limits = limits or Limits.from_settings()
    with _WORK_SLOTS:
        image, source_format = _decode(raw, limits)
        _check_trailing_data(raw, source_format)
        del raw
        ImageOps.exif_transpose(image, in_place=True)
        image = _basic_mode(image)
        image = _scaled(image, limits.longest_side)
        image = _to_srgb(image)
        image = _drop_opaque_alpha(image)
        data, (_, mime_type, extension) = _encode(image, source_format)
        thumbnail = _thumbnail(image)
    return NormalisedImage(
        data=data,
        mime_type=mime_type,
        extension=extension,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(data).hexdigest(),
        thumbnail=thumbnail,
        thumbnail_mime_type=THUMBNAIL[1],
        thumbnail_extension=THUMBNAIL[2],
        source_format=source_format,
    )


def fit(data: bytes, mime_type: str, longest_side: int) -> tuple[bytes, int, int]:
    """A stored (already normalised) image scaled down to `longest_side`, for a route that
    takes smaller images than the largest configured one. Same format as stored."""
    with Image.open(io.BytesIO(data), formats=FORMATS) as image:
        image.load()
        scaled = _scaled(image, longest_side)
        encoding = next(e for e in (JPEG, PNG, WEBP) if e[1] == mime_type)
        return _save(scaled, encoding), scaled.width, scaled.height


def _read_capped(fp: IO[bytes], max_bytes: int) -> bytes:
    size = getattr(fp, "size", None)
    if isinstance(size, int) and size > max_bytes:
        raise ImageTooLarge(
            f"This image is {megabytes(size)}; the limit is {megabytes(max_bytes)}."
        )
    raw = fp.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ImageTooLarge(f"This file is over {megabytes(max_bytes)}, the limit for an image.")
    if not raw:
        raise ImageRejected("This file is empty. Attach a PNG, JPEG, WEBP or GIF image.")
    return raw


def _check_not_markup(raw: bytes) -> None:
    if _MARKUP.search(raw):
        raise ImageRejected(
            "This file contains HTML or script as well as image data, so it was refused: only "
            f"plain {FORMATS_IN_WORDS} images are accepted."
        )


def _check_trailing_data(raw: bytes, source_format: str) -> None:
    """A PNG ends with its IEND chunk and a WEBP with its RIFF chunk: anything after them is
    another file glued on (JPEG is not checked: phones append motion-photo and depth data)."""
    extra = False
    if source_format == "PNG":
        end = _png_end(raw)
        extra = end is None or len(raw) > end
    elif source_format == "WEBP" and len(raw) >= 8:
        riff_size = struct.unpack_from("<I", raw, 4)[0]
        extra = len(raw) > 8 + riff_size + (riff_size & 1)
    if extra:
        raise ImageRejected(
            "This file has extra data after the end of the image (another file hidden in it), "
            f"so it was refused: only plain {FORMATS_IN_WORDS} images are accepted."
        )


def _png_end(raw: bytes) -> int | None:
    """Where the IEND chunk ends, walking the chunks by their lengths (a search for "IEND"
    would be fooled by those bytes in the data glued on)."""
    offset = 8
    while offset + 8 <= len(raw):
        length, kind = struct.unpack_from(">I4s", raw, offset)
        offset += 12 + length
        if kind == b"IEND":
            return offset
    return None


def _decode(raw: bytes, limits: Limits) -> tuple[Image.Image, str]:
    """Open and load the first frame, within the caps; JPEGs decode at the smallest scale
    that still covers the longest side we keep."""
    with _DECODE_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(raw), formats=FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(exc, limits) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error):
            raise ImageRejected(
                f"This file is not a {FORMATS_IN_WORDS} image (the formats accepted)."
            ) from None
        # Phones often write MPO: a JPEG with more pictures (depth, previews) after it.
        source_format = "JPEG" if image.format == "MPO" else image.format or ""
        width, height = image.size
        _check_dimensions(width, height, source_format, limits)
        _check_not_markup(raw)
        if source_format == "JPEG":
            longest = max(width, height)
            if longest > limits.longest_side:
                scale = limits.longest_side / longest
                image.draft(None, (max(1, int(width * scale)), max(1, int(height * scale))))
        try:
            image.seek(0)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(exc, limits) from None
        except MemoryError:
            raise ImageTooLarge(
                f"This image is too large to read; the limit is {megapixels(limits.max_pixels)}."
            ) from None
        except Exception:
            # Truncated data, corrupt chunks, bad Huffman tables...: Pillow raises OSError,
            # ValueError, SyntaxError or struct.error depending on the format and the fault.
            raise ImageRejected(
                "This image is damaged or incomplete and could not be read. Attach a complete "
                f"{FORMATS_IN_WORDS} image."
            ) from None
    return image, source_format


def _check_dimensions(width: int, height: int, source_format: str, limits: Limits) -> None:
    pixels = width * height
    size = f"{width:,} × {height:,} pixels"
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"This image is {size} ({megapixels(pixels)}); the limit is "
            f"{megapixels(limits.max_pixels)}."
        )
    if source_format != "JPEG" and pixels > limits.lossless_max_pixels:
        raise ImageTooLarge(
            f"This {source_format} image is {size} ({megapixels(pixels)}); {source_format} "
            f"images can be at most {megapixels(limits.lossless_max_pixels)} (JPEG photos up "
            f"to {megapixels(limits.max_pixels)})."
        )
    longest, shortest = max(width, height), min(width, height)
    if longest > limits.longest_side and longest > MAX_ASPECT_RATIO * shortest:
        raise ImageRejected(
            f"This image is {size}: too long and thin to be read once scaled down to "
            f"{limits.longest_side:,} pixels (the longest side can be at most "
            f"{MAX_ASPECT_RATIO} times the shortest)."
        )


def _bomb(exc: Exception, limits: Limits) -> ImageTooLarge:
    match = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{megapixels(int(match.group(1)))}" if match else "more than that"
    return ImageTooLarge(f"This image is {size}; the limit is {megapixels(limits.max_pixels)}.")


def _basic_mode(image: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA or CMYK (CMYK is converted with its colour profile later)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return image
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode.startswith("I"):
        # 16-bit greyscale: scale to 8 bits (a plain conversion clips everything above 255).
        return image.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    if mode == "1":
        return image.convert("L")
    if mode in ("La", "RGBa"):
        return image.convert(mode.upper())
    return image.convert("RGBA" if "A" in mode else "RGB")


def _scaled(image: Image.Image, longest_side: int) -> Image.Image:
    width, height = image.size
    longest = max(width, height)
    if longest <= longest_side:
        return image
    scale = longest_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Bicubic (antialiased: Pillow widens the kernel by the scale) is visibly as good as
    # Lanczos here and a quarter faster; reducing_gap: a fast box reduction first, then the
    # filter over the last factor of 3 only.
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


_SRGB = ImageCms.createProfile("sRGB")


def _to_srgb(image: Image.Image) -> Image.Image:
    """Pixels in sRGB, without a profile (what models and browsers assume), so that dropping
    the profile does not shift colours (iPhone photos are Display P3; print JPEGs CMYK)."""
    if image.mode in ("L", "LA"):
        return image  # a grey profile changes brightness a little, never hue: dropped
    icc = image.info.get("icc_profile")
    target = "RGBA" if image.mode == "RGBA" else "RGB"
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if image.mode == "CMYK" or not _is_srgb(profile):
                converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode=target)
                if converted is not None:
                    return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a malformed profile: fall back to Pillow's plain conversion
    return image if image.mode == target else image.convert(target)


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    try:
        description = ImageCms.getProfileDescription(profile)
    except ImageCms.PyCMSError:
        return False
    return "srgb" in description.lower().replace(" ", "")


def _drop_opaque_alpha(image: Image.Image) -> Image.Image:
    if image.mode not in ("RGBA", "LA"):
        return image
    low, _ = image.getchannel("A").getextrema()
    if low == 255:
        return image.convert("RGB" if image.mode == "RGBA" else "L")
    return image


def _encode(image: Image.Image, source_format: str) -> tuple[bytes, tuple[str, str, str]]:
    has_alpha = image.mode in ("RGBA", "LA")
    if source_format in ("PNG", "GIF") or has_alpha:
        data = _save(image, PNG)
        if len(data) <= LOSSLESS_MAX_BYTES:
            return data, PNG
        if has_alpha:
            return _save(image, WEBP), WEBP
    return _save(image, JPEG), JPEG


def _save(image: Image.Image, encoding: tuple[str, str, str]) -> bytes:
    # A fresh `info` and no `exif`/`icc_profile` arguments: nothing from the upload's metadata
    # reaches the output (PNG would otherwise copy an ICC profile from `info`).
    image.info = {}
    out = io.BytesIO()
    fmt = encoding[0]
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif fmt == "PNG":
        image.save(out, "PNG", compress_level=6)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()


def _thumbnail(image: Image.Image) -> bytes:
    size = thumbnail_size(image.width, image.height)
    thumb = (
        image
        if size == image.size
        else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    )
    if thumb.mode not in ("RGB", "RGBA"):
        thumb = thumb.convert("RGBA" if "A" in thumb.mode else "RGB")
    thumb.info = {}
    out = io.BytesIO()
    thumb.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """The size of the thumbnail of an image of this size (also the width and height
    attributes of the <img> showing it, so the page does not jump as thumbnails load)."""
    longest = max(width, height, 1)
    if longest <= THUMBNAIL_SIDE:
        return width, height
    scale = THUMBNAIL_SIDE / longest
    return max(1, round(width * scale)), max(1, round(height * scale))
