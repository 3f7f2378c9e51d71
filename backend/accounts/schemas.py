"""What crosses the wire for logins, agencies, users and enterprises."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from backend.accounts.credit_code import credit_code_error
from backend.vocabulary import Role, Topic
from backend.wire import Input, Line, Output


class LoginIn(Input):
    username: Line = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=200)


class UserOut(Output):
    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    agency_id: uuid.UUID | None
    enterprise_id: uuid.UUID | None
    certificate_no: str | None = None


class LoginOut(Output):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserOut


class AgencyIn(Input):
    name: Line = Field(min_length=1, max_length=200)
    region_code: str = Field(pattern=r"^\d{6}(\d{3}(\d{3})?)?$", description="行政区划代码 (6, 9 or 12 digits)")
    parent_id: uuid.UUID | None = None


class AgencyOut(Output):
    id: uuid.UUID
    name: str
    region_code: str
    parent_id: uuid.UUID | None
    created_at: datetime


class UserIn(Input):
    username: str = Field(min_length=3, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=200)
    display_name: Line = Field(min_length=1, max_length=100)
    role: Role
    agency_id: uuid.UUID | None = None
    enterprise_id: uuid.UUID | None = None
    certificate_no: Line | None = Field(default=None, min_length=1, max_length=64, description="执法证号")


class Location(Input):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)


class EnterpriseIn(Input):
    name: Line = Field(min_length=1, max_length=200)
    credit_code: str = Field(description="统一社会信用代码 (GB 32100-2015), 18 characters with a valid check character")
    topics: list[Topic] = Field(min_length=1, max_length=len(Topic))
    agency_id: uuid.UUID
    address: Line = Field(min_length=1, max_length=300)
    location: Location | None = None
    principal: Line | None = Field(default=None, max_length=100, description="主要负责人")
    safety_manager: Line | None = Field(default=None, max_length=100, description="安全管理人员")

    @field_validator("credit_code")
    @classmethod
    def _valid_credit_code(cls, value: str) -> str:
        value = value.upper()
        error = credit_code_error(value)
        if error:
            raise ValueError(error)
        return value

    @field_validator("topics")
    @classmethod
    def _each_once(cls, value: list[Topic]) -> list[Topic]:
        return sorted(set(value))


class EnterpriseOut(Output):
    id: uuid.UUID
    name: str
    credit_code: str
    topics: list[Topic]
    agency_id: uuid.UUID
    address: str
    location: Location | None
    principal: str | None
    safety_manager: str | None
    created_at: datetime
