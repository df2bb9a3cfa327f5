from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="when guardbot started carrying out an action")
async def upgrade_v12(conn: Connection, scheme: Scheme) -> None:
    # A kick that reached the homeserver just before a crash is found done after the restart
    # (the member left, by guardbot's hand), not recorded as "user already gone".
    await conn.execute("ALTER TABLE action ADD COLUMN started_at BIGINT")
