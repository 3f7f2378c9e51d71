"""What a file really is, from its bytes; and for photos: EXIF capture time and GPS, and a cheap thumbnail.

Pillow is used with its decompression-bomb guard made an error, and the header's pixel count is checked before any
pixel is decoded. JPEG thumbnails use draft mode, which decodes at 1/2, 1/4 or 1/8 scale.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from backend.clock import agency_zone
from backend.errors import ErrorCode, ValidationFailed

MAX_PIXELS = 80_000_000  # about 80 megapixels: any phone photo fits, a decompression bomb does not
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False
THUMBNAIL_SIZE = (320, 320)

PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


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


def _exif_time(exif: Image.Exif) -> datetime | None:
    raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, else DateTime
    if not isinstance(raw, str):
        return None
    try:
        # EXIF time carries no zone: it is the phone's wall clock, taken as the agency's zone.
        return datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=agency_zone())
    except ValueError:
        return None


def _exif_gps(exif: Image.Exif) -> tuple[float | None, float | None]:
    gps = exif.get_ifd(0x8825)
    try:

        def degrees(values: tuple[float, float, float], ref: str, negative: str) -> float:
            d, m, s = (float(v) for v in values)
            value = d + m / 60 + s / 3600
            return -value if ref == negative else value

        lat = degrees(gps[2], gps.get(1, "N"), "S")
        lng = degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None, None
    return round(lat, 7), round(lng, 7)


def inspect_photo(source: IO[bytes]) -> PhotoFacts:
    """Validate a photo by decoding it (at reduced scale) and return its facts and thumbnail; 422 when it is not one."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as image:
                if image.format not in PHOTO_FORMATS:
                    raise ValidationFailed(
                        f"{image.format} images are not accepted as photos",
                        code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                        field="file",
                    )
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ValidationFailed(
                        f"image of {width}x{height} pixels exceeds the limit of {MAX_PIXELS} pixels",
                        code=ErrorCode.IMAGE_TOO_LARGE,
                        field="file",
                    )
                exif = image.getexif()
                captured_at = _exif_time(exif)
                lat, lng = _exif_gps(exif)
                content_type = PHOTO_FORMATS[image.format]
                if image.format == "JPEG":
                    image.draft("RGB", THUMBNAIL_SIZE)
                image.load()  # decodes every byte (at draft scale): a truncated file fails here
                oriented = ImageOps.exif_transpose(image)
                if oriented.mode not in ("RGB", "L"):
                    oriented = oriented.convert("RGB")
                oriented.thumbnail(THUMBNAIL_SIZE)
                buffer = io.BytesIO()
                oriented.save(buffer, format="JPEG", quality=80)
                orientation = exif.get(0x0112, 1)
        except ValidationFailed:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ValidationFailed(str(exc), code=ErrorCode.IMAGE_TOO_LARGE, field="file") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ValidationFailed(f"the photo cannot be decoded: {exc}", code=ErrorCode.CORRUPT_FILE, field="file") from exc
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return PhotoFacts(content_type, width, height, captured_at, lat, lng, buffer.getvalue())


def read_head(fh: IO[bytes], size: int = 64) -> bytes:
    fh.seek(0)
    head = fh.read(size)
    fh.seek(0)
    return head
