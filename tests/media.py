"""Real files for evidence tests, made on the spot: photos with EXIF, and the bad files phones and attackers send."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime

from PIL import Image

EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def jpeg(
    width: int = 640,
    height: int = 480,
    *,
    color: tuple[int, int, int] = (200, 80, 40),
    taken: datetime | None = None,
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
    quality: int = 85,
) -> bytes:
    image = Image.new("RGB", (width, height), color)
    # a gradient so that the encoder has real work and the bytes differ by colour
    for x in range(0, width, 16):
        image.paste((x % 256, color[1], (x * 3) % 256), (x, 0, min(x + 8, width), height // 2))
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if gps is not None:
        lat, lng = gps

        def dms(value: float) -> tuple[float, float, float]:
            value = abs(value)
            d = int(value)
            m = int((value - d) * 60)
            s = round(((value - d) * 60 - m) * 60, 4)
            return (float(d), float(m), s)

        exif.get_ifd(GPS_IFD).update({1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lng >= 0 else "W", 4: dms(lng)})
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, exif=exif)
    return buffer.getvalue()


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG whose header claims 20000x20000 pixels while the file itself is tiny."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" + b"\x00" * width, 9)  # one row; the rest would inflate from nothing
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    whole = jpeg(1200, 900)
    return whole[: len(whole) // 2]


def mp4_header() -> bytes:
    """The first box of an MP4 file followed by filler: enough for a magic-number check."""
    return struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isomiso2" + b"\x00" * 4096
