from mautrix.util.async_db import Connection, Scheme

from . import upgrade_table


@upgrade_table.register(description="audit log, room policies set by room admins, dry-run")
async def upgrade_v3(conn: Connection, scheme: Scheme) -> None:
    pass  # filled in by the room-admin work
