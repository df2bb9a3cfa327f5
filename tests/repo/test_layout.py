"""The layout rules of docs/architecture.md, checked on the source: imports run one way (core ←
adapters ← app), the tests mirror the package (each module with logic has its test module,
and each test module names a module), every pure decider is called by its tests, and the
installed package holds no test or demo tooling."""

from __future__ import annotations

import ast
import fnmatch
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "guardbot"
TESTS = ROOT / "tests"
# tests/ holds the mirror of guardbot and these, which mirror nothing: the scenario suites
# against a real Synapse, the repository's own checks, and the helpers.
NOT_MIRRORED = {"integration", "fault", "docker", "workers", "repo", "support"}
TOP = "top"  # tests/top/: the tests of guardbot's top-level modules (config.py, leader.py...)
# Modules with logic but no test module of their own, and why. Keep it short.
EXEMPT = {
    # Only calls app.main: every test of tests/top/test_app.py runs `python -m guardbot`.
    "guardbot/__main__.py",
    # Schema steps (SQL): every database test runs them; tests/db/test_db.py checks they
    # apply once and the schema's version is the last step's.
    "guardbot/db/upgrade/v*.py",
}

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
    "commands": {"core", "db", "matrix", "guard", "background"},
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
        "metrics",
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


# -- the tests mirror the package ------------------------------------------------------------
def has_logic(path: pathlib.Path) -> bool:
    """More than imports, constants and declarations: a function or method of its own."""
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(tree))


def home(path: pathlib.Path) -> tuple[pathlib.Path, str]:
    """Where a module's tests live: guardbot/<part>/<module>.py in tests/<part>/ as
    test_<module>.py, a top-level guardbot/<module>.py in tests/top/, and a package's own
    __init__.py under the package's name (guardbot/db/__init__.py: tests/db/test_db.py)."""
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return TESTS / TOP, path.stem
    name = rel.parts[-2] if path.stem == "__init__" else path.stem
    return TESTS.joinpath(*rel.parts[:-1]), name


def its_tests(path: pathlib.Path) -> list[pathlib.Path]:
    """test_<module>.py, and test_<module>_<aspect>.py for an aspect with a file of its own."""
    directory, name = home(path)
    return sorted([*directory.glob(f"test_{name}.py"), *directory.glob(f"test_{name}_*.py")])


def exempt(path: pathlib.Path) -> bool:
    rel = str(path.relative_to(ROOT))
    return any(fnmatch.fnmatch(rel, pattern) for pattern in EXEMPT)


def with_logic() -> list[pathlib.Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if has_logic(p) and not exempt(p)]


def mirrored_tests() -> list[pathlib.Path]:
    return [
        p
        for p in sorted(TESTS.rglob("test_*.py"))
        if p.relative_to(TESTS).parts[0] not in NOT_MIRRORED
    ]


@pytest.mark.parametrize(
    "path", with_logic(), ids=[str(p.relative_to(PACKAGE)) for p in with_logic()]
)
def test_each_module_with_logic_has_its_test_module(path: pathlib.Path) -> None:
    directory, name = home(path)
    where = directory.relative_to(ROOT)
    assert its_tests(path), (
        f"{path.relative_to(ROOT)}: no {where}/test_{name}.py (or test_{name}_<aspect>.py);"
        " write its tests there, or say in EXEMPT why it has none"
    )


def test_each_test_module_names_a_module_of_guardbot() -> None:
    for test in mirrored_tests():
        rel = test.relative_to(TESTS)
        parts = rel.parts[:-1]
        package = PACKAGE if parts == (TOP,) else PACKAGE.joinpath(*parts)
        assert package.is_dir() and (parts == (TOP,) or (package / "__init__.py").exists()), (
            f"tests/{rel}: tests/{'/'.join(parts)}/ mirrors no package of guardbot"
        )
        names = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
        if parts != (TOP,):
            names.add(package.name)  # the package's own __init__.py
        stem = test.stem.removeprefix("test_")
        assert any(stem == n or stem.startswith(n + "_") for n in names), (
            f"tests/{rel} names no module of {package.relative_to(ROOT)}: call it"
            " test_<module>.py or test_<module>_<aspect>.py"
        )


def test_test_modules_have_unique_names() -> None:
    """Among the mirror (the scenario suites keep their own names: tests/integration/
    test_door.py is the door against a real Synapse, tests/guard/test_door.py guard/door.py)."""
    seen: dict[str, pathlib.Path] = {}
    for test in mirrored_tests():
        other = seen.setdefault(test.name, test)
        assert other == test, f"{test.relative_to(ROOT)} and {other.relative_to(ROOT)}"


def deciders(path: pathlib.Path) -> list[str]:
    """The pure deciders a module defines: its `decide…` functions and methods that are not
    coroutines (those gather) and not a protocol's `...`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("decide"):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            stub = len(body) == 1 and isinstance(body[0], ast.Expr)
            if not stub:
                found.append(node.name)
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in with_logic() if deciders(p)],
    ids=[str(p.relative_to(PACKAGE)) for p in with_logic() if deciders(p)],
)
def test_every_pure_decider_is_called_by_its_tests(path: pathlib.Path) -> None:
    text = "".join(t.read_text() for t in its_tests(path))
    for name in deciders(path):
        assert re.search(rf"\b{name}\(", text), (
            f"{path.relative_to(ROOT)}: {name}() is called by none of its tests"
            f" ({', '.join(str(t.relative_to(ROOT)) for t in its_tests(path)) or 'none'})"
        )
