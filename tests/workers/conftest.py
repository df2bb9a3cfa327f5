"""A Synapse with workers (devtools/synapse_workers.py: main, a client-API worker, an
appservice-sending worker, PostgreSQL, Redis, a routing proxy) shared by the session, with
guardbot registered as its appservice, and guardbot as a real process per test. The tests that
restart the homeserver leave it running again; its logs are scanned for secrets at the end."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from devtools.synapse_workers import WorkerSynapse
from tests.support.harness import OPEN_REGISTRATION, Secrets, remember_secrets
from tests.support.homeserver import (
    Homeserver,
    StartGuardbot,
    guardbot_starter,
    running_homeserver,
)


def worker_synapse(hs: Homeserver) -> WorkerSynapse:
    assert isinstance(hs.synapse, WorkerSynapse)
    return hs.synapse


@pytest_asyncio.fixture(scope="session")
async def workers_hs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    secrets = Secrets()
    root = tmp_path_factory.mktemp("workers-hs")
    async with running_homeserver(root, OPEN_REGISTRATION, workers=True) as hs:
        remember_secrets(hs, secrets)
        yield hs
        for path in worker_synapse(hs).log_paths:  # every process's log, and the proxy's
            text = path.read_text(errors="replace") if path.exists() else ""
            assert not secrets.found_in(text), f"secrets in {path}: {secrets.found_in(text)}"


@pytest_asyncio.fixture
async def start_workers_guardbot(
    workers_hs: Homeserver, tmp_path: pathlib.Path
) -> AsyncIterator[StartGuardbot]:
    """start_workers_guardbot(POLICY__LISTED_ROOMS="kick", ...): guardbot against the session's
    Synapse with workers; the same database each time within a test."""
    async with guardbot_starter(workers_hs, tmp_path) as start:
        yield start
