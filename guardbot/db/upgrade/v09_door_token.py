from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="when the door last refused the homeserver's token")
async def upgrade_v9(conn: Connection, scheme: Scheme) -> None:
    # One row, beside door_seen: a wrong token in homeserver.yaml shows in doctor as such, not
    # as the last good call from before the homeserver restarted with it.
    await conn.execute(
        """CREATE TABLE door_token_refused (
            id   INTEGER PRIMARY KEY,
            what TEXT NOT NULL,
            at   BIGINT NOT NULL
        )"""
    )
