"""The official AsyncAPI parser (`@asyncapi/parser` 3.x, the library under the AsyncAPI
CLI and Studio) accepts both catalogues: what downstream tooling will load.

The parser is a small npm project, `tools/asyncapi-check/` (version pinned by its
`package-lock.json`), installed by `make node-deps` (a step of `make test`).
"""

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from delego_shared.contracts import asyncapi_document, render

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "tools" / "asyncapi-check"


def parse(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (node on the PATH) is needed for the AsyncAPI parser")
    if not (CHECK / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("the AsyncAPI parser is not installed: run `make node-deps`")
    return subprocess.run(
        [node, str(CHECK / "check.mjs"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_installed_parser_is_the_pinned_3x_release():
    lock = json.loads((CHECK / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/@asyncapi/parser"]["version"]
    installed = json.loads((CHECK / "node_modules/@asyncapi/parser/package.json").read_text())
    assert pinned.startswith("3.")
    assert installed["version"] == pinned


def test_the_official_parser_accepts_both_catalogues():
    files = [ROOT / "contracts" / "asyncapi.json", ROOT / "contracts/published/asyncapi-v1.json"]
    result = parse(*files)
    assert result.returncode == 0, result.stdout + result.stderr
    for f in files:
        assert f"{f}: valid AsyncAPI 3.0.0" in result.stdout
    assert ": error:" not in result.stdout


def test_the_parser_rejects_a_pydantic_style_discriminator(tmp_path):
    """What the catalogues had before: proves the check above can fail."""
    doc = copy.deepcopy(asyncapi_document())
    pricing = doc["components"]["schemas"]["OfferSnapshot"]["properties"]["pricing"]
    assert pricing["discriminator"] == "model"
    pricing["discriminator"] = {"propertyName": "model", "mapping": {}}
    bad = tmp_path / "asyncapi.json"
    bad.write_text(render(doc))
    result = parse(bad)
    assert result.returncode == 1
    assert '"discriminator" property type must be string' in result.stdout
