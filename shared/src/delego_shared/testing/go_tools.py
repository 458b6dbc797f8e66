"""Where the tests find promtool and Compose, built by `make go-tools` (deploy/local/tools.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[4]
TOOLS_SCRIPT = REPO / "deploy" / "local" / "tools.py"


class GoToolMissing(RuntimeError):
    pass


def _tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("delego_go_tools", TOOLS_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def go_tool_version(name: str) -> str:
    """The module version `make go-tools` builds `name` from (e.g. promtool: v0.305.0)."""
    version: str = _tools().TOOLS[name].version
    return version


def go_tool(name: str) -> Path:
    """The cached binary of `name` (`promtool`, `compose`), or a clear error saying how to build it.

    Tests do not build it themselves: a first build takes minutes.
    """
    tools = _tools()
    binary: Path = tools.TOOLS[name].binary(tools.cache_dir())
    if not binary.is_file():
        raise GoToolMissing(f"{binary} is not built: run `make go-tools`")
    return binary
