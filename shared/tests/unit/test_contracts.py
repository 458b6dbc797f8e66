"""The compatibility checker must catch what would break a consumer."""

import copy

from delego_shared.contracts import asyncapi_document, breaking_changes


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
