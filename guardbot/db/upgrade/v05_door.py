from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="when the homeserver last called the door")
async def upgrade_v5(conn: Connection, scheme: Scheme) -> None:
    # One row: the module's ping (or the first callback since guardbot started), for doctor.
    await conn.execute(
        """CREATE TABLE door_seen (
            id   INTEGER PRIMARY KEY,
            what TEXT NOT NULL,
            at   BIGINT NOT NULL
        )"""
    )
