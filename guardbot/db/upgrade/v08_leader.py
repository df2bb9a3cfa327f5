from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="the leader's lease, for an active/standby set")
async def upgrade_v8(conn: Connection, scheme: Scheme) -> None:
    # One row. `term` grows by one at every change of leader; `expires_at` is the database's
    # own clock (ms), so the processes never compare clocks with each other.
    await conn.execute(
        """CREATE TABLE leader (
            id         INTEGER PRIMARY KEY,
            holder     TEXT NOT NULL,
            term       BIGINT NOT NULL,
            expires_at BIGINT NOT NULL
        )"""
    )
