"""What crosses the wire for evidence uploads and records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from backend.wire import INSTANT_RANGE, Input, Instant

EvidenceKind = Literal["photo", "audio", "video", "document"]
# What a declared content type may be for each kind: the original is served back in it, so a "video" is never text/html.
KIND_MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "photo": ("image/",),
    "audio": ("audio/",),
    "video": ("video/",),
    "document": ("application/pdf",),
}
# What GET /evidence/{id}/content answers in (octet-stream for a content type stored before it was checked)
SERVED_MEDIA_TYPES = ("image/*", "audio/*", "video/*", "application/pdf", "application/octet-stream")
# RFC 6838 type/subtype (no parameters): the content type is sent back as a header when the file is read
MEDIA_TYPE = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}$"


class Owner(Input):
    inspection_id: uuid.UUID | None = None
    hazard_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    accident_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Owner:
        if sum(x is not None for x in (self.inspection_id, self.hazard_id, self.case_id, self.accident_id)) != 1:
            raise ValueError("exactly one of inspection_id, hazard_id, case_id, accident_id names the owner")
        return self


class EvidenceFields(Owner):
    """The form fields that come with the file in `POST /evidence`."""

    id: uuid.UUID | None = None
    kind: EvidenceKind
    captured_at: Instant | None = Field(default=None, description=f"when it was taken, {INSTANT_RANGE}; else EXIF")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_coordinates(self) -> EvidenceFields:
        if (self.lat is None) != (self.lng is None):
            raise ValueError("lat and lng come together")
        return self


class UploadIn(Input):
    id: uuid.UUID | None = None
    kind: EvidenceKind
    content_type: str = Field(
        min_length=3,
        max_length=100,
        pattern=MEDIA_TYPE,
        description="type/subtype, as the file is served back: image/* for a photo, audio/* for audio, video/* for a video, "
        "application/pdf for a document",
    )
    size: int = Field(ge=1, le=2**50, description="bytes; at most the limit of its kind")

    @field_validator("content_type")
    @classmethod
    def _content_type_of_kind(cls, value: str, info: ValidationInfo) -> str:
        value = value.lower()
        allowed = KIND_MEDIA_TYPES.get(info.data.get("kind", ""), ())
        if allowed and not value.startswith(allowed):
            raise ValueError(f"a {info.data['kind']} is declared as {' or '.join(allowed)}")
        return value

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    owner: Owner
    captured_at: Instant | None = Field(default=None, description=f"when it was taken, {INSTANT_RANGE}")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


class UploadOut(BaseModel):
    evidence_id: uuid.UUID
    upload_url: str = Field(
        description="Presigned PUT link for the bytes, signed for the store's public address (S3_PUBLIC_ENDPOINT) when "
        "the server has one; empty once the upload is completed."
    )
    expires_in: int


class EvidenceOut(BaseModel):
    id: uuid.UUID
    kind: EvidenceKind
    status: str
    sha256: str | None
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None
    captured_at: datetime | None
    lat: float | None = None
    lng: float | None = None
    inspection_id: uuid.UUID | None
    hazard_id: uuid.UUID | None
    case_id: uuid.UUID | None
    accident_id: uuid.UUID | None = None
    created_at: datetime


class EvidenceDetail(EvidenceOut):
    download_url: str | None = Field(
        description="Where the original is fetched: a short-lived presigned link to the object store when the server "
        "has S3_PUBLIC_ENDPOINT set, else this API's own path `/api/v1/evidence/{id}/content` (send the bearer token). "
        "Null until the upload is completed."
    )
    thumbnail_url: str | None = Field(
        description="The same for the thumbnail (photos only): a presigned link, or `/api/v1/evidence/{id}/thumbnail`."
    )
