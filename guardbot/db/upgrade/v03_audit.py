from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="audit log, room policies set by room admins, dry-run")
async def upgrade_v3(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL" if scheme in (Scheme.POSTGRES, Scheme.COCKROACH) else "INTEGER"
    # Every decision and action: who, what, where, why, result, when.
    await conn.execute(
        f"""CREATE TABLE audit (
            id       {serial} PRIMARY KEY,
            at       BIGINT NOT NULL,
            actor    TEXT NOT NULL,
            what     TEXT NOT NULL,
            room_id  TEXT,
            user_id  TEXT,
            why      TEXT NOT NULL,
            result   TEXT NOT NULL,
            dry_run  BOOLEAN NOT NULL DEFAULT false
        )"""
    )
    await conn.execute("CREATE INDEX audit_at ON audit (at)")
    await conn.execute("CREATE INDEX audit_room ON audit (room_id, at)")
    await conn.execute("CREATE INDEX audit_user ON audit (user_id, at)")
    # What a room's admins chose, from the room's own policy state event.
    await conn.execute(
        """CREATE TABLE room_policy (
            room_id  TEXT PRIMARY KEY,
            policy   TEXT NOT NULL,
            reason   TEXT,
            set_by   TEXT NOT NULL,
            event_id TEXT NOT NULL,
            set_at   BIGINT NOT NULL
        )"""
    )
    # Dry-run switches set from the management room: room_id '' is the global one.
    await conn.execute(
        """CREATE TABLE dry_run (
            room_id TEXT PRIMARY KEY,
            enabled BOOLEAN NOT NULL,
            set_by  TEXT NOT NULL,
            set_at  BIGINT NOT NULL
        )"""
    )
