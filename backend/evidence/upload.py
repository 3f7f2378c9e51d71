"""Receiving a multipart upload as a stream: the file part is hashed and counted as it arrives and kept in memory up to
`SPOOL_BYTES` (a photo), beyond that in a temporary file (a 500 MB video never sits in memory); the small form fields
are kept as text.

Per arriving chunk the work is one `bytes.find` for the boundary (in the parser), one `sha256.update` (C, without
the GIL) and one list append: the bytes are copied once more, at the end, to make the in-memory file.
"""

from __future__ import annotations

import hashlib
import io
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


class Spool:
    """The file part's bytes: chunks in a list while they fit in `limit` bytes, then a temporary file.

    Unlike `tempfile.SpooledTemporaryFile`, memory is filled by appending references to the parser's chunks (no
    growing buffer copied on every doubling, no Python wrapper per write) and joined once in `finish`."""

    def __init__(self, limit: int, tmp_dir: str | None) -> None:
        self.limit = limit
        self.tmp_dir = tmp_dir
        self.chunks: list[bytes] = []
        self.size = 0
        self.file: IO[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self.file is None:
            if self.size + len(data) <= self.limit:
                self.chunks.append(data)
                self.size += len(data)
                return
            self.file = tempfile.TemporaryFile(prefix="evidence-", dir=self.tmp_dir)  # noqa: SIM115 - closed by ReceivedFile.discard
            self.file.writelines(self.chunks)
            self.chunks.clear()
        self.file.write(data)

    def finish(self) -> IO[bytes]:
        """The bytes as a file positioned at 0 (a BytesIO over the joined chunks shares them, no further copy)."""
        if self.file is None:
            self.file = io.BytesIO(b"".join(self.chunks))
            self.chunks.clear()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.chunks.clear()
        if self.file is not None:
            self.file.close()


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
    segment: MultipartSegment | None = None
    field_buffer = bytearray()
    spool: Spool | None = None
    filename: str | None = None
    digest = hashlib.sha256()
    size = 0
    limit = 0
    try:
        with PushMultipartParser(options["boundary"], max_segment_count=64) as parser:
            iterator = stream.__aiter__()
            while not parser.closed:
                chunk = await anext(iterator, b"")
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment = part
                        if segment.name == "file":
                            if spool is not None:
                                raise ValidationFailed("send exactly one file part", field="file")
                            spool, filename = Spool(SPOOL_BYTES, tmp_dir), segment.filename
                            limit = limit_for(fields)  # the fields come first; none can arrive inside the file part
                    elif part:
                        if segment is not None and segment.name == "file" and spool is not None:
                            size += len(part)
                            if size > limit:
                                raise PayloadTooLarge(f"the file exceeds {limit} bytes", field="file")
                            digest.update(part)
                            spool.write(part)
                        else:
                            field_buffer.extend(part)
                            if len(field_buffer) > MAX_FIELD_BYTES:
                                raise ValidationFailed("form field too long", field=segment.name if segment else None)
                    elif segment is not None:
                        if segment.name != "file":
                            fields[segment.name] = field_buffer.decode(segment.charset or "utf-8", errors="strict")
                        field_buffer.clear()
                        segment = None
    except BaseException as exc:
        if spool is not None:
            spool.close()
        if isinstance(exc, ParserError | ParserLimitReached | UnicodeDecodeError):
            raise ValidationFailed(f"malformed multipart body: {exc}", code=ErrorCode.MALFORMED_UPLOAD) from exc
        raise
    return fields, None if spool is None else ReceivedFile(spool.finish(), size, digest.hexdigest(), filename)
