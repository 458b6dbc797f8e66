"""Error shapes the HTTP edge relies on."""

import pytest
from catalog.domain import FieldIssue, IllegalTransition, OfferDraft, ValidationFailed, parse


def test_validation_failed_needs_at_least_one_issue():
    with pytest.raises(ValueError, match="at least one issue"):
        ValidationFailed([])


def test_as_list_keeps_every_issue_in_order():
    exc = ValidationFailed(
        [FieldIssue(field="a", message="m1"), FieldIssue(field="b", message="m2")]
    )
    assert exc.as_list() == [{"field": "a", "message": "m1"}, {"field": "b", "message": "m2"}]
    assert exc.fields == {"a", "b"}
    assert str(exc) == "a: m1; b: m2"


def test_structural_errors_get_the_same_shape_with_dotted_fields():
    with pytest.raises(ValidationFailed) as exc:
        parse(OfferDraft, {"title": "x", "skills": [{"code": "c"}], "unexpected": 1})
    fields = exc.value.fields
    assert "skills.0.level" in fields
    assert "category" in fields
    assert "unexpected" in fields


def test_illegal_transition_names_the_aggregate_state_and_action():
    exc = IllegalTransition("offer", "off_1", "withdrawn", "publish")
    assert (exc.aggregate, exc.aggregate_id, exc.status, exc.action) == (
        "offer",
        "off_1",
        "withdrawn",
        "publish",
    )
    assert str(exc) == "cannot publish offer off_1: it is withdrawn"
