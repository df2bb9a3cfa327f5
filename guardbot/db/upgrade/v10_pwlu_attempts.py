from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="when guardbot last asked the homeserver for a named guest")
async def upgrade_v10(conn: Connection, scheme: Scheme) -> None:
    # An unconfirmed row is taken as a named guest's only if the account was created between
    # its first attempt (created_at) and its last (attempted_at): never by a login on an
    # account someone else may own.
    await conn.execute("ALTER TABLE pwlu ADD COLUMN attempted_at BIGINT")
