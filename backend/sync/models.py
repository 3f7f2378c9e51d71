"""The change feed phones catch up from. One row per change, written in the same transaction as the change."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from backend.db import created_at_field


class ChangeLog(SQLModel, table=True):
    __tablename__ = "change_log"

    seq: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True)
    )
    # PostgreSQL fills this with the writing transaction's id (see the migration); readers only pass rows from
    # transactions older than every transaction still running, so a late commit can never be skipped.
    txid: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.FetchedValue(), index=True))
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    op: str = Field(max_length=16)
    enterprise_id: str | None = Field(default=None, max_length=64, index=True)
    agency_path: str | None = Field(default=None, max_length=1200, index=True)
    at: datetime = created_at_field()
