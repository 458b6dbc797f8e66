"""The local runner's pure helpers (no broker started)."""

from __future__ import annotations

import base64
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def _localinfra() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "localinfra", REPO / "deploy" / "local" / "localinfra.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_cluster_ids_never_start_with_a_dash_and_are_16_byte_uuids() -> None:
    new_cluster_id = _localinfra().new_cluster_id
    ids = [new_cluster_id() for _ in range(20_000)]
    # with ~1 in 64 drawn ids starting with '-', 20 000 draws hit that case ~300 times
    assert not [i for i in ids if i.startswith("-")]
    for i in ids[:500]:
        assert len(i) == 22
        assert len(base64.urlsafe_b64decode(i + "==")) == 16
    assert len(set(ids)) == len(ids)
