"""Shared fixtures, and the suites' markers.

A fresh guardbot database per test: an SQLite file, and PostgreSQL when GUARDBOT_TEST_POSTGRES
holds a server URL (a throwaway database is created on it and dropped).

Where a test lives (docs/development.md): the tests of guardbot's modules mirror the package,
tests/<part>/test_<module>.py for guardbot/<part>/<module>.py and tests/top/ for the top-level
modules (tests/repo/ checks the repository itself); the scenarios against a real Synapse keep
their suites, tests/integration, tests/fault, tests/docker and tests/workers.

Markers: a test of the mirrored directories is `db` when it uses the `database` fixture (itself
or through its own fixtures: a real database, SQLite and PostgreSQL), else `unit`; a scenario
is marked by its suite: integration, fault, docker (and integration: the image runs against a
Synapse), workers (and integration: a Synapse with workers), and a fault test that uses a
homeserver (a fixture in HOMESERVER_FIXTURES, itself or through its own fixtures) is
integration too. So `-m "not integration"` starts no homeserver; a test not marked integration
that starts a Synapse anyway fails, saying where it belongs.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from devtools.guard_loop import GuardLoop, guard_loop
from devtools.local_synapse import LocalSynapse
from guardbot import db
from tests.support.fake_homeserver import FakeHomeserver, fake_homeserver
from tests.support.postgres import POSTGRES

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "guardbot"
# The scenario suites, each marked by its own name.
SCENARIOS = ("integration", "fault", "docker", "workers")
# The directories that mirror guardbot: one per part (a package of guardbot), "top" for the
# top-level modules, "repo" for the checks of the repository itself.
MIRRORED = (
    *sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()),
    "top",
    "repo",
)
SUITES = (*MIRRORED, *SCENARIOS)
# A test that uses one of these runs on a real database: marked db.
DATABASE_FIXTURES = frozenset({"database", "database_url"})
# Fixtures that start a Synapse, or a guardbot process against one.
HOMESERVER_FIXTURES = frozenset(
    {"homeserver", "start_guardbot", "fault_hs", "launch", "workers_hs", "start_workers_guardbot"}
)


def suite_of(path: Path) -> str | None:
    """The directory under tests/ a test file lives in, or None outside tests/<suite>/."""
    try:
        parts = path.resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in SUITES else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        suite = suite_of(item.path)
        if suite is None:
            raise pytest.UsageError(
                f"{item.nodeid}: a test lives in one of tests/{{{','.join(SUITES)}}}/"
            )
        if suite in MIRRORED:
            uses_database = DATABASE_FIXTURES.intersection(item.fixturenames)
            item.add_marker("db" if uses_database else "unit")
            continue
        item.add_marker(suite)
        if suite == "fault" and HOMESERVER_FIXTURES.intersection(item.fixturenames):
            item.add_marker("integration")
        if suite in ("docker", "workers"):
            item.add_marker("integration")  # both run against a real Synapse


# -- no homeserver outside the integration tests ----------------------------------------------
_running: list[pytest.Item] = []  # the test being set up or run


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _running[:] = [item]


_start_synapse = LocalSynapse.start


async def _start_only_for_integration(self: LocalSynapse, *args: Any, **kwargs: Any) -> Any:
    item = _running[0] if _running else None
    if item is not None and item.get_closest_marker("integration") is None:
        raise RuntimeError(
            f"{item.nodeid} starts a Synapse but is not an integration test: move it to "
            "tests/integration (or, in tests/fault, use a fixture from HOMESERVER_FIXTURES)"
        )
    return await _start_synapse(self, *args, **kwargs)


LocalSynapse.start = _start_only_for_integration  # type: ignore[method-assign]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgres",
            marks=pytest.mark.skipif(not POSTGRES, reason="GUARDBOT_TEST_POSTGRES is not set"),
        ),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database that exists for this test only."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'guardbot.db'}"
        return
    import asyncpg

    assert POSTGRES
    name = "guardbot_test_" + secrets.token_hex(6)
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield str(URL(POSTGRES).with_path("/" + name))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[db.Database]:
    """A started guardbot database (migrations applied) on database_url."""
    database = db.create(database_url)
    await database.start()
    try:
        yield database
    finally:
        await database.stop()  # a no-op when the test closed it already to reopen its URL


@pytest.fixture
async def fake_hs() -> AsyncIterator[FakeHomeserver]:
    """The scripted homeserver (tests/support/fake_homeserver.py), started, with guardbot's
    user; closed after the test."""
    async with fake_homeserver() as hs:
        yield hs


@pytest.fixture
async def guard_on_fake(
    database: db.Database, fake_hs: FakeHomeserver
) -> AsyncIterator[Callable[..., Awaitable[GuardLoop]]]:
    """`await guard_on_fake(listed=[...], policy=..., config={...})`: guardbot wired as the app
    wires it (devtools/guard_loop.py) on this test's database, talking to the scripted
    homeserver; its clients closed after the test."""
    made: list[GuardLoop] = []

    async def make(**kw: Any) -> GuardLoop:
        made.append(await guard_loop(database, fake_hs.url, **kw))
        return made[-1]

    yield make
    for guard in made:
        await guard.hs.close()
