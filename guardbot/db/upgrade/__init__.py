from mautrix.util.async_db import UpgradeTable

upgrade_table = UpgradeTable(database_name="guardbot")

from . import v01_initial  # noqa: E402,F401  (registers itself on upgrade_table)
