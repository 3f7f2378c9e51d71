"""The bases of what crosses the wire: strict inputs, replayable actions, and outputs with one time format.

Every `Input` refuses text the database cannot keep or a single line cannot show: a NUL byte (PostgreSQL refuses it in
`text`), and any other C0 control character but tab, line feed and carriage return; a `Line` field takes none of
those either. Instants and deadlines come in through `Instant` and `Deadline`, whose ranges keep every date the
service computes from them (the end of a local day, a later deadline) inside what Python and the database can hold.
Each refusal is a 400 `validation_error` naming the field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.clock import in_agency_zone, now

# C0 controls (and DEL) but tab, line feed and carriage return: never part of text a person wrote.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# In a single line (a name, a number, a title) tab and line breaks are refused too.
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

DEADLINE_MIN = date(2000, 1, 1)
DEADLINE_MAX = date(2100, 12, 31)
INSTANT_MIN = datetime(1990, 1, 1, tzinfo=UTC)
INSTANT_SLACK = timedelta(days=1)  # a phone's clock may run ahead of the server's


def control_character_problem(value: str, *, single_line: bool = False) -> str | None:
    """Why `value` is refused as text, or None when it is acceptable."""
    found = (_LINE_CONTROL if single_line else _CONTROL).search(value)
    if found is None:
        return None
    char = found.group()
    name = "a NUL byte" if char == "\x00" else f"the control character U+{ord(char):04X}"
    return f"must not contain {name}" + (" (a single line of text)" if single_line and char in "\t\n\r" else "")


def _strings(value: Any) -> Iterable[str]:
    """Every string in a field's value: the value itself, or the items of a list, set or dict (keys too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)


def _single_line(value: str) -> str:
    problem = control_character_problem(value, single_line=True)
    if problem:
        raise ValueError(problem)
    return value


# The same rules as patterns, for the OpenAPI document (validation uses the checks above, with clearer messages).
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"

Line = Annotated[str, AfterValidator(_single_line), Field(json_schema_extra={"pattern": LINE_PATTERN})]
"""Text of one line (a name, a number, a title): no control characters at all."""


def _deadline_in_range(value: date | datetime) -> date | datetime:
    day = value.date() if isinstance(value, datetime) else value
    if not DEADLINE_MIN <= day <= DEADLINE_MAX:
        raise ValueError(f"must lie between {DEADLINE_MIN.isoformat()} and {DEADLINE_MAX.isoformat()}")
    return value


Deadline = Annotated[date | AwareDatetime, AfterValidator(_deadline_in_range)]
"""A date (the end of that day in the agencies' zone) or an instant with its offset, 2000-01-01 to 2100-12-31."""
DEADLINE_RANGE = f"between {DEADLINE_MIN.isoformat()} and {DEADLINE_MAX.isoformat()}"


def _instant_in_range(value: datetime) -> datetime:
    latest = now() + INSTANT_SLACK
    if not INSTANT_MIN <= value <= latest:
        raise ValueError(f"must lie between {INSTANT_MIN.date().isoformat()} and one day from now")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_instant_in_range)]
"""When something happened, with its offset: from 1990-01-01 to one day from now."""
INSTANT_RANGE = f"with its offset, between {INSTANT_MIN.date().isoformat()} and one day from now"


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        """Every text field, and the strings inside list fields; nested inputs check their own fields."""
        for text in _strings(value):
            problem = control_character_problem(text)
            if problem:
                raise ValueError(problem)
        return value


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
