"""The README and docs/ lead nowhere broken: every relative link (and its #anchor) exists, every
repository path named in backticks exists, and every guardbot command and flag they show is
one guardbot's own --help lists."""

from __future__ import annotations

import functools
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
SEPARATORS = {"&&", "||", ";", "|", "#", "\\"}
# A historical record: it names files as they were when each figure was measured.
HISTORY = {"benchmarks.md"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: pathlib.Path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#+ (.*)$", page.read_text(), flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_anchors_exist(page: pathlib.Path) -> None:
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: link to {target}: no such file"
        if anchor:
            assert anchor in anchors(file), f"{page.name}: link to {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_repository_paths_named_exist(page: pathlib.Path) -> None:
    if page.name in HISTORY:
        pytest.skip(f"{page.name} is a record of past measurements")
    for span in CODE_SPAN.findall(page.read_text()):
        word = span.split()[0] if span.split() else ""
        if "/" in word and word.split("/")[0] in TOP and not word.startswith("/"):
            path = re.split(r"[:#]", word)[0]
            # A pattern (`tests/<part>/test_<module>.py`) names at least one file.
            path = re.sub(r"<[^>/]*>", "*", path)
            assert (ROOT / path).exists() or list(ROOT.glob(path)), f"{page.name}: `{span}`"


@functools.cache
def help_text(*sub: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "guardbot", *sub, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def commands(text: str) -> list[str]:
    """The arguments of each `guardbot …`, `/opt/guardbot/bin/guardbot …` or `python -m
    guardbot …` in code blocks and spans."""
    found = []
    for block in [*FENCE.findall(text), *CODE_SPAN.findall(text)]:
        for line in block.splitlines():
            words = line.split()
            for i, word in enumerate(words):
                program = word == "guardbot" or word.endswith("/bin/guardbot")
                if program and not (i and words[i - 1] in ("exec", "compose", "-u")):
                    args = []
                    for arg in words[i + 1 :]:
                        if arg in SEPARATORS or arg.startswith("#"):
                            break
                        args.append(arg)
                    found.append(" ".join(args))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_guardbot_commands_and_flags_exist(page: pathlib.Path) -> None:
    for args in commands(page.read_text()):
        words = args.split()
        sub = tuple(words[:1]) if words and words[0] in ("doctor", "audit") else ()
        known = help_text(*sub)
        for word in words:
            flag = word.split("=")[0]
            if flag.startswith("-") and not flag.startswith("--") and len(flag) > 2:
                flag = flag[:2]
            if flag.startswith("-"):
                assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", known), (
                    f"{page.name}: `guardbot {args}`: {flag} is not in guardbot"
                    f" {' '.join(sub)} --help"
                )


def test_the_command_finder_finds_commands() -> None:
    """The checks above would pass on pages where nothing is found."""
    readme = commands((ROOT / "README.md").read_text())
    assert any(c.startswith("-c /var/lib/guardbot/config.yaml -g") for c in readme), readme
    assert any(c.startswith("doctor") for c in readme), readme
    assert "--new-tokens" in " ".join(readme)


def test_the_readme_is_one_short_path() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 8500
    steps = re.findall(r"^(\d+)\. \*\*", text, flags=re.M)
    assert steps == [str(n) for n in range(1, len(steps) + 1)] and len(steps) >= 8
    assert "scripts/test" in text  # the test command CI runs
