from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(
    description="named guests: unfinished room carry-overs, why a reminder waits"
)
async def upgrade_v7(conn: Connection, scheme: Scheme) -> None:
    # The guest whose rooms the new account is still to take over (a user ID, never a token):
    # set with the account, cleared when every room is carried over, resumed after a crash.
    await conn.execute("ALTER TABLE pwlu ADD COLUMN carry_from TEXT")
    # Why the next reminder waits beyond its schedule: 'homeserver' goes again when it answers.
    await conn.execute("ALTER TABLE pwlu ADD COLUMN deferred_for TEXT")
