"""The bases of what crosses the wire: strict inputs, replayable actions, and outputs with one time format."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.clock import in_agency_zone


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ActionIn(Input):
    """A step a phone may have to send again after losing the answer."""

    id: uuid.UUID | None = Field(
        default=None,
        description="client id of this action; sending it again with the same content answers as the first time, "
        "other content under the same id is 409 duplicate_conflict",
    )


class Output(BaseModel):
    """Instants are given in the agencies' zone (+08:00), the same on create and on read."""

    @model_validator(mode="after")
    def _instants_in_agency_zone(self) -> Output:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, datetime):
                object.__setattr__(self, name, in_agency_zone(value))
        return self
