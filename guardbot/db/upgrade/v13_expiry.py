from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="named guests suspended by expiry")
async def upgrade_v13(conn: Connection, scheme: Scheme) -> None:
    # A suspension's start: deactivation counts from it, and a password set lifts it.
    await conn.execute(
        "CREATE TABLE suspension (user_id TEXT PRIMARY KEY, suspended_at BIGINT NOT NULL)"
    )
