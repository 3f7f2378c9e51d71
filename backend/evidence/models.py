"""Evidence records. The bytes live in the object store under keys the server derives; never client input."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk


class Evidence(SQLModel, table=True):
    __tablename__ = "evidence"

    id: uuid.UUID = uuid_pk()
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16, default="stored")  # pending (presigned upload not yet checked) | stored
    sha256: str | None = Field(default=None, max_length=64, index=True)
    size: int = Field(sa_type=BigInteger)
    content_type: str = Field(max_length=100)
    width: int | None = None
    height: int | None = None
    captured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lat: float | None = None
    lng: float | None = None
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id", index=True)
    hazard_id: uuid.UUID | None = Field(default=None, foreign_key="hazard.id", index=True)
    case_id: uuid.UUID | None = Field(default=None, index=True)
    accident_id: uuid.UUID | None = Field(default=None, foreign_key="accident.id", index=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    object_key: str = Field(max_length=200)
    thumbnail_key: str | None = Field(default=None, max_length=200)
    declared_sha256: str | None = Field(default=None, max_length=64)
    uploaded_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()
