"""The PostgreSQL server the database tests also run on: GUARDBOT_TEST_POSTGRES, a server URL
(tests make a throwaway database on it and drop it); empty or unset, they use SQLite only."""

from __future__ import annotations

import os

POSTGRES = os.environ.get("GUARDBOT_TEST_POSTGRES")
