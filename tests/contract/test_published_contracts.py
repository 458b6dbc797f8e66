"""The AsyncAPI catalogue in the repository is the code's, and stays backward compatible.

`contracts/asyncapi.json` must equal what the event models generate
(regenerate with `uv run delego contracts generate`). `contracts/published/`
holds the catalogue as released for major version 1: a change that would break
a consumer of it fails here — add fields, never remove, retype or require new
ones within a major version; a breaking change needs a new `.v2` topic.
"""

import json
from pathlib import Path

from delego_shared.contracts import asyncapi_document, breaking_changes, render

ROOT = Path(__file__).resolve().parents[2]


def test_committed_asyncapi_matches_the_code():
    committed = (ROOT / "contracts" / "asyncapi.json").read_text()
    assert committed == render(asyncapi_document()), (
        "contracts/asyncapi.json is out of date: run `uv run delego contracts generate`"
    )


def test_code_is_backward_compatible_with_the_published_v1_catalogue():
    published = json.loads((ROOT / "contracts" / "published" / "asyncapi-v1.json").read_text())
    assert breaking_changes(published, asyncapi_document()) == []
