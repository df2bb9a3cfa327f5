from mautrix.util.async_db import UpgradeTable

upgrade_table = UpgradeTable(database_name="guardbot")

# Each step registers itself on upgrade_table, in this order.
from guardbot.db.upgrade import (  # noqa: E402,F401
    v01_initial,
    v02_pwlu,
    v03_audit,
    v04_typed_states,
    v05_door,
    v06_member_counts,
    v07_pwlu_recovery,
    v08_leader,
    v09_door_token,
    v10_pwlu_attempts,
    v11_report_cursor,
    v12_action_started,
    v13_expiry,
)
