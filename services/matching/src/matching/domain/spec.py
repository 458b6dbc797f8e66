"""What a client asks for: the request specification (no lifecycle here).

The private description stays on this model for the provider who accepts, but
is excluded from `repr`/`str` (log-friendly) and never copied into an event.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from delego_shared.events.common import SkillLevel, Weekday, WorkingSpan
from delego_shared.events.matching import DelegationLevel, LiveWindow
from delego_shared.types import (
    IanaZone,
    LanguageTag,
    Money,
    UtcInstant,
    decimal_number_schema,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .schedule import next_working_day_start

_WEEKDAYS = frozenset({Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI})


class NextWorkingDay(BaseModel):
    """Deadline "by the start of my next working day", resolved in the client's zone.

    Default: the next Monday-Friday at 09:00 local strictly after submission.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["next_working_day"] = "next_working_day"
    start: str = Field(default="09:00", json_schema_extra={"pattern": r"^([01]\d|2[0-3]):[0-5]\d$"})
    workdays: frozenset[Weekday] = Field(default=_WEEKDAYS, json_schema_extra={"minItems": 1})

    @field_validator("start")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        WorkingSpan(day=Weekday.MON, start=v, end=v)  # reuse the shared HH:MM check
        if v == "24:00":
            raise ValueError("a working day cannot start at 24:00")
        return v

    def resolve(self, now: datetime, client_zone: str) -> datetime:
        return next_working_day_start(now, client_zone, start=self.start, workdays=self.workdays)


RULE_EFFORT = "give an effort estimate in hours or a number of units"
RULE_BUDGET = "a budget must be greater than zero"
RULE_LIVE_WINDOW = "the live-session window must end after it starts"
RULE_DEADLINE_PAST = "the deadline is already past"
RULE_DEADLINE_AFTER_START = "the deadline must come after not_before"
DRAFT_RULES = (
    RULE_EFFORT,
    RULE_BUDGET,
    RULE_LIVE_WINDOW,
    RULE_DEADLINE_PAST,
    RULE_DEADLINE_AFTER_START,
)
"""A draft's rules across fields or relative to now (a JSON schema cannot say them;
the API documents them in these words, the words of the 422)."""


class _RequestFields(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str = Field(min_length=1, max_length=64)
    required_skills: list[SkillLevel] = Field(default_factory=list)
    languages: list[LanguageTag] = Field(min_length=1)
    effort_hours: Decimal | None = Field(
        default=None, gt=0, le=1000, json_schema_extra=decimal_number_schema
    )
    units: int | None = Field(default=None, ge=1, le=10_000)
    client_zone: IanaZone
    budget: Money | None = None
    live_window: LiveWindow | None = None
    delegation_level: DelegationLevel = DelegationLevel.ACT_WITH_REVIEW
    description: str = Field(default="", max_length=4000, repr=False)
    """Private: for the accepted provider only; never in events or logs."""
    not_before: UtcInstant | None = None
    """Start-after: no work before this instant (earliest finish, reservations,
    a relative deadline and the score all count from it)."""

    @model_validator(mode="after")
    def _coherent(self) -> _RequestFields:
        if self.effort_hours is None and self.units is None:
            raise ValueError(RULE_EFFORT)
        if self.budget is not None and self.budget.amount <= 0:
            raise ValueError(RULE_BUDGET)
        if self.live_window is not None and self.live_window.end <= self.live_window.start:
            raise ValueError(RULE_LIVE_WINDOW)
        return self


class RequestDraft(_RequestFields):
    """A request as submitted: the deadline may still be relative."""

    deadline: UtcInstant | NextWorkingDay

    def resolve(self, now: datetime) -> RequestSpec:
        """Fix the deadline as an instant (a relative one from `not_before` when later
        than `now`); a deadline not after `now` or `not_before` is refused."""
        start = max(now, self.not_before) if self.not_before is not None else now
        deadline = (
            self.deadline.resolve(start, self.client_zone)
            if isinstance(self.deadline, NextWorkingDay)
            else self.deadline
        )
        if deadline <= now:
            raise ValueError(RULE_DEADLINE_PAST)
        if deadline <= start:
            raise ValueError(RULE_DEADLINE_AFTER_START)
        data = self.model_dump(exclude={"deadline"})
        return RequestSpec.model_validate({**data, "deadline": deadline})


class RequestSpec(_RequestFields):
    """A request with its deadline fixed as a UTC instant (what matching uses)."""

    deadline: UtcInstant
