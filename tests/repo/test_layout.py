"""The import rule of docs/architecture.md, checked on the source: imports run one way (core ←
adapters ← app), and the installed package holds no test or demo tooling."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "guardbot"

# What each part of guardbot may import of guardbot (besides itself).
ALLOWED = {
    "core": set(),
    "background": {"core"},
    "metrics": set(),
    "logs": set(),
    "config": {"core"},
    "matrix": {"core"},
    "db": {"core"},
    "guard": {"core", "db", "matrix", "background", "metrics"},
    "commands": {"core", "db", "matrix", "guard", "background", "expiry"},
    "named_guests": {
        "core",
        "db",
        "matrix",
        "guard",
        "background",
        "metrics",
        "config",
        "commands",
    },
    # Accounts ended by inactivity: its scan, decider and carrier (named guests' probe).
    "expiry": {"core", "db", "matrix", "background", "metrics", "named_guests"},
    "registration": {"config", "core"},
    "leader": {"core", "db", "matrix", "metrics"},
    "tools": {"core", "db", "matrix", "guard", "config", "logs", "registration"},
    # The one wiring: builds every part (the app, tests and bench wire through it).
    "wiring": {
        "core",
        "db",
        "matrix",
        "guard",
        "background",
        "commands",
        "named_guests",
        "expiry",
        "config",
        "leader",
    },
}


def part_of(module: str) -> str:
    """guardbot.guard.executor -> guard; guardbot.app -> app."""
    return module.split(".")[1] if module.count(".") else ""


def imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "guardbot":
                found |= {f"guardbot.{alias.name}" for alias in node.names}
            elif node.module.startswith("guardbot."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("guardbot.")}
    return found


def modules() -> list[tuple[str, pathlib.Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, path))
    return out


@pytest.mark.parametrize("name,path", modules(), ids=[m for m, _ in modules()])
def test_imports_run_one_way(name: str, path: pathlib.Path) -> None:
    part = part_of(name)
    if part in ("", "app", "__main__", "__init__"):
        return  # the wiring may import anything
    assert part in ALLOWED, f"{name}: a new part of guardbot; give it a rule in ALLOWED"
    wrong = {
        m for m in imports(path) if part_of(m) not in ALLOWED[part] | {part} and m != "guardbot"
    }
    assert not wrong, f"{name} ({part}) may not import {sorted(wrong)}"


def test_nothing_imports_the_app() -> None:
    for name, path in modules():
        if part_of(name) not in ("app", "__main__"):
            assert "guardbot.app" not in imports(path), name


def test_module_names_are_unique() -> None:
    names: dict[str, str] = {}
    for name, path in modules():
        if path.name == "__init__.py":
            continue
        assert path.stem not in names, f"{name} and {names[path.stem]} share a name"
        names[path.stem] = name


def test_each_store_is_named_after_its_module() -> None:
    """db/<thing>_store.py holds <Thing>Store: a reader finds a store from its name."""
    helpers = {"__init__", "codec", "single_instance"}
    for path in sorted((PACKAGE / "db").glob("*.py")):
        if path.stem in helpers:
            continue
        assert path.stem.endswith("_store"), f"db/{path.name}: stores are named <thing>_store.py"
        expected = "".join(part.title() for part in path.stem.split("_"))
        classes = [n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)]
        assert expected in classes, f"db/{path.name} should define {expected}"


def test_wheel_holds_no_test_or_demo_tooling(tmp_path: pathlib.Path) -> None:
    # Built from a copy of what git tracks, so the checkout gets no build/ and none counts.
    source = tmp_path / "source"
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("guardbot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "guardbot/core/policy.py" in names
    tooling = [n for n in names if n.split("/")[0] in ("devtools", "tests", "bench", "scripts")]
    assert not tooling
    assert not [n for n in names if "local_synapse" in n or n.endswith("demo.py")]
