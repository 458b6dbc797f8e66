"""The taxonomy data file: required content and the consistency checks on load."""

import json
import re
from importlib.resources import files
from typing import Any

import pytest
from catalog.domain import default_taxonomy, parse_taxonomy
from pydantic import ValidationError

REQUIRED_CATEGORIES = {
    "virtual_assistance",
    "concierge",
    "tutoring",
    "dating_assistance",
    "admin_paperwork",
    "cv_writing",
    "translation",
    "blog_moderation",
    "travel_booking",
    "gaming",
}


def _raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        files("catalog.domain").joinpath("taxonomy.json").read_text("utf-8")
    )
    return data


def test_required_categories_are_present():
    codes = {c.code for c in default_taxonomy().categories}
    assert codes >= REQUIRED_CATEGORIES


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("translation.en-fr", "translation"),
        ("tutoring.maths", "tutoring"),
        ("blog_moderation.comments", "blog_moderation"),
        ("dating_assistance.profile_writing", "dating_assistance"),
        ("virtual_assistance.agenda", "virtual_assistance"),
        ("admin_paperwork.tax_return", "admin_paperwork"),
    ],
)
def test_example_skills_belong_to_their_category(code, category):
    skill = default_taxonomy().skill(code)
    assert skill is not None
    assert skill.category == category


def test_every_category_has_skills_and_levels_are_one_to_five():
    tax = default_taxonomy()
    assert [lv.level for lv in tax.levels] == [1, 2, 3, 4, 5]
    for category in tax.categories:
        assert tax.skills_of(category.code), category.code


def test_sap_activities_cite_d7231_1_and_mark_remote_ones():
    tax = default_taxonomy()
    assert "D7231-1" in tax.sap_activities.source
    tele = tax.sap_activity("teleassistance_visioassistance")
    tutoring = tax.sap_activity("soutien_scolaire_domicile")
    assert tele is not None
    assert tele.remote is True
    assert tutoring is not None
    assert tutoring.remote is False
    assert tutoring.label_fr == "Soutien scolaire ou cours à domicile"
    for code in (
        "assistance_administrative_domicile",
        "assistance_informatique_domicile",
        "entretien_maison",
        "jardinage",
        "petit_bricolage",
        "garde_enfant_domicile",
    ):
        activity = tax.sap_activity(code)
        assert activity is not None, code
        assert activity.label_fr
        assert not activity.remote
    assert [a.code for a in tax.sap_activities.activities if a.remote] == [
        "teleassistance_visioassistance"
    ]


def test_unknown_codes_are_not_found():
    tax = default_taxonomy()
    assert tax.skill("translation.xx-yy") is None
    assert tax.category("astrology") is None
    assert tax.sap_activity("astrologie") is None


def test_skill_with_prefix_of_another_category_is_rejected():
    raw = _raw()
    raw["skills"].append(
        {"code": "tutoring.agenda", "category": "virtual_assistance", "label": "x"}
    )
    with pytest.raises(
        ValidationError, match=re.escape("'tutoring.agenda' must be '<category>.<name>'")
    ):
        parse_taxonomy(json.dumps(raw))


def test_skill_of_unknown_category_is_rejected():
    raw = _raw()
    raw["skills"].append({"code": "astrology.charts", "category": "astrology", "label": "x"})
    with pytest.raises(ValidationError, match="unknown category 'astrology'"):
        parse_taxonomy(json.dumps(raw))


def test_duplicate_codes_are_rejected():
    raw = _raw()
    raw["skills"].append(dict(raw["skills"][0]))
    raw["sap_activities"]["activities"].append(dict(raw["sap_activities"]["activities"][0]))
    with pytest.raises(ValidationError) as exc:
        parse_taxonomy(json.dumps(raw))
    assert f"duplicate skill {raw['skills'][0]['code']}" in str(exc.value)
    assert "duplicate SAP activity" in str(exc.value)


def test_levels_must_be_exactly_one_to_five():
    raw = _raw()
    raw["levels"] = raw["levels"][:4]
    with pytest.raises(ValidationError, match=re.escape("levels must be exactly 1..5")):
        parse_taxonomy(json.dumps(raw))
