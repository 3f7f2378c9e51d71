"""What crosses the wire for evidence uploads and records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from backend.wire import Input

EvidenceKind = Literal["photo", "audio", "video", "document"]


class Owner(Input):
    inspection_id: uuid.UUID | None = None
    hazard_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Owner:
        if sum(x is not None for x in (self.inspection_id, self.hazard_id, self.case_id)) != 1:
            raise ValueError("exactly one of inspection_id, hazard_id, case_id names the owner")
        return self


class EvidenceFields(Owner):
    """The form fields that come with the file in `POST /evidence`."""

    id: uuid.UUID | None = None
    kind: EvidenceKind
    captured_at: AwareDatetime | None = None
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
    content_type: str = Field(min_length=3, max_length=100)
    size: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    owner: Owner
    captured_at: AwareDatetime | None = None
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
