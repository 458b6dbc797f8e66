"""The AsyncAPI catalogue in the repository is the code's, and stays backward compatible.

`contracts/asyncapi.json` and the per-event JSON Schemas in `contracts/schemas/`
must equal what the event models generate (regenerate both with
`.venv/bin/delego contracts generate`). `contracts/published/`
holds the catalogue as released for major version 1: a change that would break
a consumer of it fails here — add fields, never remove, retype or require new
ones within a major version; a breaking change needs a new `.v2` topic.
"""

import json
from pathlib import Path

from delego_shared.contracts import (
    asyncapi_document,
    breaking_changes,
    event_json_schemas,
    out_of_date,
    render,
)
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]


def test_committed_asyncapi_matches_the_code():
    committed = (ROOT / "contracts" / "asyncapi.json").read_text()
    assert committed == render(asyncapi_document()), (
        "contracts/asyncapi.json is out of date: run `.venv/bin/delego contracts generate`"
    )


def test_code_is_backward_compatible_with_the_published_v1_catalogue():
    published = json.loads((ROOT / "contracts" / "published" / "asyncapi-v1.json").read_text())
    assert breaking_changes(published, asyncapi_document()) == []


def test_committed_json_schemas_are_current_one_per_event_type():
    schemas = ROOT / "contracts" / "schemas"
    assert out_of_date(ROOT / "contracts" / "asyncapi.json") == [], (
        "run `.venv/bin/delego contracts generate`"
    )
    types = {m["x-ce-type"] for m in asyncapi_document()["components"]["messages"].values()}
    assert {p.stem for p in schemas.glob("*.json")} == types


def test_each_json_schema_is_a_valid_2020_12_schema_that_stands_alone():
    for ce_type, schema in event_json_schemas().items():
        Draft202012Validator.check_schema(schema)
        assert "#/components/" not in json.dumps(schema), ce_type  # no ref into AsyncAPI
