"""Commands' inputs: what a provider or an operator submits.

Inputs are deliberately *loose* (time zone, currency, languages, country are
plain strings; skill levels plain ints) so that the domain rules, not the
parser, judge them and can report every problem at once with a precise
message. Structure (types, HH:MM, the pricing shape, ISO currency inside a
`Money`) is still checked by pydantic: use `parse()` to get those errors in
the same `ValidationFailed` shape.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from delego_shared.events.common import (
    DeliveryMode,
    Pricing,
    SapDeclaration,
    SkillLevel,
    WorkingSpan,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import Issues, ValidationFailed
from .taxonomy import MAX_LEVEL, MIN_LEVEL, Taxonomy


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


In = TypeVar("In", bound=BaseModel)


def parse(model: type[In], data: Mapping[str, Any]) -> In:
    """Raw JSON-like data -> input model (or OfferQuery); structural errors -> ValidationFailed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None


class SkillClaim(_Input):
    """A skill code from the taxonomy and a level 1-5 (checked by the rules)."""

    code: str
    level: int

    def to_contract(self) -> SkillLevel:
        return SkillLevel(code=self.code, level=self.level)


class ProviderProfile(_Input):
    """Everything a provider declares at registration (and the merged result of an update)."""

    display_name: str
    country: str = Field(examples=["FR"])
    languages: list[str] = Field(examples=[["fr", "en"]])
    time_zone: str = Field(examples=["Asia/Kolkata"])
    schedule: list[WorkingSpan]
    weekly_capacity_hours: Decimal
    skills: list[SkillClaim] = Field(default_factory=list)
    sap_declaration: SapDeclaration | None = None
    response_window_minutes: int | None = Field(
        default=None,
        ge=5,
        le=24 * 60,
        description="working minutes to answer a proposal (none: the platform's default)",
    )


class ProviderChanges(_Input):
    """A partial update: only the fields present in the request change.

    Presence is what counts (`model_fields_set`), so `{"sap_declaration": null}`
    removes the declaration while an absent key leaves it alone.
    """

    display_name: str | None = None
    country: str | None = None
    languages: list[str] | None = None
    time_zone: str | None = None
    schedule: list[WorkingSpan] | None = None
    weekly_capacity_hours: Decimal | None = None
    skills: list[SkillClaim] | None = None
    sap_declaration: SapDeclaration | None = None
    response_window_minutes: int | None = Field(default=None, ge=5, le=24 * 60)

    _NULLABLE: ClassVar[frozenset[str]] = frozenset({"sap_declaration", "response_window_minutes"})

    def apply_to(self, current: ProviderProfile, issues: Issues) -> ProviderProfile:
        return current.model_copy(update=_present(self, self._NULLABLE, issues))


class OfferDraft(_Input):
    """Everything an offer declares (creation, and the merged result of an update)."""

    title: str
    description: str = ""
    category: str = Field(examples=["dating_assistance"])
    skills: list[SkillClaim]
    languages: list[str]
    delivery_mode: DeliveryMode
    sap_activity: str | None = None
    typical_effort_hours: Decimal
    currency: str = Field(examples=["EUR"])
    pricing: Pricing


class OfferChanges(_Input):
    """A partial update of an offer (presence semantics as `ProviderChanges`)."""

    title: str | None = None
    description: str | None = None
    category: str | None = None
    skills: list[SkillClaim] | None = None
    languages: list[str] | None = None
    delivery_mode: DeliveryMode | None = None
    sap_activity: str | None = None
    typical_effort_hours: Decimal | None = None
    currency: str | None = None
    pricing: Pricing | None = None

    _NULLABLE: ClassVar[frozenset[str]] = frozenset({"sap_activity"})

    def apply_to(self, current: OfferDraft, issues: Issues) -> OfferDraft:
        return current.model_copy(update=_present(self, self._NULLABLE, issues))


def _present(changes: _Input, nullable: frozenset[str], issues: Issues) -> dict[str, Any]:
    update: dict[str, Any] = {}
    for name in sorted(changes.model_fields_set):
        value = getattr(changes, name)
        if value is None and name not in nullable:
            issues.add(name, "cannot be removed (null); leave it out to keep the current value")
            continue
        update[name] = value
    return update


def check_skills(
    skills: list[SkillClaim], taxonomy: Taxonomy, issues: Issues, field: str = "skills"
) -> None:
    """Every code is in the taxonomy, every level in 1-5, no code twice."""
    seen: set[str] = set()
    for i, claim in enumerate(skills):
        if taxonomy.skill(claim.code) is None:
            issues.add(f"{field}.{i}.code", unknown_skill_message(claim.code, taxonomy))
        elif claim.code in seen:
            issues.add(f"{field}.{i}.code", f"skill '{claim.code}' is listed twice")
        seen.add(claim.code)
        if not MIN_LEVEL <= claim.level <= MAX_LEVEL:
            issues.add(
                f"{field}.{i}.level",
                f"level {claim.level} is outside {MIN_LEVEL}-{MAX_LEVEL}",
            )


def unknown_skill_message(code: str, taxonomy: Taxonomy) -> str:
    close = difflib.get_close_matches(code, [s.code for s in taxonomy.skills], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown skill '{code}' (codes are '<category>.<skill>', e.g. translation.en-fr){hint}"


def unknown_category_message(code: str, taxonomy: Taxonomy) -> str:
    return f"unknown category '{code}' (one of {', '.join(c.code for c in taxonomy.categories)})"


def unknown_sap_message(code: str, taxonomy: Taxonomy) -> str:
    close = difflib.get_close_matches(
        code, [a.code for a in taxonomy.sap_activities.activities], n=3
    )
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown SAP activity '{code}' (Code du travail D7231-1 list){hint}"
