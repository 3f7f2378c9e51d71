"""Receiving a multipart upload as a stream: the file part goes to a temporary file while it is hashed and counted,
so a 500 MB video never sits in memory; the small form fields are kept as text."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import IO

from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser, parse_options_header

from backend.errors import AppError, ErrorCode, ValidationFailed

MAX_FIELD_BYTES = 4096


class PayloadTooLarge(AppError):
    status = 413
    code = "file_too_large"
    title = "Payload too large"


SPOOL_BYTES = 16 * 1024 * 1024  # a photo stays in memory; a video goes to a temporary file as it arrives


@dataclass
class ReceivedFile:
    file: IO[bytes]
    size: int
    sha256: str
    filename: str | None

    def rewound(self) -> IO[bytes]:
        self.file.seek(0)
        return self.file

    def discard(self) -> None:
        self.file.close()


def hash_file(fh: IO[bytes], chunk: int = 1 << 20) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    fh.seek(0)
    while block := fh.read(chunk):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


async def receive_multipart(  # noqa: PLR0912 - one push-parser loop, its states read best side by side
    stream: AsyncIterator[bytes],
    content_type: str,
    limit_for: Callable[[dict[str, str]], int],
    tmp_dir: str | None = None,
) -> tuple[dict[str, str], ReceivedFile | None]:
    """Parse `multipart/form-data` from `stream`. `limit_for(fields so far)` caps the file's size as it arrives."""
    media_type, options = parse_options_header(content_type)
    if media_type != "multipart/form-data" or not options.get("boundary"):
        raise ValidationFailed("send the file as multipart/form-data", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE, field="file")
    fields: dict[str, str] = {}
    received: ReceivedFile | None = None
    segment: MultipartSegment | None = None
    field_buffer = bytearray()
    fh = None
    digest = hashlib.sha256()
    size = 0
    try:
        with PushMultipartParser(options["boundary"], max_segment_count=64) as parser:
            iterator = stream.__aiter__()
            while not parser.closed:
                chunk = await anext(iterator, b"")
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment = part
                        if segment.name == "file":
                            if fh is not None:
                                raise ValidationFailed("send exactly one file part", field="file")
                            fh = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, prefix="evidence-", dir=tmp_dir)  # noqa: SIM115
                            received = ReceivedFile(fh, 0, "", segment.filename)
                    elif part:
                        if segment is not None and segment.name == "file" and fh is not None:
                            size += len(part)
                            if size > limit_for(fields):
                                raise PayloadTooLarge(f"the file exceeds {limit_for(fields)} bytes", field="file")
                            digest.update(part)
                            fh.write(part)
                        else:
                            field_buffer.extend(part)
                            if len(field_buffer) > MAX_FIELD_BYTES:
                                raise ValidationFailed("form field too long", field=segment.name if segment else None)
                    elif segment is not None:
                        if segment.name != "file":
                            fields[segment.name] = field_buffer.decode(segment.charset or "utf-8", errors="strict")
                        field_buffer.clear()
                        segment = None
    except (ParserError, ParserLimitReached, UnicodeDecodeError) as exc:
        if received:
            received.discard()
        raise ValidationFailed(f"malformed multipart body: {exc}", code=ErrorCode.MALFORMED_UPLOAD) from exc
    except BaseException:
        if received:
            received.discard()
        raise
    if received is not None:
        received.size, received.sha256 = size, digest.hexdigest()
    return fields, received
