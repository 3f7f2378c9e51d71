"""What a file really is, from its bytes; and for photos: EXIF capture time and GPS, and a cheap thumbnail.

Photos are decoded with bounded cost, whatever a client sends:

- **Pixels**: the header's pixel count is checked right after `Image.open` (which reads headers only) and before any
  pixel is decoded: above `MAX_PHOTO_PIXELS` the photo is `422 image_too_large`. Pillow's own decompression-bomb
  guard is set to the same count and made an error, as a second line.
- **Memory per decode**: a baseline JPEG is decoded in draft mode at 1/8 scale (libjpeg's DCT scaling), so even a
  50-megapixel photo needs a few MB. PNG, WebP and progressive JPEG cannot be decoded at reduced scale (a progressive
  JPEG keeps every DCT coefficient of the whole image), so they have a lower limit, `MAX_PHOTO_PIXELS_FULL_DECODE`.
  The thumbnail is made in place (no second full-size copy), orientation is applied to the thumbnail only, and the
  decoded image is closed before the thumbnail is encoded.
- **Decodes at once**: `inspect_photo_bounded` runs the decode in a worker thread holding one of `PHOTO_DECODES`
  tokens of a capacity limiter; other uploads wait in the event loop (not in a thread). Memory for decoding is thus at
  most `PHOTO_DECODES` x the largest per-decode peak.

EXIF is a hint, never a reason to refuse a photo: any error while reading the EXIF block, its time, its GPS or its
orientation drops that fact (no capture time or position from EXIF, no rotation) and the photo is accepted. Only a
photo whose pixels cannot be decoded is refused (`422 corrupt_file`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, TypeVar

import anyio
import anyio.to_thread
from PIL import Image, ImageFile

from backend.clock import agency_zone
from backend.errors import ErrorCode, ValidationFailed
from backend.settings import Settings

logger = logging.getLogger("backend.evidence.media")
T = TypeVar("T")

THUMBNAIL_SIZE = (320, 320)
THUMBNAIL_QUALITY = 80
# Area averaging: from the 1/8-scale draft (500x375 for 12 MP) to 320 px it looks as good as bicubic and costs less
# than half (0.9 vs 2.1 ms per photo on the benchmark machine).
THUMBNAIL_FILTER = Image.Resampling.BOX

PHOTO_FORMATS = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# MPO is how Pillow names a JPEG that carries more than one picture in an MPF segment: Ultra HDR gain maps, depth
# maps and previews that many phones add. The first picture is an ordinary JPEG, and that is the photo.
DRAFT_FORMATS = {"JPEG", "MPO"}
OPENERS = ["JPEG", "PNG", "WEBP"]  # only these plugins look at the bytes (Pillow's JPEG opener returns MPO files too)


@dataclass(frozen=True)
class PhotoLimits:
    """How big a photo may be, in pixels, and how many are decoded at once (see the module's docstring).

    - `max_pixels` (MAX_PHOTO_PIXELS, 52 MP): every full-resolution phone photo up to the 48- and 50-megapixel
      sensors (8000x6000, 8160x6120, 8192x6144 = 50.3 MP) with some room; the 64-, 108- and 200-megapixel
      full-resolution modes (which phones do not use by default: they bin to 12-12.5 MP) are refused.
    - `max_full_decode_pixels` (MAX_PHOTO_PIXELS_FULL_DECODE, 24 MP): PNG, WebP and progressive JPEG, decoded at full
      size, cost 4 bytes per pixel (8 with alpha or a palette, which are converted): at most ~100-200 MB each. 24 MP
      takes screenshots, long scrolled screenshots (1080x20000) and 20-megapixel photos.
    - `decodes` (PHOTO_DECODES, 2): decodes at once, one per core of the 2-core servers this runs on; memory for
      decoding stays below ~400 MB whatever arrives. More cores: raise it, memory permitting.
    """

    max_pixels: int = 52_000_000
    max_full_decode_pixels: int = 24_000_000
    decodes: int = 2

    @classmethod
    def of(cls, settings: Settings) -> PhotoLimits:
        return cls(
            max_pixels=settings.max_photo_pixels,
            max_full_decode_pixels=settings.max_photo_pixels_full_decode,
            decodes=settings.photo_decodes,
        )


LIMITS = PhotoLimits()  # until the app configures the process with its settings (backend/app.py)
_limiter: anyio.CapacityLimiter | None = None

ImageFile.LOAD_TRUNCATED_IMAGES = False
# Process-wide and set once (a `warnings.catch_warnings()` per call is not thread-safe, and decodes run in threads).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# A corrupt EXIF block is an expected oddity of field photos: its facts are dropped and the photo kept (see
# exif_facts), so Pillow's warnings about it would only fill the log with lines per such photo.
warnings.filterwarnings("ignore", category=UserWarning, module="PIL.TiffImagePlugin")


def configure_photo_limits(limits: PhotoLimits) -> None:
    """Use these limits from now on: the app's settings at start-up (tests try others)."""
    global LIMITS  # noqa: PLW0603 - one process-wide setting, as Pillow's own
    LIMITS = limits
    Image.MAX_IMAGE_PIXELS = max(limits.max_pixels, limits.max_full_decode_pixels)
    if _limiter is not None:
        _limiter.total_tokens = limits.decodes


configure_photo_limits(LIMITS)


def decode_limiter() -> anyio.CapacityLimiter:
    """The limiter every photo decode of this process holds a token of (created on first use)."""
    global _limiter  # noqa: PLW0603
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(LIMITS.decodes)
    return _limiter


@dataclass(frozen=True)
class PhotoFacts:
    content_type: str
    width: int
    height: int
    captured_at: datetime | None
    lat: float | None
    lng: float | None
    thumbnail: bytes


def _ftyp_brand(head: bytes) -> bytes | None:
    return head[8:12] if len(head) >= 12 and head[4:8] == b"ftyp" else None


def sniff(head: bytes) -> tuple[str, str] | None:  # noqa: PLR0911, PLR0912 - one flat table of magic numbers
    """(kind, content type) judged from the first bytes, or None when it is nothing we accept."""
    brand = _ftyp_brand(head)
    if head.startswith(b"\xff\xd8\xff"):
        return "photo", "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "photo", "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "photo", "image/webp"
    if head.startswith(b"%PDF-"):
        return "document", "application/pdf"
    if brand is not None:
        if brand in (b"M4A ", b"M4B "):
            return "audio", "audio/mp4"
        if brand.startswith(b"3g"):
            return "video", "video/3gpp"
        if brand == b"qt  ":
            return "video", "video/quicktime"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "photo", "image/heic"
        return "video", "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "video/webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "video/x-msvideo"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio", "audio/wav"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        return "audio", "audio/mpeg"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio", "audio/aac"
    if head.startswith(b"#!AMR"):
        return "audio", "audio/amr"
    if head.startswith(b"OggS"):
        return "audio", "audio/ogg"
    return None


# --- EXIF: hints that never fail an upload ----------------------------------------------------------------------

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME_ORIGINAL, DATETIME, ORIENTATION = 0x9003, 0x0132, 0x0112
# EXIF orientation -> what turns the stored pixels upright (the same table as ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ExifFacts:
    captured_at: datetime | None = None
    lat: float | None = None
    lng: float | None = None
    orientation: int = 1


def _hint(read: Callable[[], T], default: T, what: str) -> T:
    """One EXIF fact, or `default` when the block is malformed in any way (Pillow raises many kinds of errors on
    corrupt IFDs: struct.error, OSError, ValueError, TypeError, KeyError, ZeroDivisionError, SyntaxError, ...)."""
    try:
        return read()
    except Exception as exc:
        logger.debug("ignoring the photo's EXIF %s: %r", what, exc)
        return default


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return value.strip("\x00 ") if isinstance(value, str) else None


def _exif_time(exif: Image.Exif) -> datetime | None:
    raw = _text(_hint(lambda: exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL), None, "DateTimeOriginal")) or _text(exif.get(DATETIME))
    if not raw:
        return None
    try:
        # EXIF time carries no zone: it is the phone's wall clock, taken as the agency's zone.
        return datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S").replace(tzinfo=agency_zone())
    except ValueError:
        return None


def _degrees(values: Any, ref: Any, negative: str) -> float | None:
    """Degrees from EXIF (degrees, minutes, seconds) rationals; None for anything else, NaN (x/0) included."""
    if not isinstance(values, tuple | list) or not 1 <= len(values) <= 3:
        return None
    parts = [float(v) for v in values]  # an IFDRational with a zero denominator is NaN, not an error
    if not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    value = sum(p / 60**i for i, p in enumerate(parts))
    return -value if (_text(ref) or "").upper().startswith(negative) else value


def _exif_gps(exif: Image.Exif) -> tuple[float | None, float | None]:
    gps = exif.get_ifd(GPS_IFD)
    if not gps:
        return None, None
    lat = _degrees(gps.get(2), gps.get(1), "S")
    lng = _degrees(gps.get(4), gps.get(3), "W")
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180) or (lat, lng) == (0.0, 0.0):
        return None, None  # (0, 0) is what phones write without a fix
    return round(lat, 7), round(lng, 7)


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(ORIENTATION, 1)
    if isinstance(value, tuple | list) and len(value) == 1:
        value = value[0]
    return value if type(value) is int and value in UPRIGHT else 1


def exif_facts(image: Image.Image) -> ExifFacts:
    """Capture time, position and orientation from an open image's EXIF; each one that cannot be read is left out."""
    exif = _hint(image.getexif, None, "block")
    if exif is None:
        return ExifFacts()
    no_position: tuple[float | None, float | None] = (None, None)
    lat, lng = _hint(lambda: _exif_gps(exif), no_position, "GPS")
    return ExifFacts(
        captured_at=_hint(lambda: _exif_time(exif), None, "time"),
        lat=lat,
        lng=lng,
        orientation=_hint(lambda: _orientation(exif), 1, "orientation"),
    )


# --- decoding -----------------------------------------------------------------------------------------------------


def _too_large(message: str) -> ValidationFailed:
    return ValidationFailed(message, code=ErrorCode.IMAGE_TOO_LARGE, field="file")


def _check_size(image: Image.Image, limits: PhotoLimits) -> bool:
    """Refuse from the header alone; True when the photo can be decoded at reduced scale (draft)."""
    width, height = image.size
    pixels = width * height
    if pixels > limits.max_pixels:
        raise _too_large(f"image of {width}x{height} pixels exceeds the limit of {limits.max_pixels} pixels")
    scaled = image.format in DRAFT_FORMATS and not image.info.get("progressive") and not image.info.get("progression")
    if not scaled and pixels > limits.max_full_decode_pixels:
        kind = "progressive JPEG" if image.format in DRAFT_FORMATS else image.format
        raise _too_large(
            f"a {kind} image is decoded at full size: {width}x{height} pixels exceeds the limit of "
            f"{limits.max_full_decode_pixels} pixels for such images (a baseline JPEG may have up to {limits.max_pixels})"
        )
    return scaled


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_malloc_trim = _load_malloc_trim()
TRIM_AFTER_PIXELS = 4_000_000  # a full-size decode this large leaves tens of MB of freed heap behind


def _give_back_memory() -> None:
    """Return the heap pages a large full-size decode freed to the system. glibc keeps freed memory in its arenas
    (a worker thread's arena grows to the decode's size and stays so): without this a burst of large PNGs leaves
    the process hundreds of MB larger than it needs to be. malloc_trim walks the free lists only: ~1 ms."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _release(image: Image.Image) -> None:
    """Free the decoded pixels now. `ImageFile.close` would also close the caller's file, which is still needed."""
    Image.Image.close(image)


def _thumbnail(image: Image.Image, orientation: int) -> bytes:
    """A JPEG of at most THUMBNAIL_SIZE, upright. `image` is decoded (possibly at draft scale); its pixels are
    released here, as soon as they are no longer needed."""
    if image.mode in ("RGB", "L"):
        small = image
        small.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_FILTER)  # in place: the full-size pixels are freed
    else:  # alpha, palette, 16-bit, CMYK: resample in RGB(A), so colours and transparency average correctly
        alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
        small = image.convert("RGBA" if alpha else "RGB")
        _release(image)
        small.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_FILTER)
        if alpha:
            flat = Image.new("RGB", small.size, (255, 255, 255))
            flat.paste(small, mask=small.getchannel("A"))
            small = flat
    if orientation in UPRIGHT:
        small = small.transpose(UPRIGHT[orientation])
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    _release(small)
    _release(image)
    return buffer.getvalue()


def inspect_photo(source: IO[bytes], limits: PhotoLimits | None = None) -> PhotoFacts:
    """Validate a photo by decoding it (at reduced scale where possible) and return its facts and thumbnail.

    422 `image_too_large` from the header, before decoding; 422 `corrupt_file` when the pixels cannot be decoded;
    422 `unsupported_media_type` for image formats that are not accepted as photos. Never anything else for bad input.
    Blocking and CPU-bound: call it through `inspect_photo_bounded`.
    """
    limits = limits or LIMITS
    try:
        with Image.open(source, formats=OPENERS) as image:
            if image.format not in PHOTO_FORMATS:  # pragma: no cover - `formats` admits no other
                raise ValidationFailed(
                    f"{image.format} images are not accepted as photos", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE, field="file"
                )
            content_type = PHOTO_FORMATS[image.format]
            width, height = image.size
            scaled = _check_size(image, limits)
            facts = exif_facts(image)
            if scaled:
                image.draft("RGB", THUMBNAIL_SIZE)
            image.load()  # decodes every byte (at draft scale): a truncated file fails here
            thumbnail = _thumbnail(image, facts.orientation)
        if not scaled and width * height >= TRIM_AFTER_PIXELS:
            _give_back_memory()
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(str(exc)) from exc
    except MemoryError as exc:
        raise _too_large("the image needs more memory to decode than the server has to spare") from exc
    except Exception as exc:
        # Pillow reports undecodable input with many exception types (OSError, SyntaxError, ValueError, EOFError,
        # struct.error, zlib.error, IndexError, TypeError, KeyError, ...): for the client they all mean the same.
        logger.info("photo refused as undecodable: %r", exc)
        raise ValidationFailed(f"the photo cannot be decoded: {exc}", code=ErrorCode.CORRUPT_FILE, field="file") from exc
    if facts.orientation in (5, 6, 7, 8):
        width, height = height, width
    return PhotoFacts(content_type, width, height, facts.captured_at, facts.lat, facts.lng, thumbnail)


async def inspect_photo_bounded(source: IO[bytes]) -> PhotoFacts:
    """`inspect_photo` in a worker thread, at most `PHOTO_DECODES` at once in this process; the others wait here."""
    return await anyio.to_thread.run_sync(inspect_photo, source, LIMITS, limiter=decode_limiter())


def read_head(fh: IO[bytes], size: int = 64) -> bytes:
    fh.seek(0)
    head = fh.read(size)
    fh.seek(0)
    return head
