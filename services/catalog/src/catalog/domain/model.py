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
from delego_shared.types import (
    COUNTRY_PATTERN,
    ISO_4217,
    LANGUAGE_PATTERN,
    decimal_number_schema,
    zone_names,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import Issues, ValidationFailed
from .schedule import MAX_SPANS, MAX_WEEKLY_HOURS
from .taxonomy import MAX_LEVEL, MIN_LEVEL, Taxonomy, default_taxonomy

# --- what the rules accept, said in the schema --------------------------------------
# The domain still judges (every problem at once, in its own words); these schemas
# tell a client beforehand. What a schema cannot say (across fields, against the
# provider's profile, relative to today) is listed as the operation's rules
# (`RULES_*`, in the words of the 422).

_TAXONOMY = default_taxonomy()
NON_BLANK = r"\S"
COUNTRY_SCHEMA: dict[str, Any] = {"type": "string", "pattern": COUNTRY_PATTERN}
ZONE_SCHEMA: dict[str, Any] = {"type": "string", "enum": zone_names()}
LANGUAGE_SCHEMA: dict[str, Any] = {"type": "string", "pattern": LANGUAGE_PATTERN}
LANGUAGES_SCHEMA: dict[str, Any] = {"type": "array", "items": LANGUAGE_SCHEMA, "minItems": 1}
SKILL_CODE_SCHEMA: dict[str, Any] = {"type": "string", "enum": [k.code for k in _TAXONOMY.skills]}
CATEGORY_SCHEMA: dict[str, Any] = {"type": "string", "enum": [c.code for c in _TAXONOMY.categories]}
SAP_ACTIVITY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": [a.code for a in _TAXONOMY.sap_activities.activities],
}
SCHEDULE_EXTRA: dict[str, Any] = {"minItems": 1, "maxItems": MAX_SPANS}
CURRENCY_SCHEMA: dict[str, Any] = {"type": "string", "enum": sorted(ISO_4217)}
PRICING_EXTRA: dict[str, Any] = {"required": ["model"]}
"""The pricing's `model` tag chooses its shape: a request must name it."""
TITLE_MAX = 200
DESCRIPTION_MAX = 4000


def positive_decimal_schema(maximum: Decimal | None = None) -> Any:
    """`json_schema_extra` of a `Decimal` input: a number above 0 (and at most `maximum`)."""

    def extra(schema: dict[str, Any]) -> None:
        decimal_number_schema(schema)
        for target in [schema, *schema.get("anyOf", [])]:
            if target.get("type") == "number" or "anyOf" not in schema:
                target["exclusiveMinimum"] = 0
                if maximum is not None:
                    target["maximum"] = float(maximum)
                target.setdefault("type", "number")
                break

    return extra


def absent_not_null(nullable: frozenset[str]) -> Any:
    """Model `json_schema_extra` of a partial update: a field may be left out, but null
    only where it removes something (`_NULLABLE`); elsewhere the rules refuse null."""

    def extra(schema: dict[str, Any]) -> None:
        for name, prop in schema.get("properties", {}).items():
            branches = prop.get("anyOf")
            if name in nullable or not isinstance(branches, list):
                continue
            kept = [b for b in branches if b.get("type") != "null"]
            prop.pop("default", None)
            if len(kept) == 1:
                prop.pop("anyOf")
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept

    return extra


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


RULE_TWICE = "is listed twice"
RULE_CONTACT = "contact data never leaves the platform"
RULES_PROFILE = (
    RULE_TWICE,
    RULE_CONTACT,
    "is an end of day, not a start",
    "zero-length span",
    "overlaps",
    "of the weekly schedule; add working spans or lower the capacity",
    "is in the future",
    "cannot be removed (null)",
)
RULE_OPERATOR_PROVIDER = "is required when an operator creates an offer"
RULES_OFFER = (
    RULE_OPERATOR_PROVIDER,
    RULE_TWICE,
    RULE_CONTACT,
    "the provider does not declare skill",
    "exceeds the provider's declared level",
    "none of the skills belongs to category",
    "is not among the provider's languages",
    "differs from the offer currency",
    "has more decimals than",
    "must divide an hour evenly",
    "is not a multiple of increment_minutes",
    "exceeds the typical effort of the offer",
    "must be greater than zero",
    "must be less than",
    "h a month (31 x 24)",
    "must not be blank (e.g. 'module')",
    "cannot be removed (null)",
)
"""An offer's rules a JSON schema cannot say (against the provider's profile, across
the price, currency and effort fields)."""
"""A profile's rules a JSON schema cannot say (duplicates, contact data in names,
span overlaps, capacity against the schedule, a SAP declaration dated after today)."""


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

    code: str = Field(json_schema_extra=SKILL_CODE_SCHEMA)
    level: int = Field(json_schema_extra={"minimum": MIN_LEVEL, "maximum": MAX_LEVEL})

    def to_contract(self) -> SkillLevel:
        return SkillLevel(code=self.code, level=self.level)


DISPLAY_NAME_MAX = 120


class ProviderProfile(_Input):
    """Everything a provider declares at registration (and the merged result of an update)."""

    display_name: str = Field(
        json_schema_extra={"maxLength": DISPLAY_NAME_MAX, "pattern": NON_BLANK}
    )
    country: str = Field(examples=["FR"], json_schema_extra=COUNTRY_SCHEMA)
    languages: list[str] = Field(examples=[["fr", "en"]], json_schema_extra=LANGUAGES_SCHEMA)
    time_zone: str = Field(examples=["Asia/Kolkata"], json_schema_extra=ZONE_SCHEMA)
    schedule: list[WorkingSpan] = Field(json_schema_extra=SCHEDULE_EXTRA)
    weekly_capacity_hours: Decimal = Field(
        json_schema_extra=positive_decimal_schema(MAX_WEEKLY_HOURS)
    )
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

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra=absent_not_null(
            frozenset({"sap_declaration", "response_window_minutes"})
        ),
    )

    display_name: str | None = Field(
        default=None,
        json_schema_extra={
            "anyOf": [
                {"type": "string", "maxLength": DISPLAY_NAME_MAX, "pattern": NON_BLANK},
                {"type": "null"},
            ]
        },
    )
    country: str | None = Field(default=None, json_schema_extra=_nullable(COUNTRY_SCHEMA))
    languages: list[str] | None = Field(default=None, json_schema_extra=_nullable(LANGUAGES_SCHEMA))
    time_zone: str | None = Field(default=None, json_schema_extra=_nullable(ZONE_SCHEMA))
    schedule: list[WorkingSpan] | None = Field(default=None, json_schema_extra=SCHEDULE_EXTRA)
    weekly_capacity_hours: Decimal | None = Field(
        default=None, json_schema_extra=positive_decimal_schema(MAX_WEEKLY_HOURS)
    )
    skills: list[SkillClaim] | None = None
    sap_declaration: SapDeclaration | None = None
    response_window_minutes: int | None = Field(default=None, ge=5, le=24 * 60)

    _NULLABLE: ClassVar[frozenset[str]] = frozenset({"sap_declaration", "response_window_minutes"})

    def apply_to(self, current: ProviderProfile, issues: Issues) -> ProviderProfile:
        return current.model_copy(update=_present(self, self._NULLABLE, issues))


class OfferDraft(_Input):
    """Everything an offer declares (creation, and the merged result of an update)."""

    title: str = Field(json_schema_extra={"maxLength": TITLE_MAX, "pattern": NON_BLANK})
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    category: str = Field(examples=["dating_assistance"], json_schema_extra=CATEGORY_SCHEMA)
    skills: list[SkillClaim] = Field(json_schema_extra={"minItems": 1})
    languages: list[str] = Field(json_schema_extra=LANGUAGES_SCHEMA)
    delivery_mode: DeliveryMode
    sap_activity: str | None = Field(
        default=None, json_schema_extra={"anyOf": [SAP_ACTIVITY_SCHEMA, {"type": "null"}]}
    )
    typical_effort_hours: Decimal = Field(json_schema_extra=positive_decimal_schema())
    currency: str = Field(examples=["EUR"], json_schema_extra=CURRENCY_SCHEMA)
    pricing: Pricing = Field(json_schema_extra=PRICING_EXTRA)


class OfferChanges(_Input):
    """A partial update of an offer (presence semantics as `ProviderChanges`)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra=absent_not_null(frozenset({"sap_activity"}))
    )

    title: str | None = Field(
        default=None,
        json_schema_extra={
            "anyOf": [{"type": "string", "maxLength": TITLE_MAX, "pattern": NON_BLANK}]
        },
    )
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    category: str | None = Field(default=None, json_schema_extra={"anyOf": [CATEGORY_SCHEMA]})
    skills: list[SkillClaim] | None = Field(default=None, json_schema_extra={"minItems": 1})
    languages: list[str] | None = Field(
        default=None, json_schema_extra={"anyOf": [LANGUAGES_SCHEMA]}
    )
    delivery_mode: DeliveryMode | None = None
    sap_activity: str | None = Field(
        default=None, json_schema_extra={"anyOf": [SAP_ACTIVITY_SCHEMA, {"type": "null"}]}
    )
    typical_effort_hours: Decimal | None = Field(
        default=None, json_schema_extra=positive_decimal_schema()
    )
    currency: str | None = Field(default=None, json_schema_extra={"anyOf": [CURRENCY_SCHEMA]})
    pricing: Pricing | None = Field(default=None, json_schema_extra=PRICING_EXTRA)

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
