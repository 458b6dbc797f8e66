"""Skill/category taxonomy and SAP activity list, kept as data (`taxonomy.json`).

The codes are part of the public contract (they travel on offer and provider
events), so they live in one reviewed data file rather than scattered through
code. Loading validates the file's internal consistency, so a bad edit fails
at start-up, not at the first offer.
"""

from __future__ import annotations

import json
import re
from functools import cached_property, lru_cache
from importlib.resources import files
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIN_LEVEL = 1
MAX_LEVEL = 5

_CATEGORY_CODE = re.compile(r"^[a-z][a-z_]*$")
_SKILL_CODE = re.compile(r"^([a-z][a-z_]*)\.[a-z0-9][a-z0-9_-]*$")
_SAP_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Level(_Data):
    level: int = Field(ge=MIN_LEVEL, le=MAX_LEVEL)
    label: str


class Category(_Data):
    code: str
    label: str
    label_fr: str


class Skill(_Data):
    code: str = Field(max_length=64)
    category: str
    label: str


class SapActivity(_Data):
    """One activity of Code du travail D7231-1 (`remote`: performed at a distance by nature)."""

    code: str
    label_fr: str
    ref: str
    remote: bool


class SapActivities(_Data):
    source: str
    remote_note: str
    activities: tuple[SapActivity, ...]


class Taxonomy(_Data):
    """The whole taxonomy with lookups; immutable once loaded."""

    version: str
    description: str = ""
    levels: tuple[Level, ...]
    categories: tuple[Category, ...]
    skills: tuple[Skill, ...]
    sap_activities: SapActivities

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        if [lv.level for lv in self.levels] != list(range(MIN_LEVEL, MAX_LEVEL + 1)):
            problems.append(f"levels must be exactly {MIN_LEVEL}..{MAX_LEVEL} in order")
        cats = [c.code for c in self.categories]
        problems += [f"duplicate category {c}" for c in _dupes(cats)]
        problems += [f"bad category code {c!r}" for c in cats if not _CATEGORY_CODE.match(c)]
        problems += [f"duplicate skill {s}" for s in _dupes([s.code for s in self.skills])]
        for s in self.skills:
            m = _SKILL_CODE.match(s.code)
            if m is None or m.group(1) != s.category:
                problems.append(f"skill {s.code!r} must be '<category>.<name>' of {s.category!r}")
            if s.category not in cats:
                problems.append(f"skill {s.code!r} names unknown category {s.category!r}")
        sap = [a.code for a in self.sap_activities.activities]
        problems += [f"duplicate SAP activity {a}" for a in _dupes(sap)]
        problems += [f"bad SAP activity code {a!r}" for a in sap if not _SAP_CODE.match(a)]
        if problems:
            raise ValueError("inconsistent taxonomy: " + "; ".join(problems))
        return self

    @cached_property
    def _categories(self) -> dict[str, Category]:
        return {c.code: c for c in self.categories}

    @cached_property
    def _skills(self) -> dict[str, Skill]:
        return {s.code: s for s in self.skills}

    @cached_property
    def _sap(self) -> dict[str, SapActivity]:
        return {a.code: a for a in self.sap_activities.activities}

    def category(self, code: str) -> Category | None:
        return self._categories.get(code)

    def skill(self, code: str) -> Skill | None:
        return self._skills.get(code)

    def sap_activity(self, code: str) -> SapActivity | None:
        return self._sap.get(code)

    def skills_of(self, category: str) -> list[Skill]:
        return [s for s in self.skills if s.category == category]


def _dupes(codes: list[str]) -> list[str]:
    seen: set[str] = set()
    dupes: list[str] = []
    for c in codes:
        if c in seen:
            dupes.append(c)
        seen.add(c)
    return dupes


def parse_taxonomy(text: str) -> Taxonomy:
    """Parse and check a taxonomy document (JSON text)."""
    return Taxonomy.model_validate(json.loads(text))


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """The taxonomy shipped with the service (`catalog/domain/taxonomy.json`)."""
    text = files("catalog.domain").joinpath("taxonomy.json").read_text(encoding="utf-8")
    return parse_taxonomy(text)
