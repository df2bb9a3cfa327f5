from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="typed states: why an action waits, how an audited one ended")
async def upgrade_v4(conn: Connection, scheme: Scheme) -> None:
    # What a pending action waits for (WaitingOn); before, this was read back from its outcome's
    # prose with LIKE.
    await conn.execute("ALTER TABLE action ADD COLUMN waiting_on TEXT")
    await conn.execute(
        "UPDATE action SET waiting_on='homeserver'"
        " WHERE state='pending' AND outcome LIKE 'homeserver trouble%'"
    )
    # How an audited action ended (ActionState); before, read back from the result's prose.
    await conn.execute("ALTER TABLE audit ADD COLUMN state TEXT")
    for state in ("done", "skipped", "failed", "dry_run"):
        await conn.execute(
            "UPDATE audit SET state=$1 WHERE result LIKE $2 AND what NOT LIKE 'decide %'",
            state,
            state + ":%",
        )
