"""Every shell command in README.md and the service READMEs works as written.

Commands are read from ```bash / ```sh code blocks and from inline code that
starts like a command (`.venv/bin/…`, `make …`, `python3 …`). Notation: `a|b`
is either word, `[…]` is optional. The safe ones (`--help`, `delego status`,
`delego contracts check`) are run on a clean checkout: the tracked files copied
into a temporary directory, its `.venv` made by `uv sync --frozen --offline`
from the uv cache `make` filled (uv itself as the Makefile finds it: on the
`PATH` or in `.delego/tools/bin`, where `make` installs it — not on the `PATH`,
so the READMEs never say `uv run`). Every other command must at least be
recognised: a Makefile target, a script or test path that exists, a `delego`
subcommand with the options it is given, a console script of the workspace.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from delego_cli.main import app as delego_app

ROOT = Path(__file__).resolve().parents[2]
READMES = [
    ROOT / "README.md",
    ROOT / "shared" / "README.md",
    *sorted((ROOT / "services").glob("*/README.md")),
]
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell)\s*\n(.*?)^```", re.M | re.S)
ANY_BLOCK = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
COMMAND_START = re.compile(r"^(?:[A-Z_]+=\S*\s+)*(?:\.venv/bin/|make\b|python3\s|uv\s)")
ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
COMPOSE_SUBCOMMANDS = {"up", "down", "port", "ps", "logs", "config", "build", "exec"}


@dataclass(frozen=True)
class Command:
    readme: str
    text: str  # as written (one alternative)
    argv: tuple[str, ...]  # without leading VAR=value assignments


def _logical_lines(block: str) -> list[str]:
    return [ln for ln in block.replace("\\\n", " ").splitlines() if ln.strip()]


def _expand(line: str) -> list[str]:
    """`a|b` → both; `[opt]` → dropped (the command must work without it)."""
    line = re.sub(r"\s\[[^\]]*\]", "", line)
    words = shlex.split(line, comments=True)
    choices = [w.split("|") if "|" in w and not w.startswith("-") else [w] for w in words]
    return [shlex.join(c) for c in itertools.product(*choices)]


def readme_commands() -> list[Command]:
    out: list[Command] = []
    for readme in READMES:
        text = readme.read_text()
        name = str(readme.relative_to(ROOT))
        lines = [ln for block in SHELL_BLOCK.findall(text) for ln in _logical_lines(block)]
        prose = ANY_BLOCK.sub("", text)
        lines += [
            " ".join(span.split()) for span in INLINE.findall(prose) if COMMAND_START.match(span)
        ]
        for line in lines:
            for variant in _expand(line):
                argv = shlex.split(variant)
                while argv and ENV_ASSIGN.match(argv[0]):
                    argv = argv[1:]
                if argv:
                    out.append(Command(name, variant, tuple(argv)))
    return out


COMMANDS = readme_commands()


def is_safe(cmd: Command) -> bool:
    args = cmd.argv[1:]
    if "--help" in args:
        return True
    return cmd.argv[0] == ".venv/bin/delego" and args in (("status",), ("contracts", "check"))


def test_commands_are_found_in_every_readme_and_none_hides_in_an_untyped_block():
    assert {c.readme for c in COMMANDS} >= {
        "README.md",
        "services/billing/README.md",
        "services/catalog/README.md",
        "services/matching/README.md",
        "services/notifications/README.md",
    }
    assert len([c for c in COMMANDS if is_safe(c)]) >= 3
    for readme in READMES:
        for lang, body in ANY_BLOCK.findall(readme.read_text()):
            if lang.strip() in ("bash", "sh", "shell"):
                continue
            for line in _logical_lines(body):
                assert not COMMAND_START.match(line.strip()), (
                    f"{readme.name}: a command in a ```{lang} block; mark it ```sh: {line}"
                )


# --- recognised -----------------------------------------------------------


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", text, re.M))


def console_scripts() -> set[str]:
    """The scripts `make` installs: the workspace root's and its members' (by the root's
    member globs, not a walk of the tree: a test's Kafka deletes partition directories
    under `.delego/` while another test runs)."""
    names = {"python", "python3", "pytest", "ruff", "mypy"}
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = root["tool"]["uv"]["workspace"]["members"]
    pyprojects = [ROOT / "pyproject.toml"]
    pyprojects += [p for m in members for p in sorted(ROOT.glob(f"{m}/pyproject.toml"))]
    for pyproject in pyprojects:
        names |= set(tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {}))
    return names


def check_delego(args: tuple[str, ...]) -> None:
    # typer ships its own click: a group is what has `commands`
    cmd: Any = typer.main.get_command(delego_app)
    rest = list(args)
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        assert rest[0] in cmd.commands, f"delego has no command {rest[0]!r}"
        cmd = cmd.commands[rest.pop(0)]
    assert not hasattr(cmd, "commands") or "--help" in rest, "delego group without command"
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    for word in rest:
        if word.startswith("-"):
            assert word.split("=", 1)[0] in known, f"delego {cmd.name} has no option {word}"


def check_python(args: tuple[str, ...]) -> None:
    if args[0] == "-c":
        compile(args[1], "<readme>", "exec")
    elif args[0] == "-m":
        mains = [*ROOT.glob(f"*/src/{args[1]}/__main__.py")]
        mains += ROOT.glob(f"services/*/src/{args[1]}/__main__.py")
        assert mains, f"no runnable module {args[1]}"
    else:
        assert (ROOT / args[0]).is_file(), f"no script {args[0]}"


def recognise(cmd: Command) -> None:
    prog, args = cmd.argv[0], cmd.argv[1:]
    if prog == "make":
        targets = [a for a in args if not ENV_ASSIGN.match(a)]
        assert set(targets) <= make_targets(), f"not a Makefile target: {targets}"
    elif prog == "export":
        assert all(ENV_ASSIGN.match(a) for a in args)
    elif prog.startswith(".venv/bin/"):
        tool = prog.removeprefix(".venv/bin/")
        assert tool in console_scripts(), f"{tool} is not installed into .venv by make"
        if tool == "delego":
            check_delego(args)
        elif tool in ("python", "python3"):
            check_python(args)
        elif tool == "pytest":
            for path in (a for a in args if not a.startswith("-")):
                assert (ROOT / path).exists(), f"no test path {path}"
    elif prog == "python3":
        check_python(args)
    elif prog == "docker":
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        assert args[0] == "compose" and args[1] in COMPOSE_SUBCOMMANDS
        names = {a.split("=")[0] for a in args[2:] if not a.startswith("-") and not a.isdigit()}
        assert names <= set(compose["services"]), f"no compose service {names}"
    elif prog == "uv":
        pytest.fail("uv is not on the PATH after `make`: write .venv/bin/… or a make target")
    else:
        pytest.fail(f"unrecognised command {prog!r}")


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: f"{c.readme}: {c.text[:60]}")
def test_readme_command_is_recognised(cmd):
    recognise(cmd)


# --- safe commands, run on a clean checkout ----------------------------------


def find_uv() -> str:
    # `uv run` (as `make test` runs pytest) names itself in $UV
    uv = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".delego/tools/bin/uv")
    if not Path(uv).is_file():
        pytest.fail("uv not found: `make` installs it into .delego/tools/bin")
    return uv


@pytest.fixture(scope="module")
def clean_checkout(tmp_path_factory) -> Path:
    """The tracked files (as in the working tree) and a `.venv` synced from uv.lock."""
    dest = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    subprocess.run(
        [find_uv(), "sync", "--all-packages", "--frozen", "--offline", "--quiet"],
        cwd=dest,
        check=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")},
    )
    return dest


@pytest.mark.parametrize(
    "cmd", [c for c in COMMANDS if is_safe(c)], ids=lambda c: f"{c.readme}: {c.text[:60]}"
)
def test_safe_readme_command_runs_on_a_clean_checkout(cmd, clean_checkout):
    # a new user's shell: none of this machine's DELEGO_* settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DELEGO_", "VIRTUAL_ENV"))}
    env.update(dict(a.split("=", 1) for a in shlex.split(cmd.text)[: -len(cmd.argv)] or []))
    result = subprocess.run(
        list(cmd.argv), cwd=clean_checkout, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if cmd.argv[1:] == ("contracts", "check"):
        assert "contracts up to date and backward compatible" in output
    elif cmd.argv[1:] == ("status",):
        assert all(s in output for s in ("catalog", "matching", "billing", "notifications"))
    else:
        assert "Usage" in output or "usage" in output


def test_the_clean_checkout_runs_its_own_code_not_this_one(clean_checkout):
    """Else the commands above would prove nothing about the copy."""
    result = subprocess.run(
        [".venv/bin/python", "-c", "import delego_cli, delego_shared; print(delego_cli.__file__)"],
        cwd=clean_checkout,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert Path(result.stdout.strip()).resolve().is_relative_to(clean_checkout.resolve())
