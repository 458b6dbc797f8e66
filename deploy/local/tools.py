#!/usr/bin/env python3
"""Operator tools the static checks of the compose files run, built from their Go modules.

- promtool (Prometheus): `check rules` / `check config` on `deploy/prometheus/`;
- Compose itself (`docker compose` v2): `config` on `docker-compose.yml`.

Like FerretDB in localinfra.py, each is downloaded as released through the Go
module proxy, built with the machine's Go (never a downloaded toolchain) and
cached, so the second run is instant. Each module is built as its own main
module from a copy of its source: its go.mod then holds as written (Compose's
and Prometheus's have `exclude` / `replace` directives, which `go install
module@version` refuses).

Standard library only. Every command is idempotent:

    python3 deploy/local/tools.py {promtool,compose,all} {install,path}

Settings: DELEGO_CACHE_DIR (default ~/.cache/delego).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GoTool:
    name: str
    module: str
    version: str
    package: str  # the main package, relative to the module's root
    version_var: str  # the variable `--version` prints, set at link time as upstream's build does
    version_value: str

    def binary(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.version}" / self.name


TOOLS = {
    # Prometheus 3.5.0 (LTS; its Go module is tagged v0.<minor><patch>): the version of the
    # compose file's prom/prometheus image (a test keeps them equal)
    "promtool": GoTool(
        name="promtool",
        module="github.com/prometheus/prometheus",
        version="v0.305.0",
        package="cmd/promtool",
        version_var="github.com/prometheus/common/version.Version",
        version_value="3.5.0",
    ),
    # the last release of the v2 module (v5 is the next); needs Go >= 1.24.9
    "compose": GoTool(
        name="docker-compose",
        module="github.com/docker/compose/v2",
        version="v2.40.3",
        package="cmd",
        version_var="github.com/docker/compose/v2/internal.Version",
        version_value="v2.40.3",
    ),
}


class ToolError(RuntimeError):
    """A clear, actionable failure (no Go, a Go too old for the module)."""


def cache_dir() -> Path:
    return Path(os.environ.get("DELEGO_CACHE_DIR", Path.home() / ".cache" / "delego"))


def log(msg: str) -> None:
    print(f"[tools] {msg}", flush=True)


def install(tool: GoTool, cache: Path) -> Path:
    binary = tool.binary(cache)
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    # one build at a time per tool (two checkouts may run `make` at once on one machine)
    with open(cache / f"{tool.name}-{tool.version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            _build(tool, binary)
    return binary


def _build(tool: GoTool, binary: Path) -> None:
    go = shutil.which("go")
    if not go:
        raise ToolError("'go' not found on PATH: install Go (https://go.dev/doc/install)")
    # GOTOOLCHAIN=local: a module that needs a newer Go fails here rather than
    # fetching a toolchain; CGO off: static binaries, no C compiler needed
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    work = binary.parent
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    log(f"building {tool.name} from {tool.module}@{tool.version} (Go module proxy) into {binary}")
    # 1. the released module, through the Go module proxy (checked against sum.golang.org)
    info = json.loads(
        _go(go, ["mod", "download", "-json", f"{tool.module}@{tool.version}"], cwd=work, env=env)
    )
    src = work / "src"
    shutil.copytree(info["Dir"], src)
    for p in [src, *src.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)  # the module cache is read-only
    # 2. built as the main module; -mod=mod lets Go record sums its go.sum lacks
    partial = work / f"{tool.name}.partial"
    stamp = f"-X {tool.version_var}={tool.version_value}"
    build = ["build", "-mod=mod", "-trimpath", f"-ldflags={stamp}", "-o", str(partial)]
    build.append(f"./{tool.package}")
    _go(go, build, cwd=src, env=env)
    partial.rename(binary)
    shutil.rmtree(src)
    log(f"{tool.name} built in {time.monotonic() - started:.0f} s")


def _go(go: str, args: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    """Run go; its progress and errors go to stderr as they come (a build takes minutes)."""
    result = subprocess.run([go, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise ToolError(f"go {' '.join(args)} exited with {result.returncode} (see above)")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tool", choices=[*TOOLS, "all"])
    parser.add_argument("action", choices=["install", "path"])
    args = parser.parse_args(argv)
    cache = cache_dir()
    tools = list(TOOLS.values()) if args.tool == "all" else [TOOLS[args.tool]]
    try:
        for tool in tools:
            if args.action == "install":
                install(tool, cache)
            else:
                print(tool.binary(cache))
    except ToolError as exc:
        print(f"[tools] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
