"""The database tests' fixtures (tests/conftest.py gives each test its database)."""

from __future__ import annotations

import pytest

from guardbot import db
from tests.support.stores import Stores, stores_on


@pytest.fixture
def stores(database: db.Database) -> Stores:
    return stores_on(database)
