"""Photos are decoded with bounded cost and EXIF never fails an upload.

- Corrupt EXIF of every kind (truncated IFDs, wrong types, GPS rationals over zero, orientation 0/9/'x', offsets far
  past the end, loops) answers 201 with that fact dropped, or 422 when the pixels themselves cannot be decoded; never
  5xx. Besides the hand-made kinds, a few hundred random mutations of a real EXIF block go through `inspect_photo`.
- A photo above the pixel limits is 422 `image_too_large` from its header: the 8900x8900 PNG of the incident, and a
  PNG that would need 1.6 GB to decode, are refused without the server's memory moving.
- At most `PHOTO_DECODES` photos are decoded at once, however many arrive together.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import random
import resource
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from backend.errors import ValidationFailed
from backend.evidence import media
from backend.evidence import upload as upload_module
from backend.evidence.media import PhotoLimits, inspect_photo
from backend.evidence.upload import receive_multipart
from backend.settings import Settings
from tests.helpers import World, assert_problem, start_inspection, upload
from tests.media import jpeg, png_bomb

# --- crafting EXIF blocks by hand ----------------------------------------------------------------------------------

SHORT, LONG, ASCII, RATIONAL, UNDEFINED = 3, 4, 2, 5, 7


def entry(tag: int, kind: int, count: int, value: bytes | int) -> bytes:
    """One 12-byte IFD entry (little-endian); `value` is the 4-byte field itself or an offset."""
    field = value.ljust(4, b"\x00")[:4] if isinstance(value, bytes) else struct.pack("<I", value)
    return struct.pack("<HHI", tag, kind, count) + field


def ifd(*entries: bytes, next_ifd: int = 0, count: int | None = None) -> bytes:
    return struct.pack("<H", len(entries) if count is None else count) + b"".join(entries) + struct.pack("<I", next_ifd)


def tiff(ifd0: bytes, tail: bytes = b"") -> bytes:
    """A little-endian TIFF block: header, IFD0 at offset 8, then `tail` (offsets into it start at 8 + len(ifd0))."""
    return b"II*\x00" + struct.pack("<I", 8) + ifd0 + tail


def rationals(*pairs: tuple[int, int]) -> bytes:
    return b"".join(struct.pack("<II", n, d) for n, d in pairs)


def plain_jpeg(width: int = 240, height: int = 160) -> bytes:
    image = Image.new("RGB", (width, height), (30, 120, 200))
    image.paste((250, 250, 0), (0, 0, width // 2, height // 3))  # a corner to tell the orientation by
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def with_app1(jpeg_bytes: bytes, payload: bytes, length: int | None = None) -> bytes:
    """`jpeg_bytes` with an APP1 segment holding `payload` right after SOI (`length` may lie)."""
    size = len(payload) + 2 if length is None else length
    return jpeg_bytes[:2] + b"\xff\xe1" + struct.pack(">H", size) + payload + jpeg_bytes[2:]


def exif_jpeg(block: bytes) -> bytes:
    return with_app1(plain_jpeg(), b"Exif\x00\x00" + block)


def gps_block(lat: bytes, lng: bytes, orientation: int | None = None) -> bytes:
    """IFD0 with an optional orientation and a GPS IFD whose latitude and longitude are `lat` and `lng` rationals."""
    entries = [entry(0x0112, SHORT, 1, struct.pack("<H", orientation))] if orientation else []
    ifd0_size = 2 + 12 * (len(entries) + 1) + 4
    gps_at = 8 + ifd0_size
    gps_size = 2 + 12 * 4 + 4
    data_at = gps_at + gps_size
    gps = ifd(
        entry(1, ASCII, 2, b"N\x00"),
        entry(2, RATIONAL, 3, data_at),
        entry(3, ASCII, 2, b"E\x00"),
        entry(4, RATIONAL, 3, data_at + 24),
    )
    return tiff(ifd(*entries, entry(0x8825, LONG, 1, gps_at)), gps + lat + lng)


def corrupt_exif_kinds() -> dict[str, bytes]:
    """JPEGs whose pixels are fine and whose EXIF is broken in one way each (most with a rotation flag too)."""
    six = entry(0x0112, SHORT, 1, struct.pack("<H", 6))
    time_ascii = entry(0x0132, ASCII, 20, 8 + 2 + 12 * 2 + 4)
    return {
        "truncated IFD (claims 40 entries, holds 2)": exif_jpeg(tiff(ifd(six, entry(0x010F, ASCII, 4, b"Cam\x00"), count=40))),
        "truncated block (cut inside an entry)": exif_jpeg(tiff(ifd(six, entry(0x8769, LONG, 1, 26)))[:17]),
        "orientation 0": exif_jpeg(tiff(ifd(entry(0x0112, SHORT, 1, struct.pack("<H", 0))))),
        "orientation 9": exif_jpeg(tiff(ifd(entry(0x0112, SHORT, 1, struct.pack("<H", 9))))),
        "orientation 'x' (ASCII)": exif_jpeg(tiff(ifd(entry(0x0112, ASCII, 2, b"x\x00")))),
        "orientation as RATIONAL 6/0": exif_jpeg(tiff(ifd(entry(0x0112, RATIONAL, 1, 26)), rationals((6, 0)))),
        "orientation count 3000 far past the end": exif_jpeg(tiff(ifd(entry(0x0112, SHORT, 3000, 0x00FFFFFF)))),
        "time as SHORT, make as RATIONAL, rotation 6": exif_jpeg(
            tiff(ifd(six, entry(0x0132, SHORT, 1, b"\x07\x00"), entry(0x010F, RATIONAL, 1, 0x7FFFFFF0)))
        ),
        "time not a date, rotation 6": exif_jpeg(tiff(ifd(six, time_ascii), b"9999:99:99 99:99:99\x00")),
        "EXIF IFD pointer far past the end, rotation 6": exif_jpeg(tiff(ifd(six, entry(0x8769, LONG, 1, 0xFFFFFF00)))),
        "GPS IFD pointer far past the end, rotation 6": exif_jpeg(tiff(ifd(six, entry(0x8825, LONG, 1, 0x7FFFFFFF)))),
        "EXIF IFD pointer as ASCII, rotation 6": exif_jpeg(tiff(ifd(six, entry(0x8769, ASCII, 4, b"abc\x00")))),
        "IFD loop (next IFD and EXIF IFD point at IFD0)": exif_jpeg(tiff(ifd(six, entry(0x8769, LONG, 1, 8), next_ifd=8))),
        "next IFD far past the end": exif_jpeg(tiff(ifd(six, next_ifd=0xFFFFFFF0))),
        "unknown field type 99, rotation 6": exif_jpeg(tiff(ifd(six, entry(0x010F, 99, 1, b"\x01")))),
        "huge UNDEFINED maker note, rotation 6": exif_jpeg(tiff(ifd(six, entry(0x927C, UNDEFINED, 0x3FFFFFFF, 26)))),
        "GPS rationals over zero, rotation 6": exif_jpeg(
            gps_block(rationals((39, 0), (19, 0), (0, 0)), rationals((112, 0), (25, 1), (0, 0)), orientation=6)
        ),
        "GPS out of range (latitude 200)": exif_jpeg(gps_block(rationals((200, 1), (0, 1), (0, 1)), rationals((112, 1), (0, 1), (0, 1)))),
        "GPS latitude as ASCII, rotation 8": exif_jpeg(
            tiff(ifd(entry(0x0112, SHORT, 1, struct.pack("<H", 8)), entry(0x8825, LONG, 1, 38)), ifd(entry(2, ASCII, 4, b"abc\x00")))
        ),
        "byte order mark 'XX'": exif_jpeg(b"XX*\x00" + struct.pack("<I", 8) + ifd(six)),
        "big-endian header, little-endian body": exif_jpeg(b"MM\x00*" + struct.pack("<I", 8) + ifd(six)),
        "IFD0 offset far past the end": exif_jpeg(b"II*\x00" + struct.pack("<I", 0x7FFFFFF0)),
        "empty EXIF (identifier only)": exif_jpeg(b""),
    }


def rich_exif_jpeg() -> bytes:
    """A photo with EXIF as a phone writes it: rotation 6, make and model, resolution, an EXIF IFD with a maker note,
    and a GPS IFD with position, altitude and date. Rotating its thumbnail made Pillow re-serialise this block."""
    image = Image.new("RGB", (400, 300), (30, 120, 200))
    exif = Image.Exif()
    exif.update({0x010F: "Xiaomi", 0x0110: "Redmi K60", 0x0112: 6, 0x0132: "2026:05:12 09:30:00", 0x0128: 2})
    exif[0x011A] = exif[0x011B] = IFDRational(72, 1)
    exif.get_ifd(0x8769).update(
        {0x9003: "2026:05:12 09:30:00", 0x829A: IFDRational(1, 100), 0x8827: 100, 0x927C: b"M" * 200, 0x9286: b"ASCII\x00\x00\x00note"}
    )
    exif.get_ifd(0x8825).update(
        {0: b"\x02\x02\x00\x00", 1: "N", 2: (39.0, 19.0, 53.4), 3: "E", 4: (112.0, 25.0, 55.56), 5: b"\x00", 6: IFDRational(1200, 10)}
    )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, exif=exif)
    return buffer.getvalue()


def mutations(source: bytes, count: int, seed: int = 20261129) -> Iterator[bytes]:
    """`count` copies of `source` with 1-12 random bytes of its EXIF segment (after the identifier) changed."""
    start = source.index(b"Exif\x00\x00") + 6
    length = struct.unpack(">H", source[start - 8 : start - 6])[0] - 8
    rnd = random.Random(seed)
    for _ in range(count):
        data = bytearray(source)
        for _ in range(rnd.randint(1, 12)):
            data[start + rnd.randrange(length)] = rnd.randrange(256)
        yield bytes(data)


@functools.lru_cache(maxsize=4)
def big_png(width: int, height: int) -> bytes:
    """A real, complete PNG of `width` x `height` black pixels: tiny on disk, `width * height * 4` bytes decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (width * 3)
    rows = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def outcome(data: bytes) -> str:
    try:
        inspect_photo(io.BytesIO(data))
    except ValidationFailed as exc:
        return f"{exc.status} {exc.code}"
    return "ok"


# --- EXIF oddities --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(corrupt_exif_kinds()))
def test_corrupt_exif_is_ignored_and_the_photo_kept(kind: str) -> None:
    facts = inspect_photo(io.BytesIO(corrupt_exif_kinds()[kind]))
    assert facts.content_type == "image/jpeg" and facts.thumbnail[:3] == b"\xff\xd8\xff"
    assert facts.lat is None and facts.lng is None
    assert (facts.width, facts.height) in ((240, 160), (160, 240))
    assert Image.open(io.BytesIO(facts.thumbnail)).size == (facts.width, facts.height)  # upright, as reported


async def test_corrupt_exif_uploads_answer_201(world: World) -> None:
    inspection = await start_inspection(world)
    statuses = {}
    for kind, data in corrupt_exif_kinds().items():
        response = await upload(world, "inspector_a1", data, inspection_id=inspection["id"])
        statuses[kind] = response.status_code
        if response.status_code == 201:
            record = response.json()
            assert record["lat"] is None and record["lng"] is None
            assert datetime.fromisoformat(record["captured_at"]) > datetime(2026, 1, 1, tzinfo=UTC)  # "now", not EXIF
    assert statuses == dict.fromkeys(statuses, 201), statuses


def test_an_exif_segment_that_swallows_the_picture_is_a_corrupt_photo() -> None:
    """An APP1 length running past the end leaves no picture to decode: the one EXIF fault that is a 422."""
    data = with_app1(plain_jpeg(), b"Exif\x00\x00" + tiff(ifd(entry(0x0112, SHORT, 1, b"\x06\x00"))), length=0xFFF0)
    assert outcome(data) == "422 corrupt_file"


def test_a_good_rotation_flag_still_rotates_when_other_exif_is_broken() -> None:
    six = entry(0x0112, SHORT, 1, struct.pack("<H", 6))
    facts = inspect_photo(io.BytesIO(exif_jpeg(tiff(ifd(six, entry(0x8825, LONG, 1, 0x7FFFFFFF))))))
    assert (facts.width, facts.height) == (160, 240)
    thumb = Image.open(io.BytesIO(facts.thumbnail)).convert("RGB")
    assert thumb.size == (160, 240)
    assert thumb.getpixel((thumb.width - 5, 5))[2] < 100  # the yellow corner is now top right: rotated clockwise


def test_gps_and_time_survive_when_only_the_orientation_is_odd() -> None:
    photo = jpeg(400, 300, taken=datetime(2026, 5, 12, 9, 30, 0), gps=(39.3315, 112.4321), orientation=9)
    facts = inspect_photo(io.BytesIO(photo))
    assert (facts.width, facts.height) == (400, 300)  # orientation 9 does not exist: no rotation
    assert facts.captured_at is not None and facts.captured_at.astimezone(UTC) == datetime(2026, 5, 12, 1, 30, tzinfo=UTC)
    assert facts.lat == pytest.approx(39.3315, abs=1e-4) and facts.lng == pytest.approx(112.4321, abs=1e-4)


def test_a_thousand_mutated_exif_blocks_never_raise_anything_but_422() -> None:
    """The incident: 35 of 3,000 such photos answered 500 (Pillow failing to re-serialise the block while rotating).
    With the code before the fix, this seed gives 10 errors in these 1,000 (struct.error, TypeError, AttributeError)."""
    seen: dict[str, int] = {}
    for data in mutations(rich_exif_jpeg(), 1000):
        result = outcome(data)  # any exception other than ValidationFailed fails the test here
        seen[result] = seen.get(result, 0) + 1
    assert set(seen) <= {"ok", "422 corrupt_file"}, seen
    assert seen.get("ok", 0) >= 990, seen  # the pixels are untouched: all but a freak are kept


# --- pixel limits ---------------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(("width", "height"), [(8900, 8900), (20000, 20000)])
def test_a_png_over_the_limit_is_refused_from_its_header(width: int, height: int) -> None:
    data = big_png(width, height) if width < 10000 else png_bomb(width, height)  # the bomb: its header claims as much
    peak_before = peak_rss_mb()
    with pytest.raises(ValidationFailed) as refused:
        inspect_photo(io.BytesIO(data))
    assert (refused.value.status, refused.value.code) == (422, "image_too_large")
    # Decoding would have taken width * height * 4 bytes (317 MB and 1.6 GB): the process's peak did not move.
    assert peak_rss_mb() - peak_before < 50


async def test_a_png_over_the_limit_is_422_through_the_api(world: World, bucket) -> None:
    inspection = await start_inspection(world)
    before = bucket.keys()
    response = await upload(world, "inspector_a1", big_png(8900, 8900), filename="big.png", inspection_id=inspection["id"])
    body = assert_problem(response, 422, "image_too_large", field="file")
    assert "8900x8900" in body["detail"]
    assert bucket.keys() == before


async def test_a_png_under_the_limits_is_stored_unchanged(world: World, bucket) -> None:
    inspection = await start_inspection(world)
    screenshot = io.BytesIO()
    Image.new("RGBA", (1080, 2400), (20, 200, 90, 255)).save(screenshot, format="PNG")
    response = await upload(world, "inspector_a1", screenshot.getvalue(), filename="shot.png", inspection_id=inspection["id"])
    assert response.status_code == 201, response.text
    record = response.json()
    assert (record["content_type"], record["width"], record["height"]) == ("image/png", 1080, 2400)
    assert bucket.read(f"originals/{record['sha256'][:2]}/{record['sha256']}") == screenshot.getvalue()


def test_the_limits_depend_on_whether_the_decode_can_be_scaled() -> None:
    previous = media.LIMITS
    media.configure_photo_limits(PhotoLimits(max_pixels=2_000_000, max_full_decode_pixels=500_000, decodes=2))
    try:
        # A baseline JPEG is decoded at 1/8 scale: allowed up to max_pixels.
        assert inspect_photo(io.BytesIO(jpeg(1600, 1200))).width == 1600
        with pytest.raises(ValidationFailed, match="exceeds the limit of 2000000"):
            inspect_photo(io.BytesIO(jpeg(1800, 1200)))
        # PNG and progressive JPEG are decoded whole: the lower limit.
        with pytest.raises(ValidationFailed, match="PNG image is decoded at full size"):
            inspect_photo(io.BytesIO(big_png(1000, 600)))
        progressive = io.BytesIO()
        Image.new("RGB", (1000, 600), (1, 2, 3)).save(progressive, format="JPEG", progressive=True)
        with pytest.raises(ValidationFailed, match="progressive JPEG image is decoded at full size"):
            inspect_photo(io.BytesIO(progressive.getvalue()))
        webp = io.BytesIO()
        Image.new("RGB", (1000, 600), (1, 2, 3)).save(webp, format="WEBP")
        with pytest.raises(ValidationFailed, match="WEBP image is decoded at full size"):
            inspect_photo(io.BytesIO(webp.getvalue()))
        assert inspect_photo(io.BytesIO(big_png(700, 700))).width == 700
    finally:
        media.configure_photo_limits(previous)


def test_freed_heap_goes_back_to_the_system_after_a_large_full_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(media, "_malloc_trim", lambda pad: trims.append(pad) or 1)
    inspect_photo(io.BytesIO(jpeg(2400, 1800)))  # decoded at 1/8 scale: nothing worth giving back
    inspect_photo(io.BytesIO(big_png(1000, 1000)))  # 1 MP in full: not worth a trim either
    assert trims == []
    inspect_photo(io.BytesIO(big_png(2000, 2000)))
    assert trims == [0]


def test_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_PHOTO_PIXELS", "64_000_000")
    monkeypatch.setenv("PHOTO_DECODES", "3")
    monkeypatch.delenv("MAX_PHOTO_PIXELS_FULL_DECODE", raising=False)
    expected = PhotoLimits(max_pixels=64_000_000, max_full_decode_pixels=24_000_000, decodes=3)
    assert PhotoLimits.of(Settings.from_env()) == expected
    monkeypatch.setenv("PHOTO_DECODES", "0")
    with pytest.raises(ValueError, match="PHOTO_DECODES must be a positive whole number"):
        Settings.from_env()
    monkeypatch.setenv("PHOTO_DECODES", "two")
    with pytest.raises(ValueError, match="PHOTO_DECODES must be a whole number"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (lambda: Image.new("RGBA", (500, 400), (255, 0, 0, 0)), "RGBA"),
        (lambda: Image.new("P", (500, 400), 3), "P"),
        (lambda: Image.new("LA", (500, 400), (90, 128)), "LA"),
        (lambda: Image.new("I;16", (500, 400), 40000), "I;16"),
        (lambda: Image.new("1", (500, 400), 1), "1"),
    ],
)
def test_pngs_of_every_mode_get_an_rgb_thumbnail(make: Callable[[], Image.Image], mode: str) -> None:
    buffer = io.BytesIO()
    make().save(buffer, format="PNG")
    facts = inspect_photo(io.BytesIO(buffer.getvalue()))
    thumb = Image.open(io.BytesIO(facts.thumbnail))
    assert (facts.content_type, facts.width, thumb.mode, thumb.size) == ("image/png", 500, "RGB", (320, 256)), mode


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_callers_file_stays_open_for_the_store(fmt: str) -> None:
    """The original is stored from the same spooled file after the decode: Pillow must not close it."""
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 20, 30)).save(buffer, format=fmt)
    with tempfile.TemporaryFile() as spooled:  # as upload.py keeps a file over SPOOL_BYTES (smaller ones: a BytesIO)
        spooled.write(buffer.getvalue())
        spooled.seek(0)
        inspect_photo(spooled)
        spooled.seek(0)
        assert spooled.read() == buffer.getvalue()


def test_a_multi_picture_jpeg_is_a_jpeg() -> None:
    """Phones add gain maps and depth maps as extra pictures (MPF); Pillow calls such a file MPO."""
    buffer = io.BytesIO()
    first, second = Image.new("RGB", (400, 300), (200, 10, 10)), Image.new("L", (200, 150), 128)
    first.save(buffer, format="MPO", save_all=True, append_images=[second])
    facts = inspect_photo(io.BytesIO(buffer.getvalue()))
    assert (facts.content_type, facts.width, facts.height) == ("image/jpeg", 400, 300)


# --- decodes at once ------------------------------------------------------------------------------------------------


class ConcurrencyProbe:
    """Wraps inspect_photo and records how many run at the same moment."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.active = 0
        self.most = 0
        self.calls = 0
        self.lock = threading.Lock()
        self.real = media.inspect_photo

    def __call__(self, *args: object) -> media.PhotoFacts:
        with self.lock:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(self.hold)  # a slow decode, so that uploads pile up
            return self.real(*args)  # type: ignore[arg-type]
        finally:
            with self.lock:
                self.active -= 1


@pytest.mark.parametrize("decodes", [1, 2])
async def test_decodes_at_once_are_bounded(world: World, monkeypatch: pytest.MonkeyPatch, decodes: int) -> None:
    inspection = await start_inspection(world)
    probe = ConcurrencyProbe(hold=0.3)  # long enough for the other uploads to arrive even on a busy machine
    monkeypatch.setattr(media, "inspect_photo", probe)
    previous = media.LIMITS
    media.configure_photo_limits(replace(previous, decodes=decodes))
    try:
        photos = [jpeg(320, 240, color=(i * 20, 40, 90)) for i in range(6)]
        responses = await asyncio.gather(*(upload(world, "inspector_a1", p, inspection_id=inspection["id"]) for p in photos))
    finally:
        media.configure_photo_limits(previous)
    assert [r.status_code for r in responses] == [201] * 6
    assert probe.calls == 6
    assert probe.most == decodes  # reached, never passed
    assert media.decode_limiter().borrowed_tokens == 0


# --- receiving: in memory up to SPOOL_BYTES, then a temporary file ---------------------------------------------------


def multipart_body(boundary: str, content: bytes, chunk: int) -> list[bytes]:
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nphoto\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return [body[i : i + chunk] for i in range(0, len(body), chunk)]


async def chunks_of(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(("spool_bytes", "in_memory"), [(1 << 20, True), (50_000, False)])
async def test_the_file_part_is_hashed_once_and_kept_in_memory_or_on_disk(
    monkeypatch: pytest.MonkeyPatch, spool_bytes: int, in_memory: bool
) -> None:
    monkeypatch.setattr(upload_module, "SPOOL_BYTES", spool_bytes)
    content = random.Random(5).randbytes(300_000)
    fields, received = await receive_multipart(
        chunks_of(multipart_body("b0undary", content, 7_000)), "multipart/form-data; boundary=b0undary", lambda f: 10**6
    )
    assert received is not None and fields == {"kind": "photo"}
    try:
        assert (received.size, received.sha256, received.filename) == (len(content), hashlib.sha256(content).hexdigest(), "a.jpg")
        assert isinstance(received.file, io.BytesIO) is in_memory
        assert received.rewound().read() == content and received.rewound().read() == content
    finally:
        received.discard()


async def test_a_broken_body_leaves_no_file_open(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[upload_module.Spool] = []
    real = upload_module.Spool

    def spy(*args: object) -> upload_module.Spool:
        opened.append(real(*args))  # type: ignore[arg-type]
        return opened[-1]

    monkeypatch.setattr(upload_module, "Spool", spy)
    monkeypatch.setattr(upload_module, "SPOOL_BYTES", 10_000)
    parts = multipart_body("b0undary", b"x" * 50_000, 4_000)[:-2]  # cut before the closing boundary
    with pytest.raises(ValidationFailed, match="malformed multipart body"):
        await receive_multipart(chunks_of(parts), "multipart/form-data; boundary=b0undary", lambda f: 10**6)
    assert len(opened) == 1 and opened[0].file is not None and opened[0].file.closed
    with pytest.raises(upload_module.PayloadTooLarge):
        await receive_multipart(
            chunks_of(multipart_body("b0undary", b"y" * 50_000, 4_000)), "multipart/form-data; boundary=b0undary", lambda f: 20_000
        )
    assert opened[1].file is not None and opened[1].file.closed
