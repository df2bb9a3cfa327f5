from mautrix.util.async_db import Connection, Scheme

from . import upgrade_table


@upgrade_table.register(description="named guests (PWLU): accounts, nags, claim tokens")
async def upgrade_v2(conn: Connection, scheme: Scheme) -> None:
    pass  # filled in by the PWLU work
