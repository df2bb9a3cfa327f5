from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="each listed room's joined-member count at the last poll")
async def upgrade_v6(conn: Connection, scheme: Scheme) -> None:
    # Compared with the next poll's: a change means a member came or went, seen or not.
    await conn.execute("ALTER TABLE room ADD COLUMN joined_members INTEGER")
