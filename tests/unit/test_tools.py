"""deploy/local/tools.py without building anything: a cached tool is reused as it is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tools", REPO / "deploy" / "local" / "tools.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["promtool", "compose"])
def test_a_cached_tool_is_reused_without_go(name, tmp_path, monkeypatch):
    tools = _tools()
    tool = tools.TOOLS[name]
    cached = tool.binary(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no go: a build would fail
    assert tools.install(tool, tmp_path) == cached
    assert cached.read_text() == "#!/bin/sh\n"


def test_without_go_the_error_says_what_to_install(tmp_path, monkeypatch):
    tools = _tools()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(tools.ToolError, match="'go' not found"):
        tools.install(tools.TOOLS["promtool"], tmp_path)


def test_each_version_has_its_own_cache_entry(tmp_path):
    tools = _tools()
    paths = {t.binary(tmp_path) for t in tools.TOOLS.values()}
    assert len(paths) == len(tools.TOOLS)
    for tool in tools.TOOLS.values():
        assert tool.version in tool.binary(tmp_path).parent.name
