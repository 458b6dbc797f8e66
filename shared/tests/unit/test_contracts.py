"""The compatibility checker must catch what would break a consumer."""

import copy
import json

from delego_shared.contracts import asyncapi_document, breaking_changes, out_of_date, write_all


def test_a_document_is_compatible_with_itself():
    doc = asyncapi_document()
    assert breaking_changes(doc, doc) == []


def test_document_lists_every_topic_and_event_with_cloudevents_headers():
    doc = asyncapi_document()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {
        "catalog.providers.v1",
        "catalog.offers.v1",
        "matching.requests.v1",
        "billing.invoices.v1",
        "notifications.deliveries.v1",
        "privacy.subjects.v1",
    }
    msg = doc["components"]["messages"]["InvoiceIssued"]
    assert msg["x-ce-type"] == "delego.billing.InvoiceIssued.v1"
    assert "ce_id" in doc["components"]["schemas"]["CloudEventsHeaders"]["properties"]
    money = doc["components"]["schemas"]["Money"]
    assert money["properties"]["amount"]["type"] == "string"  # decimal string, never a float


def _edit(fn):
    old = asyncapi_document()
    new = copy.deepcopy(old)
    fn(new["components"]["schemas"], new)
    return breaking_changes(old, new)


def test_removed_field_is_breaking():
    def drop(s, _):
        del s["InvoiceIssued"]["properties"]["payable_now"]

    assert "InvoiceIssued.payable_now: removed" in _edit(drop)


def test_new_required_field_is_breaking_but_optional_one_is_not():
    def add_required(s, _):
        s["WorkRated"]["properties"]["comment"] = {"type": "string"}
        s["WorkRated"]["required"].append("comment")

    def add_optional(s, _):
        s["WorkRated"]["properties"]["comment"] = {"type": "string"}

    assert _edit(add_required) == ["WorkRated.comment: new required field"]
    assert _edit(add_optional) == []


def test_type_change_is_breaking_even_in_a_nested_model():
    def retype(s, _):
        s["Money"]["properties"]["amount"] = {"type": "number"}

    problems = _edit(retype)
    assert any("amount: type changed" in p for p in problems)


def test_removed_event_type_and_renamed_ce_type_are_breaking():
    def remove(_, doc):
        del doc["channels"]["matching_requests_v1"]["messages"]["WorkRated"]

    def rename(_, doc):
        doc["components"]["messages"]["WorkRated"]["x-ce-type"] = "delego.matching.Rated.v1"

    assert _edit(remove) == ["matching.requests.v1 WorkRated: event type removed"]
    assert _edit(rename) == [
        "WorkRated: ce_type changed from delego.matching.WorkRated.v1 to delego.matching.Rated.v1"
    ]


def _pydantic_style(doc):
    """The catalogue as it was published before: OpenAPI-style discriminator objects."""
    old = copy.deepcopy(doc)
    for schema in old["components"]["schemas"].values():
        for prop in schema.get("properties", {}).values():
            if isinstance(prop.get("discriminator"), str):
                prop["discriminator"] = {"propertyName": prop["discriminator"], "mapping": {}}
    return old


def test_discriminators_are_property_names_as_the_asyncapi_schema_format_wants():
    text = json.dumps(asyncapi_document())
    assert '"propertyName"' not in text
    pricing = asyncapi_document()["components"]["schemas"]["OfferSnapshot"]["properties"]
    assert pricing["pricing"]["discriminator"] == "model"


def test_the_discriminators_spelling_is_not_a_break_its_property_and_variants_are():
    new = asyncapi_document()
    old = _pydantic_style(new)
    assert old != new
    assert breaking_changes(old, new) == []

    renamed = copy.deepcopy(new)
    renamed["components"]["schemas"]["OfferSnapshot"]["properties"]["pricing"]["discriminator"] = (
        "kind"
    )
    assert "OfferPublished.offer.pricing: discriminator changed from model to kind" in (
        breaking_changes(old, renamed)
    )


def test_a_removed_variant_or_a_field_removed_inside_one_is_breaking():
    def drop_variant(s, _):
        variants = s["OfferSnapshot"]["properties"]["pricing"]["oneOf"]
        variants.remove({"$ref": "#/components/schemas/PerUnitPricing"})

    def drop_rate(s, _):
        del s["HourlyPricing"]["properties"]["rate"]

    assert "OfferPublished.offer.pricing[model=per_unit]: variant removed" in _edit(drop_variant)
    assert "MatchAccepted.terms.pricing[model=hourly].rate: removed" in _edit(drop_rate)


def test_write_all_writes_one_schema_per_event_and_out_of_date_sees_drift(tmp_path):
    target = tmp_path / "asyncapi.json"
    assert out_of_date(target)  # nothing written yet
    written = write_all(target)
    assert out_of_date(target) == []
    assert len(written) == 1 + len(asyncapi_document()["components"]["messages"])
    one = tmp_path / "schemas" / "delego.billing.InvoiceIssued.v1.json"
    assert json.loads(one.read_text())["title"] == "delego.billing.InvoiceIssued.v1"

    one.write_text("{}\n")
    stale = tmp_path / "schemas" / "delego.billing.Gone.v1.json"
    stale.write_text("{}\n")
    assert out_of_date(target) == [f"{one}: out of date", f"{stale}: no such event type"]
    write_all(target)
    assert out_of_date(target) == [] and not stale.exists()
