"""HTTP details shared by the routes: the API's path prefix, header values built from data (a document number in
Chinese, a file name)."""

from __future__ import annotations

from urllib.parse import quote

API_PREFIX = "/api/v1"


def header_value(text: str) -> str:
    """Percent-encoded UTF-8 (RFC 8187 style) without control characters, so no value can break the header block."""
    return quote("".join(ch for ch in text if ch.isprintable()), safe="")


def content_disposition(filename: str, *, inline: bool) -> str:
    disposition = "inline" if inline else "attachment"
    ascii_name = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in filename)
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
